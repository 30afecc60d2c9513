//! `GET /audit/tasks/{id}`: a task's event history, in order.

use axum::extract::{RawPathParams, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use todo_api::{parse_decimal, Problem};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::store::{self, AuditEntry, ProjectedTask};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/audit/tasks/{id}", get(task_audit))
}

/// A task's history and its projected current state.
#[derive(Serialize, ToSchema)]
pub struct TaskAudit {
    /// The task.
    #[schema(minimum = 1)]
    pub task_id: i64,
    /// Its current state as the events say; null if none was projected.
    pub current: Option<ProjectedTask>,
    /// Its events, oldest first (by task version where known, else by time).
    #[schema(min_items = 1)]
    pub events: Vec<AuditEntry>,
}

/// The `{id}` of `/audit/tasks/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TaskIdParam {
    /// The task's id: a positive 64-bit integer in decimal digits.
    #[param(minimum = 1, example = 42)]
    id: i64,
}

/// A task's events as this service processed them, and its projected state.
#[utoipa::path(get, path = "/audit/tasks/{id}", tag = "audit", params(TaskIdParam),
    responses(
        (status = 200, description = "The task's history", body = TaskAudit),
        (status = 400, description = "`id` is not a positive 64-bit integer", body = Problem),
        (status = 404, description = "No event of this task was processed", body = Problem)))]
pub async fn task_audit(
    State(state): State<AppState>,
    // NB: not `Path<String>`, which utoipa would list as a second `id`.
    path: RawPathParams,
) -> Result<Json<TaskAudit>> {
    let id = path.iter().find_map(|(k, v)| (k == "id").then_some(v));
    let task_id = id
        .and_then(|id| parse_decimal(id, 19))
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest {
            field: "id",
            message: "must be a positive 64-bit integer".into(),
        })?;
    let events = store::task_history(&state.pool, task_id).await?;
    if events.is_empty() {
        return Err(ApiError::TaskNotFound(task_id));
    }
    let current = store::projected_task(&state.pool, task_id).await?;
    Ok(Json(TaskAudit {
        task_id,
        current,
        events,
    }))
}
