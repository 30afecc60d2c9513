//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::AppState;

/// `/health`, `/ready`, `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// Live: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database is reached, migrated, and answers within a second.
/// Kafka is not part of it: the outbox keeps every write while Kafka is away,
/// so the API serves without it. Its state is in the body, for people.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "The database is up; the body names each dependency's state", body = todo_api::openapi::ReadyReport),
              (status = 503, description = "The database is down; the body names each dependency's state", body = todo_api::openapi::ReadyReport)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = todo_runtime::db::answers(&state.database, &state.pool).await;
    let body = json!({
        "status": if db { "ready" } else { "unavailable" },
        "database": if db { "up" } else { "down" },
        "kafka": state.kafka.state().word(),
    });
    let status = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
