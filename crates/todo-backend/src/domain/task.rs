use chrono::{DateTime, Utc};
use utoipa::openapi::{Object, ObjectBuilder, Type};

pub use todo_events::TaskStatus;

use super::{TaskDescription, TaskTitle};

/// A task: what the use cases read, change and answer with. Its database
/// row is `store::tasks`' business, its JSON body and schema `routes::tasks`'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Task id.
    pub id: i64,
    /// Title (1 to 255 characters).
    pub title: String,
    /// Optional description (at most 10 000 characters).
    pub description: Option<String>,
    /// `incomplete` or `complete`.
    pub status: TaskStatus,
    /// Owner (the JWT subject) when authentication is on.
    pub user_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was completed, if it is.
    pub completed_at: Option<DateTime<Utc>>,
    /// Version: 1 after create, +1 on every change.
    pub version: i64,
}

/// The OpenAPI schema of a task status.
pub fn status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(TaskStatus::ALL.map(TaskStatus::as_str)))
        .examples(["incomplete"])
        .build()
}

impl Task {
    /// A new incomplete task at version 1.
    pub fn new(
        id: i64,
        title: &TaskTitle,
        description: Option<&TaskDescription>,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            title: title.as_str().to_owned(),
            description: description.map(|d| d.as_str().to_owned()),
            status: TaskStatus::Incomplete,
            user_id: user_id.map(str::to_owned),
            created_at: now,
            updated_at: now,
            completed_at: None,
            version: 1,
        }
    }

    /// The task's status.
    pub fn status(&self) -> TaskStatus {
        self.status
    }

    /// This task with a new title, description and status, as one more
    /// version at `now`. Completion time: kept while it stays complete, set
    /// when it becomes complete, cleared when it becomes incomplete.
    pub fn changed(
        &self,
        title: &str,
        description: Option<&str>,
        status: TaskStatus,
        now: DateTime<Utc>,
    ) -> Self {
        let completed_at = match (self.status(), status) {
            (TaskStatus::Incomplete, TaskStatus::Complete) => Some(now),
            (_, TaskStatus::Complete) => self.completed_at,
            (_, TaskStatus::Incomplete) => None,
        };
        Self {
            title: title.to_owned(),
            description: description.map(str::to_owned),
            status,
            updated_at: now,
            completed_at,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

/// The current time at the database's precision (microseconds), so that a
/// time the API returns or an event carries equals the stored one.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task::new(7, &TaskTitle::parse("a").unwrap(), None, None, now())
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }

    #[test]
    fn a_change_is_one_more_version_and_keeps_the_identity() {
        let before = task();
        let at = before.created_at + chrono::Duration::seconds(1);
        let after = before.changed("b", Some("d"), TaskStatus::Incomplete, at);
        assert_eq!(
            (after.id, after.version, after.created_at),
            (7, 2, before.created_at)
        );
        assert_eq!(
            (after.title.as_str(), after.description.as_deref()),
            ("b", Some("d"))
        );
        assert_eq!(after.updated_at, at);
    }

    #[test]
    fn completion_time_is_set_kept_and_cleared_with_the_status() {
        let t0 = task();
        let at = t0.created_at + chrono::Duration::seconds(1);
        let done = t0.changed("a", None, TaskStatus::Complete, at);
        assert_eq!(done.completed_at, Some(at));
        let later = at + chrono::Duration::seconds(1);
        let renamed = done.changed("b", None, TaskStatus::Complete, later);
        assert_eq!(renamed.completed_at, Some(at));
        let reopened = renamed.changed("b", None, TaskStatus::Incomplete, later);
        assert_eq!(reopened.completed_at, None);
    }
}
