//! `GET /events?limit=`: the most recently processed events.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use todo_api::Problem;
use utoipa::IntoParams;

use super::query_int;
use crate::error::Result;
use crate::state::AppState;
use crate::store::{self, AuditEntry};

/// Default `limit`.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(recent))
}

/// Query of `GET /events`; any other parameter is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RecentQuery {
    /// How many events, 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500, default = 50, nullable = false)]
    limit: Option<i64>,
}

/// The most recently processed events, newest first.
#[utoipa::path(get, path = "/events", tag = "audit", params(RecentQuery),
    responses(
        (status = 200, description = "Events, newest first", body = Vec<AuditEntry>),
        (status = 400, description = "A query parameter is invalid or unknown; `errors` names it", body = Problem)))]
pub async fn recent(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditEntry>>> {
    let limit = query_int(&params, "limit", 1..=MAX_LIMIT, DEFAULT_LIMIT)?;
    Ok(Json(store::recent_events(&state.pool, limit).await?))
}
