//! Event payloads from task rows: the one place that maps our tables onto the
//! event contract.

use chrono::{DateTime, Utc};
use todo_events::{Changes, Payload, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};

use crate::domain::Task;

/// `task.created` for a new task.
pub fn created(task: &Task) -> Payload {
    Payload::Created(TaskCreated {
        task_id: task.id,
        title: task.title.clone(),
        description: task.description.clone(),
        status: task.status(),
        created_at: task.created_at,
        user_id: task.user_id.clone(),
        task_version: Some(task.version),
    })
}

/// `task.updated` for a change from `before` to `after`.
pub fn updated(before: &Task, after: &Task) -> Payload {
    Payload::Updated(TaskUpdated {
        task_id: after.id,
        title: after.title.clone(),
        description: after.description.clone(),
        status: after.status(),
        updated_at: after.updated_at,
        changes: changes(before, after),
        user_id: after.user_id.clone(),
        task_version: Some(after.version),
    })
}

/// Which fields differ between two states of a task.
pub fn changes(before: &Task, after: &Task) -> Changes {
    Changes {
        title: before.title != after.title,
        description: before.description != after.description,
        status: before.status() != after.status(),
    }
}

/// `task.completed` for a task that just became complete.
pub fn completed(task: &Task) -> Payload {
    Payload::Completed(TaskCompleted {
        task_id: task.id,
        completed_at: task.completed_at.unwrap_or(task.updated_at),
        user_id: task.user_id.clone(),
        task_version: Some(task.version),
    })
}

/// `task.deleted` for a task deleted at `at`; the deletion is one more change,
/// so its version is the row's last version plus one.
pub fn deleted(task: &Task, at: DateTime<Utc>) -> Payload {
    Payload::Deleted(TaskDeleted {
        task_id: task.id,
        deleted_at: at,
        user_id: task.user_id.clone(),
        task_version: Some(task.version + 1),
    })
}
