//! Applying a batch of events: one transaction that records the event ids
//! (the idempotency record) and runs every Postgres handler on the events not
//! seen before. A redelivered event finds its id and changes nothing.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use todo_events::{Event, EventType};
use uuid::Uuid;

use crate::handlers::projection::{self, TaskDelta};

/// An event with where it was read from.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The decoded, validated event.
    pub event: Event,
    /// Topic it came from (as configured, with any prefix).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Events processed for the first time.
    pub new: usize,
    /// Events already processed before (redeliveries, duplicates in the batch).
    pub duplicates: usize,
}

/// Applies `batch` in one transaction; all or nothing.
#[tracing::instrument(skip_all, fields(events = batch.len()))]
pub async fn apply_batch(pool: &PgPool, batch: &[Incoming]) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = record_processed(&mut tx, batch).await?;
    let new: Vec<&Incoming> = {
        let mut seen = HashSet::new();
        batch
            .iter()
            .filter(|i| fresh.contains(&i.event.event_id) && seen.insert(i.event.event_id))
            .collect()
    };
    if !new.is_empty() {
        insert_audit(&mut tx, &new).await?;
        let deltas = projection::fold(new.iter().map(|i| &i.event));
        upsert_projection(&mut tx, &deltas).await?;
        count_hourly(&mut tx, &new).await?;
        let completion_candidates: Vec<i64> = deltas
            .iter()
            .filter(|d| d.created_at.is_some() || d.first_completed_at.is_some())
            .map(|d| d.task_id)
            .collect();
        record_completions(&mut tx, &completion_candidates).await?;
    }
    tx.commit().await?;
    Ok(Applied {
        new: new.len(),
        duplicates: batch.len() - new.len(),
    })
}

/// Inserts the batch's event ids; returns those that were not there before.
#[tracing::instrument(skip_all)]
async fn record_processed(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[Incoming],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let ids: Vec<Uuid> = batch.iter().map(|i| i.event.event_id).collect();
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (event_id) SELECT * FROM UNNEST($1::uuid[])
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

#[tracing::instrument(skip_all)]
async fn insert_audit(
    tx: &mut Transaction<'_, Postgres>,
    new: &[&Incoming],
) -> Result<(), sqlx::Error> {
    let n = new.len();
    let mut event_id = Vec::with_capacity(n);
    let mut event_type = Vec::with_capacity(n);
    let mut event_version = Vec::with_capacity(n);
    let mut task_id = Vec::with_capacity(n);
    let mut task_version: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut topic = Vec::with_capacity(n);
    let mut partition = Vec::with_capacity(n);
    let mut offset = Vec::with_capacity(n);
    let mut correlation_id = Vec::with_capacity(n);
    let mut event_timestamp = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    for i in new {
        let e = &i.event;
        event_id.push(e.event_id);
        event_type.push(e.event_type().as_str());
        event_version.push(e.event_version.as_str());
        task_id.push(e.task_id());
        task_version.push(e.payload.task_version());
        topic.push(i.topic.as_str());
        partition.push(i.partition);
        offset.push(i.offset);
        correlation_id.push(e.correlation_id);
        event_timestamp.push(e.timestamp);
        occurred_at.push(e.payload.occurred_at());
        body.push(serde_json::to_value(e).expect("an event serializes to JSON"));
    }
    sqlx::query(
        "INSERT INTO audit_log (event_id, event_type, event_version, task_id, task_version, topic,
                                kafka_partition, kafka_offset, correlation_id, event_timestamp, occurred_at, event)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[],
                              $7::int4[], $8::int8[], $9::uuid[], $10::timestamptz[], $11::timestamptz[], $12::jsonb[])",
    )
    .bind(&event_id)
    .bind(&event_type)
    .bind(&event_version)
    .bind(&task_id)
    .bind(&task_version)
    .bind(&topic)
    .bind(&partition)
    .bind(&offset)
    .bind(&correlation_id)
    .bind(&event_timestamp)
    .bind(&occurred_at)
    .bind(&body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Merges the deltas into `task_projection`, group by group, with the rule of
/// [`projection::Stamp::newer_than`] (SQL `stamp_newer`).
#[tracing::instrument(skip_all)]
async fn upsert_projection(
    tx: &mut Transaction<'_, Postgres>,
    deltas: &[TaskDelta],
) -> Result<(), sqlx::Error> {
    let n = deltas.len();
    let mut task_id = Vec::with_capacity(n);
    let mut title: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut description: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut content_version: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut content_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut status: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut status_version: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut status_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut last_completed_at = Vec::with_capacity(n);
    let mut first_completed_at = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut user_id: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut deleted_at = Vec::with_capacity(n);
    let mut task_version = Vec::with_capacity(n);
    let mut last_event_at = Vec::with_capacity(n);
    for d in deltas {
        task_id.push(d.task_id);
        title.push(d.content.as_ref().map(|c| c.value.title.as_str()));
        description.push(
            d.content
                .as_ref()
                .and_then(|c| c.value.description.as_deref()),
        );
        content_version.push(d.content.as_ref().and_then(|c| c.stamp.version));
        content_at.push(d.content.as_ref().map(|c| c.stamp.at));
        status.push(d.status.as_ref().map(|s| s.value.as_str()));
        status_version.push(d.status.as_ref().and_then(|s| s.stamp.version));
        status_at.push(d.status.as_ref().map(|s| s.stamp.at));
        last_completed_at.push(d.last_completed_at);
        first_completed_at.push(d.first_completed_at);
        created_at.push(d.created_at);
        user_id.push(d.user_id.as_deref());
        deleted_at.push(d.deleted_at);
        task_version.push(d.task_version);
        last_event_at.push(d.last_event_at);
    }
    sqlx::query(
        "INSERT INTO task_projection AS p (task_id, title, description, content_version, content_at, status,
                status_version, status_at, completed_at, first_completed_at, created_at, user_id,
                deleted, deleted_at, task_version, last_event_at)
         SELECT u.task_id, u.title, u.description, u.content_version, u.content_at, u.status,
                u.status_version, u.status_at, u.completed_at, u.first_completed_at, u.created_at, u.user_id,
                u.deleted_at IS NOT NULL, u.deleted_at, u.task_version, u.last_event_at
         FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::text[],
                     $7::int8[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                     $12::text[], $13::timestamptz[], $14::int8[], $15::timestamptz[])
              AS u(task_id, title, description, content_version, content_at, status,
                   status_version, status_at, completed_at, first_completed_at, created_at,
                   user_id, deleted_at, task_version, last_event_at)
         ON CONFLICT (task_id) DO UPDATE SET
            title = CASE WHEN stamp_newer(EXCLUDED.content_version, EXCLUDED.content_at, p.content_version, p.content_at)
                         THEN EXCLUDED.title ELSE p.title END,
            description = CASE WHEN stamp_newer(EXCLUDED.content_version, EXCLUDED.content_at, p.content_version, p.content_at)
                         THEN EXCLUDED.description ELSE p.description END,
            content_version = CASE WHEN stamp_newer(EXCLUDED.content_version, EXCLUDED.content_at, p.content_version, p.content_at)
                         THEN EXCLUDED.content_version ELSE p.content_version END,
            content_at = CASE WHEN stamp_newer(EXCLUDED.content_version, EXCLUDED.content_at, p.content_version, p.content_at)
                         THEN EXCLUDED.content_at ELSE p.content_at END,
            status = CASE WHEN stamp_newer(EXCLUDED.status_version, EXCLUDED.status_at, p.status_version, p.status_at)
                         THEN EXCLUDED.status ELSE p.status END,
            status_version = CASE WHEN stamp_newer(EXCLUDED.status_version, EXCLUDED.status_at, p.status_version, p.status_at)
                         THEN EXCLUDED.status_version ELSE p.status_version END,
            status_at = CASE WHEN stamp_newer(EXCLUDED.status_version, EXCLUDED.status_at, p.status_version, p.status_at)
                         THEN EXCLUDED.status_at ELSE p.status_at END,
            completed_at = GREATEST(p.completed_at, EXCLUDED.completed_at),
            first_completed_at = LEAST(p.first_completed_at, EXCLUDED.first_completed_at),
            created_at = LEAST(p.created_at, EXCLUDED.created_at),
            user_id = COALESCE(EXCLUDED.user_id, p.user_id),
            deleted = p.deleted OR EXCLUDED.deleted,
            deleted_at = LEAST(p.deleted_at, EXCLUDED.deleted_at),
            task_version = GREATEST(p.task_version, EXCLUDED.task_version),
            last_event_at = GREATEST(p.last_event_at, EXCLUDED.last_event_at),
            updated_at = now()",
    )
    .bind(&task_id)
    .bind(&title)
    .bind(&description)
    .bind(&content_version)
    .bind(&content_at)
    .bind(&status)
    .bind(&status_version)
    .bind(&status_at)
    .bind(&last_completed_at)
    .bind(&first_completed_at)
    .bind(&created_at)
    .bind(&user_id)
    .bind(&deleted_at)
    .bind(&task_version)
    .bind(&last_event_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds the batch's events to the per-hour counts (by the hour the change happened).
#[tracing::instrument(skip_all)]
async fn count_hourly(
    tx: &mut Transaction<'_, Postgres>,
    new: &[&Incoming],
) -> Result<(), sqlx::Error> {
    // Sharded by partition: a row has one writer (see migration 0002).
    let mut counts: BTreeMap<(DateTime<Utc>, EventType, i32), i64> = BTreeMap::new();
    for i in new {
        let at = i.event.payload.occurred_at();
        let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
        *counts
            .entry((hour, i.event.event_type(), i.partition))
            .or_default() += 1;
    }
    let n = counts.len();
    let (mut hours, mut types, mut shards, mut adds) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((hour, t, shard), add) in counts {
        hours.push(hour);
        types.push(t.as_str());
        shards.push(shard);
        adds.push(add);
    }
    sqlx::query(
        "INSERT INTO event_counts_hourly (hour, event_type, shard, count)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int4[], $4::int8[])
         ON CONFLICT (hour, event_type, shard) DO UPDATE SET count = event_counts_hourly.count + EXCLUDED.count",
    )
    .bind(&hours)
    .bind(&types)
    .bind(&shards)
    .bind(&adds)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records created-to-first-completed durations of tasks whose creation and
/// completion are both known now (in either arrival order).
#[tracing::instrument(skip_all)]
async fn record_completions(
    tx: &mut Transaction<'_, Postgres>,
    task_ids: &[i64],
) -> Result<(), sqlx::Error> {
    if task_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO task_completions (task_id, created_at, completed_at, duration_seconds)
         SELECT task_id, created_at, first_completed_at, extract(epoch FROM first_completed_at - created_at)::float8
         FROM task_projection
         WHERE task_id = ANY($1) AND created_at IS NOT NULL AND first_completed_at IS NOT NULL
         ORDER BY task_id
         ON CONFLICT (task_id) DO UPDATE SET
            created_at = EXCLUDED.created_at,
            completed_at = EXCLUDED.completed_at,
            duration_seconds = EXCLUDED.duration_seconds",
    )
    .bind(task_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
