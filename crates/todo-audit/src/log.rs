//! The audit log and the task projection, read in bulk: what reconciliation
//! compares with the backend's outbox and tasks, and what a benchmark run
//! counts and times.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The id of every audited event, one per audit row: an id listed twice was
/// applied twice.
pub async fn event_ids(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_id FROM audit_log")
        .fetch_all(pool)
        .await
}

/// How many events the analytics counted, over all hours and types (each
/// event is counted once when applied).
pub async fn analytics_total(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(sum(count), 0)::bigint FROM event_counts_hourly")
        .fetch_one(pool)
        .await
}

/// A task as the projection holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectedTask {
    /// The task.
    pub task_id: i64,
    /// Its title (none when only a status change was seen).
    pub title: Option<String>,
    /// Its status.
    pub status: Option<String>,
    /// A tombstone: the task was deleted.
    pub deleted: bool,
    /// The newest task version applied (v2 events).
    pub task_version: Option<i64>,
}

/// Every task of the projection.
pub async fn projection(pool: &PgPool) -> Result<Vec<ProjectedTask>, sqlx::Error> {
    sqlx::query_as("SELECT task_id, title, status, deleted, task_version FROM task_projection")
        .fetch_all(pool)
        .await
}

/// The highest audit row id so far (0 when empty): a run's starting mark.
pub async fn last_row_id(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM audit_log")
        .fetch_one(pool)
        .await
}

/// How many events of `correlation_id` were audited after row `after_id`.
pub async fn count_after(
    pool: &PgPool,
    after_id: i64,
    correlation_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE id > $1 AND correlation_id = $2")
        .bind(after_id)
        .bind(correlation_id)
        .fetch_one(pool)
        .await
}

/// When each event of `correlation_id` audited after row `after_id` was
/// processed.
pub async fn processed_after(
    pool: &PgPool,
    after_id: i64,
    correlation_id: Uuid,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, processed_at FROM audit_log WHERE id > $1 AND correlation_id = $2",
    )
    .bind(after_id)
    .bind(correlation_id)
    .fetch_all(pool)
    .await
}
