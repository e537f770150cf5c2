//! The HTTP surface: router, middleware, problem+json, TLS and the server loop.
//! Handlers live in each service's `api.rs`; this module only assembles and guards them.
//! Handlers take bodies with [`Json`] (not axum's) so every bad input is problem+json.

pub mod extract;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod server;
pub mod tls;

pub use extract::{Json, Path, Query};
pub use problem::Problem;
pub use request_id::RequestId;
pub use server::{Server, shutdown_signal};

use crate::app::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

/// The whole router, with every service's routes merged under /api/v1.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes under the same middleware. Tests use it to add routes
/// production must not have (a deliberately slow one, a panicking one).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let mut routes = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .nest("/api/v1", api_v1())
        .merge(crate::services::catalog::api::media_router())
        .merge(crate::web::router(state.clone()))
        .merge(extra);
    // With a separate metrics listener, the public port does not reveal business volume.
    if state.config.metrics.listen.is_none() {
        routes = routes.route("/metrics", get(health::metrics));
    }
    with_layers(routes, &state).with_state(state)
}

/// Every service's JSON routes. Each service exposes `router() -> Router<AppState>` with
/// paths relative to /api/v1, and is merged here, one line per service.
fn api_v1() -> Router<AppState> {
    Router::new()
        .merge(crate::services::users::api::router())
        .merge(crate::services::vendors::api::router())
        .merge(crate::services::catalog::api::router())
        .merge(crate::services::payments::api::router())
        .merge(crate::services::orders::api::router())
        .merge(crate::services::search::api::router())
}

/// The router a separate `metrics.listen` listener serves: /metrics and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    with_layers(
        Router::new().route("/metrics", get(health::metrics)),
        &state,
    )
    .with_state(state)
}

/// Layers run outside-in in the reverse order of these calls: `observe` first (id, log,
/// metrics, headers, problem+json for plain errors, rate limit, timeout), then
/// compression, panics, body limit.
fn with_layers(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let http = &state.config.http;
    let observe = middleware::Observe {
        hsts: state.config.tls_enabled(),
        limits: Arc::new(middleware::Limits::new(
            &http.rate_limit,
            &http.trusted_proxies,
        )),
        timeouts: Arc::new(http.timeouts.clone()),
    };
    routes
        .fallback(crate::web::fallback)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            observe,
            middleware::observe,
        ))
}
