//! `Idempotency-Key` for POSTs that move money or create orders. The same key with the
//! same body gets the stored answer back (with `Idempotent-Replayed: true`); the same key
//! with another body is refused (422); keys are scoped per principal and route and kept
//! 24 hours in redb. While a key's first request runs, a second one with it gets 409.
//! Server errors (5xx) are not stored, so a retry after one runs again.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::Json;
use crate::http::problem::Problem;
use crate::store::codec;
use crate::store::tables::{IDEMPOTENCY_EXPIRY_TO_UNIT, IDEMPOTENCY_KEY_TO_ANSWER};
use axum::body::{Body, Bytes};
use axum::extract::FromRequest;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use redb::ReadableTable;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const KEEP_SECS: i64 = 24 * 3600;

/// Keys whose first request is still running in this process.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes the in-flight mark however the request ends (even on panic or timeout).
struct Claim<'a> {
    set: &'a InFlight,
    key: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    body_hash: String,
    status: u16,
    content_type: String,
    body: String,
    stored_at: i64,
}

/// The key of a request, if it has one: 1 to 255 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    let k = v.to_str().unwrap_or("");
    if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(k.to_string()))
}

/// Parses a JSON body exactly as the [`Json`] extractor does (content type, syntax,
/// shape), for handlers that also need the raw bytes.
pub async fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Problem> {
    let mut req = axum::extract::Request::new(Body::from(body.clone()));
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        req.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    Json::<T>::from_request(req, &()).await.map(|Json(v)| v)
}

/// Runs `handler` at most once per (principal, route, key): later requests with the same
/// key and body get its stored answer. Without a key it simply runs the handler.
pub async fn guard<F, Fut>(
    state: &AppState,
    principal: &str,
    route: &str,
    headers: &HeaderMap,
    body: &[u8],
    handler: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response>,
{
    let key = match key_of(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return handler().await,
        Err(e) => return e.into_response(),
    };
    let scope = format!("{principal}/{route}/{key}");
    let hash = hex::encode(Sha256::digest(body));
    let now = state.clock.now().unix_timestamp();
    match lookup(state, &scope, now) {
        Ok(Some(s)) => return replay(s, &hash),
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    if !state.idempotency.lock().insert(scope.clone()) {
        return Error::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running",
        )
        .into_response();
    }
    let _claim = Claim {
        set: &state.idempotency,
        key: scope.clone(),
    };
    // The answer may have been stored between the lookup and the claim.
    match lookup(state, &scope, now) {
        Ok(Some(s)) => return replay(s, &hash),
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    let response = handler().await;
    if response.status().is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return Error::internal(e).into_response(),
    };
    let stored = Stored {
        body_hash: hash,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string(),
        body: STANDARD.encode(&bytes),
        stored_at: now,
    };
    if let Err(e) = save(state, scope, stored).await {
        // The request itself succeeded; a retry will run it again, which the caller's
        // own checks (payment state, order state) must then refuse.
        tracing::error!(error = %e, "could not store an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn lookup(state: &AppState, scope: &str, now: i64) -> Result<Option<Stored>> {
    let rtx = state.store.read()?;
    let t = match rtx.open_table(IDEMPOTENCY_KEY_TO_ANSWER) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(v) = t.get(scope)? else {
        return Ok(None);
    };
    let s: Stored = codec::decode(v.value())?;
    Ok((now - s.stored_at < KEEP_SECS).then_some(s))
}

fn replay(s: Stored, hash: &str) -> Response {
    if s.body_hash != hash {
        return Error::invalid(
            "Idempotency-Key",
            "idempotency_key_reused",
            "this key was used with a different request body",
        )
        .into_response();
    }
    let body = STANDARD.decode(s.body.as_bytes()).unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(&s.content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    r
}

fn expiry_key(at: i64, scope: &str) -> Vec<u8> {
    let mut k = at.to_be_bytes().to_vec();
    k.extend_from_slice(scope.as_bytes());
    k
}

async fn save(state: &AppState, scope: String, stored: Stored) -> Result<()> {
    state
        .store
        .write(move |tx| {
            let mut answers = tx.open_table(IDEMPOTENCY_KEY_TO_ANSWER)?;
            let mut expiry = tx.open_table(IDEMPOTENCY_EXPIRY_TO_UNIT)?;
            // Forget a few expired answers on each write, so the table stays about a
            // day's worth without a sweeper.
            let cutoff = expiry_key(stored.stored_at - KEEP_SECS, "");
            let old: Vec<Vec<u8>> = expiry
                .range(..cutoff.as_slice())?
                .take(16)
                .filter_map(|r| r.ok().map(|(k, _)| k.value().to_vec()))
                .collect();
            for k in old {
                expiry.remove(k.as_slice())?;
                if let Ok(s) = std::str::from_utf8(&k[8..]) {
                    let still_old = match answers.get(s)? {
                        Some(v) => {
                            codec::decode::<Stored>(v.value())?.stored_at
                                <= stored.stored_at - KEEP_SECS
                        }
                        None => false,
                    };
                    if still_old {
                        answers.remove(s)?;
                    }
                }
            }
            expiry.insert(expiry_key(stored.stored_at, &scope).as_slice(), ())?;
            answers.insert(scope.as_str(), codec::encode(&stored)?.as_slice())?;
            Ok(())
        })
        .await
}
