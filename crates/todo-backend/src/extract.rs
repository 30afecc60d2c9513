//! Request extractors that turn every kind of bad input into the same
//! `application/problem+json` error shape: JSON bodies, path ids, the
//! correlation id and the caller's identity.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::Auth;
use crate::domain::{FieldError, TaskId};
use crate::error::ApiError;
use crate::outbox::Origin;
use crate::state::AppState;

/// Largest request body accepted (413 above); `routes::router` applies it.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// A JSON body, rejected with a problem document naming the field.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: BODY_LIMIT_BYTES,
                }
            } else {
                ApiError::MalformedJson(rej.body_text())
            }
        })?;
        // NB: serde also builds a struct from a JSON array (by position);
        // every body of this API is an object, so anything else is refused.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => parse_json(&bytes).map(AppJson),
            Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => Err(
                ApiError::Validation(vec![FieldError::new("body", "must be a JSON object")]),
            ),
            _ => parse_json::<serde_json::Value>(&bytes).and(Err(ApiError::MalformedJson(
                "expected a JSON object".into(),
            ))),
        }
    }
}

/// Deserializes `bytes`, telling syntax errors (400) from data errors (422,
/// with the field's path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                Category::Data => ApiError::Validation(vec![field_error(&path, &inner)]),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::MalformedJson(inner.to_string())
                }
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

fn field_error(path: &str, err: &serde_json::Error) -> FieldError {
    let full = err.to_string();
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m)
        .to_owned();
    // serde names unknown and missing fields only in its message.
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let field = match (named, path) {
        (Some(name), ".") => name.to_owned(),
        // serde_path_to_error already ends the path with an unknown field.
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), p) => format!("{p}.{name}"),
        (None, ".") => "body".to_owned(),
        (None, p) => p.to_owned(),
    };
    FieldError::new(field, message)
}

/// The `{id}` path segment as a [`TaskId`], or a 400 naming `id`.
pub struct TaskIdPath(pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(vec![FieldError::new("id", e.body_text())]))?;
        TaskId::parse(&raw)
            .map(TaskIdPath)
            .map_err(|e| ApiError::BadRequest(vec![e]))
    }
}

/// Header carrying the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id: the caller's `X-Correlation-ID` when it is a
/// UUID, otherwise a new UUID v4 (set by the correlation layer of `telemetry`).
#[derive(Clone, Copy, Debug)]
pub struct CorrelationId(pub Uuid);

impl CorrelationId {
    /// Reads the caller's header value, or makes a new id.
    pub fn from_header(value: Option<&str>) -> Self {
        Self(
            value
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .unwrap_or_else(Uuid::new_v4),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .copied()
            .unwrap_or_else(|| CorrelationId(Uuid::new_v4())))
    }
}

/// The request's correlation id and span (set by
/// `todo_runtime::trace::request_layer`).
impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CorrelationId(correlation_id) = CorrelationId::from_request_parts(parts, state).await?;
        Ok(Self {
            correlation_id,
            trace: parts.extensions.get().copied(),
        })
    }
}

/// Who is calling: the JWT subject when authentication is on, else nobody.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub Option<String>);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(auth) = state.auth.as_ref() else {
            return Ok(CurrentUser(None));
        };
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| ApiError::Unauthorized("a Bearer token is required".into()))?;
        Auth::subject(auth, token.trim()).map(|sub| CurrentUser(Some(sub)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        n: Option<i32>,
    }

    fn field_of(r: Result<Body, ApiError>) -> (u16, String) {
        match r.unwrap_err() {
            e @ ApiError::Validation(_) => {
                let ApiError::Validation(ref f) = e else {
                    unreachable!()
                };
                (e.status_code().as_u16(), f[0].field.clone())
            }
            e => (e.status_code().as_u16(), String::new()),
        }
    }

    #[test]
    fn unknown_missing_and_mistyped_fields_are_named() {
        assert_eq!(
            field_of(parse_json(br#"{"title":"a","x":1}"#)),
            (422, "x".into())
        );
        assert_eq!(field_of(parse_json(br#"{"n":1}"#)), (422, "title".into()));
        assert_eq!(
            field_of(parse_json(br#"{"title":5}"#)),
            (422, "title".into())
        );
        assert_eq!(
            field_of(parse_json(br#"{"title":"a","n":"x"}"#)),
            (422, "n".into())
        );
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_400() {
        assert_eq!(field_of(parse_json(br#"{"title":"#)).0, 400);
        assert_eq!(field_of(parse_json(br#"{"title":"a"} x"#)).0, 400);
        assert_eq!(field_of(parse_json(b"")).0, 400);
    }

    #[test]
    fn a_correlation_id_that_is_not_a_uuid_is_replaced() {
        let given = "0b6c1b0e-8f6b-4f2a-9a53-7f0f2b3c9d11";
        assert_eq!(CorrelationId::from_header(Some(given)).0.to_string(), given);
        assert_ne!(
            CorrelationId::from_header(Some("not-a-uuid")).0.to_string(),
            "not-a-uuid"
        );
    }
}
