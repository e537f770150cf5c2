//! The request id: taken from `x-request-id` when it is well-formed, else a new UUIDv7.
//! It is echoed in the response header, in problem bodies and in every log line of the
//! request. It must never carry anything but the safe characters below.

use axum::http::HeaderValue;
use std::sync::Arc;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request id; also put in the request's extensions for handlers that want it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Accepts 1-64 characters of `[A-Za-z0-9._-]`; anything else (empty, too long,
    /// spaces, quotes, non-ASCII) is replaced so that logs and headers stay clean.
    pub fn parse(raw: &str) -> Option<RequestId> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        ok.then(|| RequestId(raw.into()))
    }

    pub fn generate() -> RequestId {
        RequestId(crate::clock::loose_v7().to_string().into())
    }

    pub fn from_header(value: Option<&HeaderValue>) -> RequestId {
        value
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn header_value(&self) -> HeaderValue {
        // Only safe ASCII gets in, so this cannot fail; the fallback keeps clippy honest.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// The id of the request being handled on this task, if any.
    pub fn current() -> Option<RequestId> {
        CURRENT.try_with(|id| id.clone()).ok()
    }

    /// Runs `fut` with this id as the current one (see [`RequestId::current`]).
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept() {
        for ok in [
            "a",
            "abc-123_X.y",
            &"x".repeat(64),
            "0190f5b2-7c1e-7000-8000-000000000000",
        ] {
            assert_eq!(RequestId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a\"b",
            "é",
            "a/b",
            "a\nb",
            "<script>",
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn missing_or_bad_header_gets_a_uuid_v7() {
        let id = RequestId::from_header(Some(&HeaderValue::from_static("has space")));
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let id = RequestId::from_header(None);
        assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
    }
}
