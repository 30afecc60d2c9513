//! Queries on `tasks`. `user` scopes every query: `None` (no auth) sees all
//! tasks, `Some(sub)` only that user's.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::{Task, TaskStatus};

const COLUMNS: &str =
    "id, title, description, status, user_id, created_at, updated_at, completed_at, version";

/// Inserts a new incomplete task.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut PgConnection,
    title: &str,
    description: Option<&str>,
    user: Option<&str>,
) -> sqlx::Result<Task> {
    sqlx::query_as(&format!(
        "INSERT INTO tasks (title, description, user_id) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(title)
    .bind(description)
    .bind(user)
    .fetch_one(conn)
    .await
}

/// One task, if it exists and the user may see it.
#[tracing::instrument(skip(conn))]
pub async fn get(
    conn: &mut PgConnection,
    id: i64,
    user: Option<&str>,
) -> sqlx::Result<Option<Task>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Like [`get`], locking the row until the transaction ends, so that changes
/// to one task (and their outbox rows) are serialized in commit order.
#[tracing::instrument(skip(conn))]
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: i64,
    user: Option<&str>,
) -> sqlx::Result<Option<Task>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) FOR UPDATE"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// The new state of a task after a change.
pub struct Changed<'a> {
    /// New title.
    pub title: &'a str,
    /// New description.
    pub description: Option<&'a str>,
    /// New status.
    pub status: TaskStatus,
    /// New completion time.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Writes a change and bumps the version.
#[tracing::instrument(skip(conn, new))]
pub async fn update(conn: &mut PgConnection, id: i64, new: Changed<'_>) -> sqlx::Result<Task> {
    sqlx::query_as(&format!(
        "UPDATE tasks SET title = $2, description = $3, status = $4, completed_at = $5,
                updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(new.title)
    .bind(new.description)
    .bind(new.status.as_str())
    .bind(new.completed_at)
    .fetch_one(conn)
    .await
}

/// Deletes a task the user may see; returns it as it was.
#[tracing::instrument(skip(conn))]
pub async fn delete(
    conn: &mut PgConnection,
    id: i64,
    user: Option<&str>,
) -> sqlx::Result<Option<Task>> {
    sqlx::query_as(&format!(
        "DELETE FROM tasks WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// A page of tasks in id order, after `cursor`.
#[tracing::instrument(skip(conn))]
pub async fn list(
    conn: &mut PgConnection,
    user: Option<&str>,
    status: Option<TaskStatus>,
    after_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE id > $1 AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR status = $3)
         ORDER BY id LIMIT $4"
    ))
    .bind(after_id)
    .bind(user)
    .bind(status.map(|s| s.as_str()))
    .bind(limit)
    .fetch_all(conn)
    .await
}
