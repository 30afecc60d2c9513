//! HTTP routes, one file per resource, and [`router`], which assembles them
//! into the API with its middleware.

pub mod health;
pub mod openapi;
pub mod tasks;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Router;
use tower::ServiceBuilder;

use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::state::AppState;

/// The whole API over `state`: the task routes (503 until the database is
/// reached), health and the OpenAPI document, with the correlation id,
/// request spans, the body cap and the request timeout.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let tasks = todo_runtime::http::when_up(tasks::router(), state.database.clone(), || {
        ApiError::NotConnected.into_response()
    });
    let router = Router::new()
        .merge(tasks)
        .merge(health::router())
        .merge(openapi::router())
        // One layer call for the three (see `with_common_layers`), outermost
        // first.
        .layer(
            ServiceBuilder::new()
                .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
                .layer(axum::middleware::from_fn(
                    todo_runtime::trace::request_layer,
                ))
                .layer(axum::middleware::from_fn(
                    crate::telemetry::correlation_layer,
                )),
        )
        .with_state(state);
    // Outermost: an unknown path's 404 and a timeout's 503 are problem
    // documents too, like every other error answer.
    todo_runtime::http::with_common_layers(router, request_timeout)
        .layer(axum::middleware::from_fn(todo_api::bare_errors_as_problems))
}
