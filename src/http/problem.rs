//! RFC 9457 problem+json: the one place a domain `Error` becomes an HTTP answer.
//! 5xx causes are logged here and never shown to the client.

use crate::error::{Error, FieldError};
use crate::http::request_id::RequestId;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:souk:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            request_id: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        let status = status_of(e);
        let detail = if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "request failed");
            match e {
                Error::Unavailable { message, .. } => message.clone(),
                _ => "Something went wrong on our side; quote the request id if you report it."
                    .to_string(),
            }
        } else {
            e.to_string()
        };
        let mut p = Problem::new(status, e.code(), detail);
        match e {
            Error::Validation(errors) => {
                p.title = "Invalid request".into();
                p.errors = errors.clone();
            }
            Error::RateLimited { retry_after_secs } => p.retry_after = Some(*retry_after_secs),
            Error::Unavailable {
                retry_after_secs, ..
            } => p.retry_after = Some(*retry_after_secs),
            _ => {}
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        // Built inside a request, a problem carries that request's id without every
        // handler having to pass it along.
        if self.request_id.is_none() {
            self.request_id = RequestId::current().map(|id| id.as_str().to_owned());
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(&self).into_response()
    }
}
