use chrono::{DateTime, Utc};
use serde::Serialize;

pub use todo_events::TaskStatus;

/// A task as stored and as the API returns it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Task {
    /// Task id.
    pub id: i64,
    /// Title (1 to 255 characters).
    pub title: String,
    /// Optional description (at most 10 000 characters).
    pub description: Option<String>,
    /// `incomplete` or `complete`.
    #[schema(value_type = String, example = "incomplete")]
    #[sqlx(try_from = "String")]
    pub status: StatusColumn,
    /// Owner (the JWT subject) when authentication is on.
    pub user_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was completed, if it is.
    pub completed_at: Option<DateTime<Utc>>,
    /// Row version: 1 after create, +1 on every change.
    pub version: i64,
}

/// The status column, read from its text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StatusColumn(pub TaskStatus);

impl TryFrom<String> for StatusColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse::<TaskStatus>()
            .map(StatusColumn)
            .map_err(|_| format!("unknown task status {s}"))
    }
}

impl Task {
    /// The task's status.
    pub fn status(&self) -> TaskStatus {
        self.status.0
    }
}
