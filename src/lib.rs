//! Souk: a multi-vendor marketplace in one binary. `App::open(config)` builds everything
//! that `main`, the tests and the benches run.

pub mod app;
pub mod auth;
pub mod check;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod cpu;
pub mod error;
pub mod html;
pub mod http;
pub mod log;
pub mod logging;
pub mod mail;
pub mod money;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod web;

pub use app::App;
pub use config::Config;
pub use error::{Error, Result};
