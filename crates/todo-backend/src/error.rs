//! The API's one error type and its `application/problem+json` form (RFC 9457).
//! Internal errors are logged once, with their cause chain, and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use todo_api::Problem;

use crate::domain::FieldError;

/// `Result` with the API error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body was not valid JSON (400).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A query parameter or path segment was invalid (400).
    #[error("invalid request")]
    BadRequest(Vec<FieldError>),
    /// Fields failed validation, or a field was unknown, missing or mistyped (422).
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// The body exceeded the size cap (413).
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    /// The body was not `application/json` (415).
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// No bearer token, or an invalid one (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// No such task (for this user) (404).
    #[error("task {0} not found")]
    TaskNotFound(i64),
    /// Other changes to the task kept winning the race for its next version (409).
    #[error("task {0} changed concurrently")]
    Conflict(i64),
    /// The database is unreachable or overloaded (503).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The service has not reached (and migrated) its database since it started (503).
    #[error("database not reached yet")]
    NotConnected,
    /// Anything else (500).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e.into())
        }
    }
}

/// Connection-level failures: the database is down, restarting or saturated.
pub use todo_runtime::db::is_outage as is_unavailable;

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(vec![e])
    }
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TaskNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) | ApiError::NotConnected => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status_code();
        let (kind, detail, errors) = match self {
            ApiError::MalformedJson(d) => (
                "malformed-json",
                format!("the body is not valid JSON: {d}"),
                vec![],
            ),
            ApiError::BadRequest(errs) => {
                ("invalid-parameter", Problem::summary(errs), errs.clone())
            }
            ApiError::Validation(errs) => ("validation", Problem::summary(errs), errs.clone()),
            ApiError::PayloadTooLarge { limit } => (
                "payload-too-large",
                format!("the body is larger than {limit} bytes"),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "send the body as Content-Type: application/json".into(),
                vec![],
            ),
            ApiError::Unauthorized(d) => ("unauthorized", d.clone(), vec![]),
            ApiError::TaskNotFound(id) => {
                ("not-found", format!("task {id} does not exist"), vec![])
            }
            ApiError::Conflict(id) => (
                "conflict",
                format!("task {id} kept changing while this request ran; retry it"),
                vec![],
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "the database is unavailable; retry shortly".into(),
                vec![],
            ),
            ApiError::NotConnected => (
                "unavailable",
                "the service has not reached its database yet; retry shortly".into(),
                vec![],
            ),
            ApiError::Internal(_) => ("internal", "an internal error occurred".into(), vec![]),
        };
        Problem::new(status, kind, detail, errors)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
        self.problem().into_response()
    }
}
