//! The backend's `tasks` table as other programs read it (the backend itself
//! reads and writes it in its own `store`): what the reconciliation compares
//! with the event service's projection.

use sqlx::PgPool;

/// A task's state as the backend stores it, as far as the projection mirrors it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskSnapshot {
    /// Task id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// `incomplete` or `complete`.
    pub status: String,
    /// Row version.
    pub version: i64,
}

/// Every task.
pub async fn snapshot(pool: &PgPool) -> Result<Vec<TaskSnapshot>, sqlx::Error> {
    sqlx::query_as("SELECT id, title, status, version FROM tasks")
        .fetch_all(pool)
        .await
}
