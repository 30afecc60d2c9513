//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::intake::kafka::KafkaState;
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

/// Ready: the read API can serve, i.e. the database is reached, migrated and
/// answers within a second: 200, else 503. Kafka is reported apart in the
/// body (`kafka`: `up`, `connecting` or `down`, with the last cause), and the
/// status says `ready` when both are up, `degraded` when only the database
/// is: consuming stalls without Kafka, but the read API does not, so Kafka
/// does not take the service out of rotation. Consumer lag is the signal for
/// a consumer that is not keeping up (docs/reliability.md).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "The database is up; the body names each dependency's state", body = todo_api::openapi::ReadyReport),
              (status = 503, description = "The database is down; the body names each dependency's state", body = todo_api::openapi::ReadyReport)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = todo_runtime::db::answers(&state.database, &state.pool);
    let kafka = state.kafka.state(Duration::from_secs(1));
    let (db, kafka) = tokio::join!(db, kafka);
    let (kafka_word, kafka_error) = match kafka {
        KafkaState::Up => ("up", None),
        KafkaState::Connecting(e) => ("connecting", e),
        KafkaState::Down(e) => ("down", e),
    };
    let status = match (db, kafka_word) {
        (false, _) => "unavailable",
        (true, "up") => "ready",
        (true, _) => "degraded",
    };
    let mut body = json!({
        "status": status,
        "database": if db { "up" } else { "down" },
        "kafka": kafka_word,
    });
    if let Some(e) = kafka_error {
        body["kafka_error"] = json!(e);
    }
    let code = if db {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
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
