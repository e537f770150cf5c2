//! The domain error every service returns. It knows nothing of HTTP: `http::problem`
//! maps each variant to a status and an RFC 9457 body, and the web pages to an HTML page.

use std::fmt;

/// One invalid field of a request, with a stable code a client can switch on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Absent, or not the caller's to see (we prefer 404 when existence would leak).
    #[error("{0} not found")]
    NotFound(String),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a transition not allowed, a duplicate).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A version given with the request is stale.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request is well-formed but some fields are invalid.
    #[error("{} field(s) are invalid", .0.len())]
    Validation(Vec<FieldError>),
    /// The request could not be parsed at all.
    #[error("{0}")]
    BadRequest(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A part of the system is not ready yet (a rebuilding index); retry later.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// The embedded stores failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Anything else: a bug or an unexpected condition. Logged, answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable snake_case code shown to clients and documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict { code, .. } => code,
            Error::PreconditionFailed(_) => "stale_version",
            Error::Validation(_) => "validation",
            Error::BadRequest(_) => "bad_request",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "unavailable",
            Error::Storage(_) => "storage",
            Error::Internal(_) => "internal",
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn internal(e: impl fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(e.to_string())
            }
        }
    )*};
}

storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SavepointError,
    fjall::Error
);

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("encoding: {e}"))
    }
}
