//! `GET /analytics/summary`: counts per event type (in total and per hour) and
//! created-to-completed times.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use todo_api::Problem;
use utoipa::IntoParams;

use super::query_int;
use crate::error::Result;
use crate::state::AppState;
use crate::store::{self, Summary};

/// Longest window of `hours`: 31 days.
pub const MAX_HOURS: i64 = 24 * 31;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/analytics/summary", get(summary))
}

/// Query of `GET /analytics/summary`; any other parameter is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SummaryQuery {
    /// The window of the hourly counts, 1 to 744 hours; 24 when absent.
    #[param(minimum = 1, maximum = 744, default = 24, nullable = false)]
    hours: Option<i64>,
}

/// Events per type in total and per hour, and how long tasks took to complete.
#[utoipa::path(get, path = "/analytics/summary", tag = "analytics", params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = Summary),
        (status = 400, description = "A query parameter is invalid or unknown; `errors` names it", body = Problem)))]
pub async fn summary(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Summary>> {
    let hours = query_int(&params, "hours", 1..=MAX_HOURS, 24)?;
    let hours = i32::try_from(hours).expect("at most MAX_HOURS");
    Ok(Json(store::summary(&state.pool, hours).await?))
}
