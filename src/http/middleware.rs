//! The layers around every route: request id + access log + metrics + security headers,
//! rate limiting and per-group timeouts (one outer layer, so each request is measured
//! once and pays for one layer, not three), problem+json for errors that axum or tower
//! answer in plain text, and panics. Nothing here reads a body or logs a query string or
//! an Authorization header.

use crate::config::{RateLimit, Timeouts};
use crate::http::metrics;
use crate::http::problem::Problem;
use crate::http::rate_limit::{RateLimiter, client_ip, retry_after_secs};
use crate::http::request_id::{self, RequestId};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the outer layer needs to know about the server it runs in.
#[derive(Clone)]
pub struct Observe {
    /// HSTS only makes sense when this listener speaks TLS.
    pub hsts: bool,
    pub limits: Arc<Limits>,
    pub timeouts: Arc<Timeouts>,
}

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Decrements the in-flight gauge even when the client goes away mid-request.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::in_flight_done();
    }
}

pub async fn observe(State(o): State<Observe>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::from_header(req.headers().get(request_id::HEADER));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let method = req.method().clone();
    req.extensions_mut().insert(id.clone());
    metrics::request_started();
    let guard = InFlight;

    // The log lines of the request get its id from this scope (logging::LineFormat).
    let res = id.clone().scope(o.admit_and_run(req, next)).await;
    let mut res = problem_for_plain_errors(res, &id);

    let h = res.headers_mut();
    // The five below (six with HSTS), in one growth of the map rather than several.
    h.reserve(6);
    h.insert(request_id::HEADER, id.header_value());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if o.hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if is_html(h) && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }

    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    drop(guard);
    metrics::request_finished(method.as_str(), &route, status, elapsed.as_secs_f64());
    crate::logging::access::log(&crate::logging::access::Request {
        method: method.as_str(),
        route: &route,
        status,
        elapsed,
        id: id.as_str(),
    });
    res
}

fn is_html(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
}

/// axum and tower answer some errors (404 fallback, 405, 413 from the body limit) with a
/// plain or empty body. Those become problem+json here; HTML error pages and problems
/// already made are left alone. Only headers that matter to the client are carried over.
fn problem_for_plain_errors(res: Response, id: &RequestId) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A handler's own JSON error (RFC 6749 bodies on the OAuth token endpoint) is meant;
    // only axum's plain-text rejections and empty bodies are rewritten.
    if ct.starts_with("application/problem+json")
        || ct.starts_with("application/json")
        || ct.starts_with("text/html")
    {
        return res;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "There is nothing at this address.".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = res
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            (
                "method_not_allowed",
                format!("This method is not allowed here. Allowed: {allowed}."),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body is larger than this server accepts.".into(),
        ),
        s if s.is_server_error() => (
            "internal",
            "Something went wrong on our side; quote the request id if you report it.".into(),
        ),
        _ => ("bad_request", "The request could not be handled.".into()),
    };
    let mut p = Problem::new(status, code, detail);
    p.request_id = Some(id.as_str().to_owned());
    let mut fixed = p.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = res.headers().get(&name) {
            fixed.headers_mut().insert(name, v.clone());
        }
    }
    fixed
}

/// The route groups of the design: search answers fast or not at all, payments may wait
/// on a gateway. Matched by path prefix so a service cannot forget to opt in.
pub fn timeout_for(t: &Timeouts, path: &str) -> Duration {
    let secs = if path.starts_with("/api/v1/search") {
        t.search_secs
    } else if path.starts_with("/api/v1/payments") || path.starts_with("/api/v1/wallets") {
        t.payment_secs
    } else {
        t.default_secs
    };
    Duration::from_secs(secs)
}

impl Observe {
    /// The request through the rate limit, then the rest of the stack within its timeout.
    async fn admit_and_run(&self, req: Request, next: Next) -> Response {
        match self.limits.refusal(&req) {
            None => timeout(&self.timeouts, req, next).await,
            Some(refused) => refused,
        }
    }
}

async fn timeout(t: &Timeouts, req: Request, next: Next) -> Response {
    let limit = timeout_for(t, req.uri().path());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(timeout_secs = limit.as_secs(), "request timed out");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "The request took longer than {} s and was abandoned; it may or may not have taken effect. Retry with the same Idempotency-Key where the route supports one.",
                    limit.as_secs()
                ),
            );
            p.retry_after = Some(1);
            p.into_response()
        }
    }
}

/// Limiter plus the switch from config; built once per router.
pub struct Limits {
    pub limiter: RateLimiter,
    pub enabled: bool,
    pub trusted_proxies: Vec<IpAddr>,
}

impl Limits {
    pub fn new(cfg: &RateLimit, trusted_proxies: &[IpAddr]) -> Self {
        Limits {
            limiter: RateLimiter::new(cfg.per_second, cfg.burst),
            enabled: cfg.enabled,
            trusted_proxies: trusted_proxies.to_vec(),
        }
    }

    /// The 429 answer for a client over its rate; `None` lets the request in.
    fn refusal(&self, req: &Request) -> Option<Response> {
        if !self.enabled {
            return None;
        }
        // Without connection info (a router driven in-process) every caller is one client.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let ip = if self.trusted_proxies.is_empty() {
            peer
        } else {
            let forwarded: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            client_ip(peer, &forwarded, &self.trusted_proxies)
        };
        let wait = self.limiter.check(ip, Instant::now()).err()?;
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests from your address; slow down and retry later.",
        );
        p.retry_after = Some(retry_after_secs(wait));
        Some(p.into_response())
    }
}

/// A panicking handler becomes a 500 problem; the panic message goes to the log only.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = msg, "handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong on our side; quote the request id if you report it.",
    )
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_route_groups() {
        let t = Timeouts {
            default_secs: 30,
            search_secs: 5,
            payment_secs: 60,
        };
        assert_eq!(timeout_for(&t, "/api/v1/search").as_secs(), 5);
        assert_eq!(timeout_for(&t, "/api/v1/search/suggest").as_secs(), 5);
        assert_eq!(timeout_for(&t, "/api/v1/payments/123").as_secs(), 60);
        assert_eq!(timeout_for(&t, "/api/v1/wallets").as_secs(), 60);
        assert_eq!(timeout_for(&t, "/api/v1/orders").as_secs(), 30);
        assert_eq!(timeout_for(&t, "/health").as_secs(), 30);
    }
}
