//! The read API's one error type and its `application/problem+json` form
//! (RFC 9457). Internal errors are logged once, with their cause chain, and
//! never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use todo_api::{FieldError, Problem};

/// `Result` with the API error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A path segment or query parameter is invalid (400).
    #[error("invalid {field}: {message}")]
    BadRequest {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No events for this task (404).
    #[error("no events for task {0}")]
    TaskNotFound(i64),
    /// The database is unreachable (503).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The service has not reached (and migrated) its database since it started (503).
    #[error("database not reached yet")]
    NotConnected,
    /// A console action needs the admin token, and none or another was sent (401).
    #[error("the admin token is missing or wrong")]
    Unauthorized,
    /// The console is read-only: no admin token is configured (403).
    #[error("the console is read-only")]
    ReadOnly,
    /// Kafka could not be read or written for the request (503).
    #[error("kafka unavailable")]
    KafkaUnavailable(#[source] anyhow::Error),
    /// Anything else (500).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::classify(&e) == crate::store::Failure::Outage {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::TaskNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) | ApiError::NotConnected | ApiError::KafkaUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ReadOnly => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status_code();
        let (kind, detail) = match self {
            ApiError::BadRequest { field, message } => {
                let errors = vec![FieldError::new(*field, message.clone())];
                return Problem::new(
                    status,
                    "invalid-parameter",
                    Problem::summary(&errors),
                    errors,
                );
            }
            ApiError::TaskNotFound(id) => (
                "not-found",
                format!("no events were processed for task {id}"),
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "the database is unavailable; retry shortly".into(),
            ),
            ApiError::NotConnected => (
                "unavailable",
                "the service has not reached its database yet; retry shortly".into(),
            ),
            ApiError::Unauthorized => {
                let errors = vec![FieldError::new(
                    "token",
                    "send the console's admin token as `Authorization: Bearer <token>`",
                )];
                return Problem::new(status, "unauthorized", Problem::summary(&errors), errors);
            }
            ApiError::ReadOnly => (
                "read-only",
                "the console is read-only: set CONSOLE_ADMIN_TOKEN on the event service to allow replays"
                    .into(),
            ),
            ApiError::KafkaUnavailable(e) => (
                "unavailable",
                format!("Kafka could not be reached: {e:#}; retry shortly"),
            ),
            ApiError::Internal(_) => ("internal", "an internal error occurred".into()),
        };
        Problem::new(status, kind, detail, vec![])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            ApiError::KafkaUnavailable(e) => tracing::warn!(error = %e, "kafka unavailable"),
            _ => {}
        }
        self.problem().into_response()
    }
}
