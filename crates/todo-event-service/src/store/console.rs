//! Queries of the console's live view: the audit log read forward by row id.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One processed event as the live view shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LiveEvent {
    /// The audit log row: the live view's cursor.
    pub id: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// The task.
    pub task_id: i64,
    /// The task's version after the change (v2 events).
    pub task_version: Option<i64>,
    /// The task's title when the event carries one.
    pub title: Option<String>,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Correlation id of the request that caused it.
    pub correlation_id: Uuid,
    /// W3C trace id of the request that caused it, when it carried one.
    pub trace_id: Option<String>,
    /// When the change happened.
    pub occurred_at: DateTime<Utc>,
    /// When this service processed it.
    pub processed_at: DateTime<Utc>,
}

/// Events whose row id is above `above`, oldest first, at most `limit`.
///
/// Row ids are taken when a transaction inserts, not when it commits, so a
/// row can become visible after one with a higher id: the caller reads from
/// below its highest id seen and drops the ids it already has.
pub async fn events_above(
    pool: &PgPool,
    above: i64,
    limit: i64,
) -> Result<Vec<LiveEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, event_type, task_id, task_version, event->'payload'->>'title' AS title,
                topic, kafka_partition AS partition, kafka_offset AS offset, correlation_id,
                trace_id, occurred_at, processed_at
         FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(above)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The newest `limit` events, oldest first: what the live view starts with.
pub async fn latest_events(pool: &PgPool, limit: i64) -> Result<Vec<LiveEvent>, sqlx::Error> {
    let top: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM audit_log")
        .fetch_one(pool)
        .await?;
    events_above(pool, top.unwrap_or(0) - limit, limit).await
}
