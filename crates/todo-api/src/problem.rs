//! The one error shape of every service's HTTP API: `application/problem+json`
//! (RFC 9457) with the offending fields named, and the one parser of the
//! integers that paths and query strings carry.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One rejected field of a request, named as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"field": "title", "message": "must not be empty"}))]
pub struct FieldError {
    /// The field's name (a JSON path for nested fields, `id` for the path id,
    /// the parameter's name for a query parameter, `body` for the whole body).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:todo:problem:validation",
    "title": "Unprocessable Entity",
    "status": 422,
    "detail": "title: must not be empty",
    "errors": [{"field": "title", "message": "must not be empty"}]
}))]
pub struct Problem {
    /// A URN naming the kind of problem, `urn:todo:problem:<kind>`.
    #[schema(pattern = "^urn:todo:problem:[a-z-]+$")]
    pub r#type: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status, the same as the response's.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// The offending fields, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem of `kind` (the last part of its type URN) with `status`.
    pub fn new(
        status: StatusCode,
        kind: &str,
        detail: impl Into<String>,
        errors: Vec<FieldError>,
    ) -> Self {
        Self {
            r#type: format!("urn:todo:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors,
        }
    }

    /// `field: message; ...` of `errors`, the detail of a problem about fields.
    pub fn summary(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(self)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        resp
    }
}

/// Middleware for a router's routes: an error answer that no handler wrote
/// (a 405 of a method the route lacks, an extractor's bare rejection) gets
/// the problem document every other error answer has, keeping its headers
/// (`Allow` on a 405).
pub async fn bare_errors_as_problems(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    let (kind, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "this resource does not take this method; see the Allow header",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "retry shortly"),
        _ if status.is_server_error() => ("internal", "an internal error occurred"),
        _ => ("invalid-request", "the request was refused"),
    };
    let (parts, _) = resp.into_parts();
    let mut problem = Problem::new(status, kind, detail, vec![]).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// A non-negative decimal integer of at most `max_digits` ASCII digits, and
/// nothing else: no sign, no spaces, no `+` (which `str::parse` accepts).
/// The published documents state the same rule, so what a client validates
/// before sending is what the server accepts.
pub fn parse_decimal(raw: &str, max_digits: usize) -> Option<i64> {
    if raw.is_empty() || raw.len() > max_digits || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ascii_digits_are_a_decimal() {
        assert_eq!(parse_decimal("42", 19), Some(42));
        assert_eq!(parse_decimal("007", 19), Some(7));
        for bad in ["", "+5", "-1", " 5", "5 ", "1.0", "1e3", "٣", "abc"] {
            assert_eq!(parse_decimal(bad, 19), None, "{bad:?}");
        }
    }

    #[test]
    fn a_decimal_is_bounded_by_its_digits_and_by_i64() {
        assert_eq!(parse_decimal("123", 2), None);
        assert_eq!(parse_decimal("9223372036854775807", 19), Some(i64::MAX));
        assert_eq!(parse_decimal("9223372036854775808", 19), None);
    }

    #[tokio::test]
    async fn a_405_becomes_a_problem_and_keeps_its_allow_header() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/x", axum::routing::get(|| async { "x" }))
            .layer(axum::middleware::from_fn(bare_errors_as_problems));
        let req = axum::http::Request::post("/x")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(resp.headers()[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("GET"));
    }

    #[test]
    fn a_problem_is_served_as_problem_json_with_its_status() {
        let resp = Problem::new(StatusCode::NOT_FOUND, "not-found", "no", vec![]).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
