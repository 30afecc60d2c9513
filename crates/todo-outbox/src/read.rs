//! Typed reads of the outbox for programs other than the backend: the
//! reconciliation (`todoctl verify`) and the bench's pipeline figures.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Every stored event id, published or not.
pub async fn event_ids(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_id FROM outbox")
        .fetch_all(pool)
        .await
}

/// How many events of each type are stored (`task.created`...), published or not.
pub async fn counts_by_type(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_type, count(*) FROM outbox GROUP BY event_type ORDER BY event_type",
    )
    .fetch_all(pool)
    .await
}

/// Every task that has a stored event, once each.
pub async fn task_ids(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT task_id FROM outbox")
        .fetch_all(pool)
        .await
}

/// The largest outbox id (0 when empty): later rows are above it.
pub async fn last_id(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM outbox")
        .fetch_one(pool)
        .await
}

/// The events of one correlation id written after `after_id`: how many, and
/// how many of them are published.
pub async fn written_and_published(
    pool: &PgPool,
    after_id: i64,
    correlation_id: Uuid,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(published_at) FROM outbox WHERE id > $1 AND correlation_id = $2",
    )
    .bind(after_id)
    .bind(correlation_id)
    .fetch_one(pool)
    .await
}

/// One event's times as the outbox keeps them.
#[derive(Clone, Copy, Debug, PartialEq, sqlx::FromRow)]
pub struct EventTimes {
    /// The envelope's event id.
    pub event_id: Uuid,
    /// Written (the API transaction's insert).
    pub created_at: DateTime<Utc>,
    /// Marked published by the relay, if it is.
    pub published_at: Option<DateTime<Utc>>,
    /// Failed publish attempts.
    pub attempts: i32,
}

/// The times of the events of one correlation id written after `after_id`.
pub async fn event_times(
    pool: &PgPool,
    after_id: i64,
    correlation_id: Uuid,
) -> Result<Vec<EventTimes>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, created_at, published_at, attempts FROM outbox
         WHERE id > $1 AND correlation_id = $2",
    )
    .bind(after_id)
    .bind(correlation_id)
    .fetch_all(pool)
    .await
}
