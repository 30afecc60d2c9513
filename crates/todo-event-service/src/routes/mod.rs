//! The service's HTTP API: the read API, one file per resource, each
//! exporting `router()`, assembled here by [`router`] with the console, the
//! health and OpenAPI routes and an intake's endpoints.

pub mod analytics;
pub mod audit;
pub mod events;
pub mod health;
pub mod openapi;

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole API over `state`: the read API, answering 503 until the
/// database is reached, with `intake`'s endpoints (the Dapr intake's
/// deliveries wait for the database too, so Dapr delivers again); the
/// console, which renders its own pages while the database is away; health
/// and OpenAPI. Outermost, the common layers, with `request_timeout`, and
/// problem documents for an unknown path's 404 and a timeout's 503, like
/// every other error answer.
pub fn router(
    state: AppState,
    intake: Option<Router<AppState>>,
    request_timeout: Duration,
) -> Router {
    let mut read_api = Router::new()
        .merge(audit::router())
        .merge(events::router())
        .merge(analytics::router());
    if let Some(intake) = intake {
        read_api = read_api.merge(intake);
    }
    let read_api = todo_runtime::http::when_up(read_api, state.database.clone(), || {
        ApiError::NotConnected.into_response()
    });
    let router = Router::new()
        .merge(read_api)
        .merge(crate::console::router())
        .merge(health::router())
        .merge(openapi::router())
        .with_state(state);
    todo_runtime::http::with_common_layers(router, request_timeout)
        .layer(axum::middleware::from_fn(todo_api::bare_errors_as_problems))
}

/// The one integer query parameter `name` of a route that has no other: in
/// `range`, `default` when absent; any other parameter is refused, like the
/// backend's, so a misspelt one is not silently ignored.
fn query_int(
    params: &HashMap<String, String>,
    name: &'static str,
    range: RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ApiError> {
    if let Some(other) = params.keys().find(|k| k.as_str() != name) {
        return Err(ApiError::BadRequest {
            field: "query",
            message: format!("unknown query parameter `{other}` (this route takes {name})"),
        });
    }
    match params.get(name) {
        None => Ok(default),
        Some(raw) => todo_api::parse_decimal(raw, 19)
            .filter(|n| range.contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                field: name,
                message: format!(
                    "must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
    }
}
