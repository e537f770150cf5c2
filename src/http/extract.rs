//! The extractors handlers use instead of axum's: `Json`, `Query` and `Path` with the
//! same shapes, but every rejection is problem+json naming the field at fault.
//! Unknown fields are refused only if the target type says `#[serde(deny_unknown_fields)]`.

use crate::error::{Error, FieldError};
use crate::http::problem::Problem;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON body in, or a JSON body out. 415 unless the content type is JSON, 413 over the
/// body limit, 400 for malformed JSON, 422 with per-field `errors` for a wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `content-type: application/json`.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Problem::from(&Error::BadRequest(
                    "The request body could not be read.".into(),
                ))
            }
        })?;
        parse_json(&bytes).map(Json).map_err(|p| *p)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

pub(crate) fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is larger than this server accepts.",
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON document into `T`, mapping each kind of failure to its problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Problem>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = path_string(e.path());
            let inner = e.into_inner();
            if inner.classify() == serde_json::error::Category::Data {
                let message = strip_position(&inner.to_string());
                return Err(Box::new(Problem::from(&Error::Validation(vec![
                    field_error(&path, &message),
                ]))));
            }
            return Err(Box::new(malformed(&inner)));
        }
    };
    de.end().map_err(|e| Box::new(malformed(&e)))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> Problem {
    Problem::from(&Error::BadRequest(format!(
        "The body is not valid JSON (line {}, column {}): {}",
        e.line(),
        e.column(),
        strip_position(&e.to_string())
    )))
}

/// Query string parameters, with the same 422 mapping as [`Json`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = path_string(e.path());
                let message = e.into_inner().to_string();
                Problem::from(&Error::Validation(vec![field_error(&path, &message)]))
            })
    }
}

/// Path parameters; a segment of the wrong form is a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                // Primitives and tuples do not say which parameter failed; the route does.
                let names: Vec<String> =
                    axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .map(|raw| raw.iter().map(|(k, _)| k.to_string()).collect())
                        .unwrap_or_default();
                let name_at =
                    |i: usize| names.get(i).cloned().unwrap_or_else(|| "path".to_string());
                let (field, message) = match e.kind() {
                    ErrorKind::ParseErrorAtKey {
                        key, expected_type, ..
                    } => (key.clone(), format!("expected {expected_type}")),
                    ErrorKind::ParseErrorAtIndex {
                        index,
                        expected_type,
                        ..
                    } => (name_at(*index), format!("expected {expected_type}")),
                    ErrorKind::ParseError { expected_type, .. } => {
                        (name_at(0), format!("expected {expected_type}"))
                    }
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        (key.clone(), "not valid UTF-8".to_string())
                    }
                    ErrorKind::DeserializeError { key, message, .. } => {
                        (key.clone(), message.clone())
                    }
                    other => ("path".to_string(), other.to_string()),
                };
                let mut p = Problem::from(&Error::BadRequest(format!(
                    "The path parameter `{field}` is malformed."
                )));
                p.errors = vec![FieldError::new(field, "invalid", message)];
                Err(p)
            }
            Err(e) => Err(Problem::from(&Error::internal(e.body_text()))),
        }
    }
}

/// `a.b[0].c` from serde_path_to_error, with the root shown as "" rather than ".".
fn path_string(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." { String::new() } else { s }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// serde_json appends " at line L column C"; the field path says more to a client.
fn strip_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_string(),
        None => message.to_string(),
    }
}

/// The text between the first pair of backticks: serde names fields that way.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Turns a serde data error into a field error with a stable code. Missing and unknown
/// fields are reported at the field itself, not at the object that lacks or has it.
fn field_error(path: &str, message: &str) -> FieldError {
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = quoted(rest).unwrap_or("?");
        return FieldError::new(join(path, name), "missing", "this field is required");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let name = quoted(rest).unwrap_or("?");
        let expected = rest
            .split_once(", expected ")
            .map(|(_, e)| format!("; expected {e}"))
            .unwrap_or_default();
        // serde_path_to_error has already stepped into the unknown key.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            join(path, name)
        };
        return FieldError::new(
            field,
            "unknown_field",
            format!("this field is not accepted{expected}"),
        );
    }
    let code = if message.starts_with("invalid type") {
        "invalid_type"
    } else if message.starts_with("invalid value") {
        "invalid_value"
    } else if message.starts_with("invalid length") {
        "invalid_length"
    } else if message.starts_with("unknown variant") {
        "unknown_variant"
    } else {
        "invalid"
    };
    let field = if path.is_empty() { "body" } else { path };
    FieldError::new(field, code, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        qty: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        email: String,
        items: Vec<Item>,
    }

    fn problem(body: &str) -> Problem {
        *parse_json::<Order>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_json_is_400() {
        for body in [
            "{",
            "",
            "{\"email\": }",
            "{\"email\": \"a\", \"items\": []} trailing",
        ] {
            let p = problem(body);
            assert_eq!(p.status, 400, "{body}");
            assert_eq!(p.code, "bad_request");
        }
    }

    #[test]
    fn shape_errors_are_422_at_the_field() {
        let p = problem(r#"{"email":"a@b","items":[{"name":"x","qty":1,"colour":"red"}]}"#);
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "items[0].colour");
        assert_eq!(p.errors[0].code, "unknown_field");

        let p = problem(r#"{"items":[]}"#);
        assert_eq!(
            (p.errors[0].field.as_str(), p.errors[0].code.as_str()),
            ("email", "missing")
        );

        let p = problem(r#"{"email":"a","items":[{"name":"x","qty":"many"}]}"#);
        assert_eq!(p.errors[0].field, "items[0].qty");
        assert_eq!(p.errors[0].code, "invalid_type");
        assert!(
            !p.errors[0].message.contains("line"),
            "{}",
            p.errors[0].message
        );

        let p = problem("\"just a string\"");
        assert_eq!(
            (p.errors[0].field.as_str(), p.errors[0].code.as_str()),
            ("body", "invalid_type")
        );
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
