//! CSRF protection for every form POST: the token is an HMAC of the visitor cookie (which
//! is HttpOnly and SameSite=Lax, so another site can neither read nor choose it), put in
//! each form as `<input type="hidden" name="csrf">`. [`CsrfForm`] checks it before the
//! handler runs; a missing or wrong token is a 403 page and nothing changes.

use super::render::WebError;
use super::session::Viewer;
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

pub const FIELD: &str = "csrf";

/// The token forms must carry for this visitor.
pub fn token(state: &AppState, viewer: &Viewer) -> String {
    state.web.cookie_key.sign("csrf", &viewer.visitor)
}

pub fn valid(state: &AppState, viewer: &Viewer, sent: &str) -> bool {
    state.web.cookie_key.verify("csrf", &viewer.visitor, sent)
}

/// A form body (`application/x-www-form-urlencoded`) whose CSRF token was checked; `T`
/// gets the other fields (use `#[serde(deny_unknown_fields)]` freely: `csrf` is taken out).
/// Also hands back the [`Viewer`] so the handler need not extract it again.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let viewer = req
            .extensions()
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| WebError::internal("CsrfForm used outside the web router"))?;
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(WebError::status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "errors.bad_form",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::status(StatusCode::PAYLOAD_TOO_LARGE, "errors.bad_form"))?;
        let mut sent = None;
        let mut rest = Vec::new();
        for (k, v) in form_urlencoded::parse(&body) {
            if k == FIELD {
                sent = Some(v.into_owned());
            } else {
                rest.push((k.into_owned(), v.into_owned()));
            }
        }
        if !sent.is_some_and(|s| valid(state, &viewer, &s)) {
            return Err(WebError::status(StatusCode::FORBIDDEN, "errors.csrf"));
        }
        let encoded = serde_urlencoded::to_string(&rest)
            .map_err(|_| WebError::status(StatusCode::BAD_REQUEST, "errors.bad_form"))?;
        serde_urlencoded::from_str(&encoded)
            .map(CsrfForm)
            .map_err(|e| {
                tracing::debug!(error = %e, "form fields refused");
                WebError::status(StatusCode::BAD_REQUEST, "errors.bad_form")
            })
    }
}
