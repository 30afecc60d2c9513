//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::startup::AppState;

/// `/health`, `/ready`, `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// Live: the process answers.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database and Kafka answer within a second.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = async {
        tokio::time::timeout(
            Duration::from_secs(1),
            sqlx::query("SELECT 1").execute(&state.pool),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    };
    let kafka = state.kafka.ready(Duration::from_secs(1));
    let (db, kafka) = tokio::join!(db, kafka);
    let word = |up: bool| if up { "up" } else { "down" };
    let body = json!({ "status": if db && kafka { "ready" } else { "unavailable" }, "database": word(db), "kafka": word(kafka) });
    let status = if db && kafka {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
