//! `GET /audit/tasks/{id}`: a task's event history, in order.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::{ApiError, Result};
use crate::startup::AppState;
use crate::store::{self, AuditEntry, ProjectedTask};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/audit/tasks/{id}", get(task_audit))
}

/// A task's history and its projected current state.
#[derive(Serialize)]
pub struct TaskAudit {
    /// The task.
    pub task_id: i64,
    /// Its current state as the events say.
    pub current: Option<ProjectedTask>,
    /// Its events, oldest first.
    pub events: Vec<AuditEntry>,
}

async fn task_audit(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskAudit>> {
    let task_id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest {
            field: "id",
            message: "must be a positive integer".into(),
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
