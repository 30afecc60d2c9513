//! The relay's statements: read unpublished rows in id order from a lower
//! bound (with the snapshot each read saw, see [`ReadSnapshot`]), mark them
//! published (or count a failed attempt), prune published rows past
//! retention.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
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

/// The bounds of the snapshot a read ran with (`pg_snapshot_xmin` and
/// `pg_snapshot_xmax` of `pg_current_snapshot()`, 64-bit transaction ids):
/// every transaction below `xmin` had ended when the read began, and every
/// transaction from `xmax` on began after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadSnapshot {
    /// The oldest transaction still running.
    pub xmin: i64,
    /// The first transaction id not yet assigned.
    pub xmax: i64,
}

/// The read's snapshot, as two columns of every row it returns (an init
/// plan: computed once per statement).
const SNAPSHOT: &str =
    "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8) AS snap_xmin, \
     (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8) AS snap_xmax";

/// A row read with [`SNAPSHOT`].
struct WithSnapshot<T> {
    row: T,
    snapshot: ReadSnapshot,
}

impl<'r, T: sqlx::FromRow<'r, PgRow>> sqlx::FromRow<'r, PgRow> for WithSnapshot<T> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            row: T::from_row(row)?,
            snapshot: ReadSnapshot {
                xmin: row.try_get("snap_xmin")?,
                xmax: row.try_get("snap_xmax")?,
            },
        })
    }
}

/// Splits rows read with [`SNAPSHOT`] into the snapshot (`None` when no row
/// came back) and the rows.
fn split<T>(rows: Vec<WithSnapshot<T>>) -> (Option<ReadSnapshot>, Vec<T>) {
    let snapshot = rows.first().map(|r| r.snapshot);
    (snapshot, rows.into_iter().map(|r| r.row).collect())
}

/// The first `limit` unpublished rows from id `from` on, in id order, and
/// the snapshot the read saw (`None` when it found none).
pub async fn first_unpublished(
    pool: &PgPool,
    from: i64,
    limit: i64,
) -> Result<(Option<ReadSnapshot>, Vec<Unpublished>), sqlx::Error> {
    let rows: Vec<WithSnapshot<Unpublished>> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, {SNAPSHOT} FROM outbox
         WHERE published_at IS NULL AND id >= $1 ORDER BY id LIMIT $2"
    ))
    .bind(from)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(split(rows))
}

/// The ids of the first `limit` unpublished rows from id `from` on, in
/// order (cheaper than the rows, to skip those already in flight), and the
/// snapshot the read saw (`None` when it found none).
pub async fn first_unpublished_ids(
    pool: &PgPool,
    from: i64,
    limit: i64,
) -> Result<(Option<ReadSnapshot>, Vec<i64>), sqlx::Error> {
    let rows: Vec<WithSnapshot<(i64,)>> = sqlx::query_as(&format!(
        "SELECT id, {SNAPSHOT} FROM outbox
         WHERE published_at IS NULL AND id >= $1 ORDER BY id LIMIT $2"
    ))
    .bind(from)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let (snapshot, ids) = split(rows);
    Ok((snapshot, ids.into_iter().map(|(id,)| id).collect()))
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
