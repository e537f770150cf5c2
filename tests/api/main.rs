//! The one integration-test binary: a module per area, all on `helpers::spawn_app()`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod catalog;
mod catalog_stock;
mod crash;
mod crash_checkout;
mod crash_payments;
mod crash_search;
mod helpers;
mod http;
mod log;
mod orders;
mod orders_guest;
mod orders_property;
mod orders_returns;
mod orders_shipping;
mod orders_wallet;
mod payments;
mod payments_more;
mod payments_property;
mod process;
mod search;
mod search_analytics;
mod users;
mod users_account;
mod users_admin;
mod users_mfa;
mod users_sessions;
mod web_account;
mod web_account_recovery;
mod web_account_security;
mod web_account_shop;
mod web_checkout;
mod web_client;
mod web_fresh;
mod web_pages;
mod web_shop;
