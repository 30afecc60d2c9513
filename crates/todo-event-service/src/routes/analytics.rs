//! `GET /analytics/summary`: counts per event type (in total and per hour) and
//! created-to-completed times.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{ApiError, Result};
use crate::startup::AppState;
use crate::store::{self, Summary};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/analytics/summary", get(summary))
}

#[derive(Deserialize)]
struct Params {
    hours: Option<String>,
}

async fn summary(State(state): State<AppState>, Query(p): Query<Params>) -> Result<Json<Summary>> {
    let hours = match p.hours {
        None => 24,
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=24 * 31).contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                field: "hours",
                message: "must be an integer from 1 to 744".into(),
            })?,
    };
    Ok(Json(store::summary(&state.pool, hours).await?))
}
