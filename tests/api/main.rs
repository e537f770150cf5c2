//! The one integration-test binary: a module per area, all on `helpers::spawn_app()`.

mod helpers;
mod http;
