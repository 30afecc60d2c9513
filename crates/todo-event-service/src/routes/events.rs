//! `GET /events?limit=`: the most recently processed events.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{ApiError, Result};
use crate::startup::AppState;
use crate::store::{self, AuditEntry};

/// Default and largest `limit`.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(recent))
}

#[derive(Deserialize)]
struct Params {
    limit: Option<String>,
}

async fn recent(
    State(state): State<AppState>,
    Query(p): Query<Params>,
) -> Result<Json<Vec<AuditEntry>>> {
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                field: "limit",
                message: format!("must be an integer from 1 to {MAX_LIMIT}"),
            })?,
    };
    Ok(Json(store::recent_events(&state.pool, limit).await?))
}
