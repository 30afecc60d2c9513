//! The relay's statements: read unpublished rows in id order, mark them
//! published (or count a failed attempt), prune published rows past
//! retention.

use std::time::Duration;

use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns of [`Unpublished`].
const COLUMNS: &str = "id, event_id, event_type, topic, key, payload, headers, \
     EXTRACT(EPOCH FROM clock_timestamp() - created_at)::float8 AS waited_s";

/// One unpublished row, as the relay sends it.
#[derive(Debug, sqlx::FromRow)]
pub struct Unpublished {
    /// Outbox id (publishing order).
    pub id: i64,
    /// The envelope's event id.
    pub event_id: Uuid,
    /// `task.created`, ...
    pub event_type: String,
    /// The topic, prefix included.
    pub topic: String,
    /// The record key.
    pub key: String,
    /// The encoded event.
    pub payload: Vec<u8>,
    /// Kafka headers as `[name, value]` pairs.
    pub headers: Json<Vec<[String; 2]>>,
    /// Seconds from the row's write (`created_at`) to this read, on the
    /// database's clock: how long the event waited for the relay.
    pub waited_s: f64,
}

/// The first `limit` unpublished rows in id order.
pub async fn first_unpublished(pool: &PgPool, limit: i64) -> Result<Vec<Unpublished>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The ids of the first `limit` unpublished rows, in order (cheaper than the
/// rows, to skip those already in flight).
pub async fn first_unpublished_ids(pool: &PgPool, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// The rows of `ids` that are still unpublished, in id order.
pub async fn unpublished_of(pool: &PgPool, ids: &[i64]) -> Result<Vec<Unpublished>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE id = ANY($1) AND published_at IS NULL ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Marks `ids` published now.
pub async fn mark_published(pool: &PgPool, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .map(drop)
}

/// Counts one more failed publish attempt on `ids` (they stay unpublished).
pub async fn count_failed_attempt(pool: &PgPool, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .map(drop)
}

/// Deletes published rows older than `retention`, in chunks of 10 000 (one
/// transaction each); returns how many.
///
/// Each chunk is planned for its own cutoff (`plan_cache_mode =
/// force_custom_plan` for its transaction): the services' connections plan
/// statements once, generically (`todo_runtime::db`), and a generic plan
/// cannot tell that the cutoff selects a sliver of the table, so it scanned
/// all of it (about a second on two million rows, every prune interval). And
/// when even the oldest row (by id, so nearly by `created_at`) is younger than
/// the cutoff, which is the common case, the statement stops before scanning
/// anything.
pub async fn prune(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let secs = retention.as_secs_f64();
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox
                 WHERE (SELECT created_at FROM outbox ORDER BY id LIMIT 1)
                           < now() - make_interval(secs => $1)
                   AND published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)
                   -- implied by the line above (a row is published after it
                   -- is created); lets the BRIN index on created_at narrow the scan
                   AND created_at < now() - make_interval(secs => $1)
                 LIMIT 10000)",
        )
        .bind(secs)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        total += n;
        if n < 10_000 {
            return Ok(total);
        }
    }
}
