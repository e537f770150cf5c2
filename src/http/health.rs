//! `/health` (the process answers), `/ready` (the stores answer, the relay keeps up) and
//! `/metrics` (Prometheus text, optionally behind a bearer token). They read state only;
//! they never write and never reveal more than counts and sizes.

use crate::app::AppState;
use crate::config::Secret;
use crate::error::Error;
use crate::http::metrics;
use crate::http::problem::Problem;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub async fn health() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// Ready when a read transaction opens on the state store and the outbox relay keeps up
/// (events waiting and no progress for 30 s means stuck).
pub async fn ready(State(state): State<AppState>) -> Response {
    match checks(&state) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Err(reason) => {
            tracing::warn!(reason = %reason, "not ready");
            Error::Unavailable {
                message: format!("Not ready: {reason}"),
                retry_after_secs: 5,
            }
            .into_response()
        }
    }
}

fn checks(state: &AppState) -> Result<(), String> {
    state
        .store
        .read()
        .map(drop)
        .map_err(|e| format!("state store: {e}"))?;
    let relay = crate::log::relay::status(&state.store, &state.log);
    if relay.is_stuck(std::time::Duration::from_secs(30)) {
        return Err(format!(
            "the outbox relay is stuck with {} event(s) waiting{}",
            relay.lag,
            relay
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics.token
        && !bearer_matches(&headers, token)
    {
        let mut res = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Metrics need `Authorization: Bearer <metrics.token>`.",
        )
        .into_response();
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return res;
    }
    metrics::set_relay_lag(crate::log::relay::status(&state.store, &state.log).lag);
    metrics::set_log_size_bytes(state.log.disk_space());
    // Telemetry events dropped (queue full): exact at every scrape, 0 included.
    ::metrics::counter!(crate::telemetry::DROPPED_METRIC).absolute(state.telemetry.dropped());
    let body = metrics::render(&state.config.data_dir);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Compares digests in constant time, so neither the token's bytes nor its length leak
/// through response timing.
fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(token.expose().as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_must_match_exactly() {
        let token = Secret::new("0123456789abcdef-token");
        let mut h = HeaderMap::new();
        assert!(!bearer_matches(&h, &token));
        for (v, ok) in [
            ("Bearer 0123456789abcdef-token", true),
            ("bearer 0123456789abcdef-token", true),
            ("Bearer 0123456789abcdef-toke", false),
            ("Bearer 0123456789abcdef-token2", false),
            ("Basic 0123456789abcdef-token", false),
            ("0123456789abcdef-token", false),
        ] {
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            assert_eq!(bearer_matches(&h, &token), ok, "{v}");
        }
    }
}
