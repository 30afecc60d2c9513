//! Republishing stored events with their original event ids (the spec's
//! "republish from the database audit log"): the selected rows are queued
//! for the relay again, which publishes them in id order; consumers dedupe by
//! event id, so a replay is always safe.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Which stored events to republish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Outbox ids `from..=to`.
    Ids { from: i64, to: i64 },
    /// Events written in `[from, to)`.
    Time {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// Every stored event of one task.
    Task(i64),
}

/// Queues the selected, already published rows for publishing again and
/// wakes the relay; returns how many.
pub async fn replay(pool: &PgPool, selection: &Selection) -> Result<u64, sqlx::Error> {
    let q = match selection {
        Selection::Ids { from, to } => {
            sqlx::query("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL AND id BETWEEN $1 AND $2")
                .bind(from)
                .bind(to)
        }
        Selection::Time { from, to } => sqlx::query(
            "UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL AND created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to),
        Selection::Task(id) => {
            sqlx::query("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL AND task_id = $1").bind(id)
        }
    };
    let n = q.execute(pool).await?.rows_affected();
    if n > 0 {
        crate::notify_replay(pool).await?;
    }
    Ok(n)
}
