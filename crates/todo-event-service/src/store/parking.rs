//! The parking lot's table (`parked_events`, migration 0006): events waiting
//! behind a failed event of the same key on the same partition. Parking is
//! the exception path, so rows are written one statement each, inside the
//! caller's transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::record::Record;

/// One record to park.
pub struct ToPark<'a> {
    /// The record as read.
    pub record: &'a Record,
    /// Its event id.
    pub event_id: Uuid,
    /// Why it failed, with the attempts made; `None` when it only waits
    /// behind an earlier event of its key.
    pub failure: Option<(&'a str, &'a str, u32)>,
    /// When to try it (only the head of a key is tried).
    pub next_attempt_at: DateTime<Utc>,
}

/// A parked record, read back.
pub struct Parked {
    /// The record as it was read, with its original topic, partition and offset.
    pub record: Record,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it first failed, if it did.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// The first parked record of a key: when it is due, and how long the key has waited.
pub struct KeyHead {
    /// The record key.
    pub key: Vec<u8>,
    /// When its first record is to be tried.
    pub next_attempt_at: DateTime<Utc>,
    /// When its oldest record was parked.
    pub parked_at: DateTime<Utc>,
}

/// The key of `record` as stored (a record without a key parks under the empty key).
pub fn key_of(record: &Record) -> &[u8] {
    record.key.as_deref().unwrap_or_default()
}

/// Parks `rows`; a record parked before (a redelivery) is left as it is.
pub async fn park(conn: &mut PgConnection, rows: &[ToPark<'_>]) -> Result<(), sqlx::Error> {
    for p in rows {
        let r = p.record;
        let (names, values): (Vec<&str>, Vec<Option<&[u8]>>) = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .unzip();
        let (class, message, attempts) = match p.failure {
            Some((c, m, a)) => (Some(c), Some(m), a as i32),
            None => (None, None, 0),
        };
        sqlx::query(
            "INSERT INTO parked_events (topic, kafka_partition, kafka_offset, record_key, event_id,
                 record_value, header_names, header_values, record_timestamp_ms, attempts,
                 error_class, error_message, first_failed_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                     CASE WHEN $11::text IS NULL THEN NULL ELSE now() END, $13)
             ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
        )
        .bind(&r.topic)
        .bind(r.partition)
        .bind(r.offset)
        .bind(key_of(r))
        .bind(p.event_id)
        .bind(r.value.as_deref())
        .bind(&names)
        .bind(&values)
        .bind(r.timestamp_ms)
        .bind(attempts)
        .bind(class)
        .bind(message)
        .bind(p.next_attempt_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every parked key of a partition, with its first record's due time.
pub async fn heads(
    pool: &PgPool,
    topic: &str,
    partition: i32,
) -> Result<Vec<KeyHead>, sqlx::Error> {
    let rows: Vec<(Vec<u8>, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT DISTINCT ON (record_key) record_key, next_attempt_at,
                min(parked_at) OVER (PARTITION BY record_key)
         FROM parked_events WHERE topic = $1 AND kafka_partition = $2
         ORDER BY record_key, kafka_offset",
    )
    .bind(topic)
    .bind(partition)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, next_attempt_at, parked_at)| KeyHead {
            key,
            next_attempt_at,
            parked_at,
        })
        .collect())
}

/// The first parked record of `key`, if any.
pub async fn head(
    conn: &mut PgConnection,
    topic: &str,
    partition: i32,
    key: &[u8],
) -> Result<Option<Parked>, sqlx::Error> {
    type Row = (
        i64,
        Option<Vec<u8>>,
        Vec<String>,
        Vec<Option<Vec<u8>>>,
        Option<i64>,
        i32,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT kafka_offset, record_value, header_names, header_values, record_timestamp_ms,
                attempts, first_failed_at, parked_at
         FROM parked_events WHERE topic = $1 AND kafka_partition = $2 AND record_key = $3
         ORDER BY kafka_offset LIMIT 1",
    )
    .bind(topic)
    .bind(partition)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(
        |(offset, value, names, values, timestamp_ms, attempts, first_failed_at, parked_at)| {
            Parked {
                record: Record {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    key: Some(key.to_vec()),
                    value,
                    headers: names.into_iter().zip(values).collect(),
                    timestamp_ms,
                    received: std::time::Instant::now(),
                },
                attempts: attempts.max(0) as u32,
                first_failed_at,
                parked_at,
            }
        },
    ))
}

/// Removes a record from the lot (applied, or dead-lettered).
pub async fn remove(
    conn: &mut PgConnection,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM parked_events WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3",
    )
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed attempt of a parked record and when to try it next.
pub async fn failed(
    pool: &PgPool,
    record: &Record,
    attempts: u32,
    class: &str,
    message: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE parked_events SET attempts = $4, error_class = $5, error_message = $6,
             first_failed_at = COALESCE(first_failed_at, now()), next_attempt_at = $7
         WHERE topic = $1 AND kafka_partition = $2 AND kafka_offset = $3",
    )
    .bind(&record.topic)
    .bind(record.partition)
    .bind(record.offset)
    .bind(attempts as i32)
    .bind(class)
    .bind(message)
    .bind(next_attempt_at)
    .execute(pool)
    .await?;
    Ok(())
}
