//! The payloads of the four event types, as one Rust type per event type holding
//! the fields of the newest version. Fields a version lacks are `None` when read
//! from, and dropped when written in, that version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::kinds::{EventType, TaskStatus};

/// Which fields a `task.updated` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Changes {
    /// The title changed.
    pub title: bool,
    /// The description changed.
    pub description: bool,
    /// The status changed.
    pub status: bool,
}

/// Payload of `task.created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCreated {
    /// The new task's id (> 0).
    pub task_id: i64,
    /// Its title (non-empty).
    pub title: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Its status: `incomplete` for a new task.
    pub status: TaskStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its owner (the JWT subject), `None` without authentication. In v1 and v2.
    pub user_id: Option<String>,
    /// v2 only: the task's row version after the change.
    pub task_version: Option<i64>,
}

/// Payload of `task.updated`: the task's state after the update, and which fields
/// the update changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUpdated {
    /// The task's id (> 0).
    pub task_id: i64,
    /// Its title after the update.
    pub title: String,
    /// Its description after the update.
    pub description: Option<String>,
    /// Its status after the update.
    pub status: TaskStatus,
    /// When it was updated.
    pub updated_at: DateTime<Utc>,
    /// Which fields changed.
    pub changes: Changes,
    /// v2 only: its owner.
    pub user_id: Option<String>,
    /// v2 only: the task's row version after the change.
    pub task_version: Option<i64>,
}

/// Payload of `task.deleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDeleted {
    /// The deleted task's id (> 0).
    pub task_id: i64,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
    /// v2 only: its owner.
    pub user_id: Option<String>,
    /// v2 only: the task's row version after the change (the deletion).
    pub task_version: Option<i64>,
}

/// Payload of `task.completed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCompleted {
    /// The completed task's id (> 0).
    pub task_id: i64,
    /// When it was completed.
    pub completed_at: DateTime<Utc>,
    /// v2 only: its owner.
    pub user_id: Option<String>,
    /// v2 only: the task's row version after the change.
    pub task_version: Option<i64>,
}

/// The payload of an event; its variant is the event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `task.created`.
    Created(TaskCreated),
    /// `task.updated`.
    Updated(TaskUpdated),
    /// `task.deleted`.
    Deleted(TaskDeleted),
    /// `task.completed`.
    Completed(TaskCompleted),
}

impl Payload {
    /// The event type this payload belongs to.
    pub fn event_type(&self) -> EventType {
        match self {
            Payload::Created(_) => EventType::Created,
            Payload::Updated(_) => EventType::Updated,
            Payload::Deleted(_) => EventType::Deleted,
            Payload::Completed(_) => EventType::Completed,
        }
    }

    /// The task's id.
    pub fn task_id(&self) -> i64 {
        match self {
            Payload::Created(p) => p.task_id,
            Payload::Updated(p) => p.task_id,
            Payload::Deleted(p) => p.task_id,
            Payload::Completed(p) => p.task_id,
        }
    }

    /// The task's row version after the change (v2), if known.
    pub fn task_version(&self) -> Option<i64> {
        match self {
            Payload::Created(p) => p.task_version,
            Payload::Updated(p) => p.task_version,
            Payload::Deleted(p) => p.task_version,
            Payload::Completed(p) => p.task_version,
        }
    }

    /// The task's owner, if known.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Payload::Created(p) => p.user_id.as_deref(),
            Payload::Updated(p) => p.user_id.as_deref(),
            Payload::Deleted(p) => p.user_id.as_deref(),
            Payload::Completed(p) => p.user_id.as_deref(),
        }
    }

    /// When the change happened: `created_at`, `updated_at`, `deleted_at` or
    /// `completed_at`.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Payload::Created(p) => p.created_at,
            Payload::Updated(p) => p.updated_at,
            Payload::Deleted(p) => p.deleted_at,
            Payload::Completed(p) => p.completed_at,
        }
    }

    /// This payload as it is written in `version`: the fields that version lacks
    /// are cleared (`user_id` on all but `task.created`, and `task_version`, in v1).
    /// Decoding what was encoded in `version` gives exactly this.
    pub fn as_in_version(&self, version: crate::EventVersion) -> Payload {
        let mut p = self.clone();
        if version == crate::EventVersion::V1 {
            match &mut p {
                Payload::Created(c) => c.task_version = None,
                Payload::Updated(u) => {
                    u.user_id = None;
                    u.task_version = None;
                }
                Payload::Deleted(d) => {
                    d.user_id = None;
                    d.task_version = None;
                }
                Payload::Completed(c) => {
                    c.user_id = None;
                    c.task_version = None;
                }
            }
        }
        p
    }
}

impl From<TaskCreated> for Payload {
    fn from(p: TaskCreated) -> Self {
        Payload::Created(p)
    }
}

impl From<TaskUpdated> for Payload {
    fn from(p: TaskUpdated) -> Self {
        Payload::Updated(p)
    }
}

impl From<TaskDeleted> for Payload {
    fn from(p: TaskDeleted) -> Self {
        Payload::Deleted(p)
    }
}

impl From<TaskCompleted> for Payload {
    fn from(p: TaskCompleted) -> Self {
        Payload::Completed(p)
    }
}
