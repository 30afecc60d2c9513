//! Applying a batch of events: one SQL statement (so one round trip and one
//! atomic unit) that records the event ids (the idempotency record) and runs
//! every Postgres handler. A redelivered event finds its id and changes nothing.
//!
//! The statement's data-modifying CTEs:
//! * `fresh`: inserts the event ids; returns those not seen before;
//! * `audit`, `counts`: the audit log and the hourly counts, for fresh events only;
//! * `proj`: the task projection, from all the batch's events folded per task
//!   (the merge is idempotent, so a redelivered event re-applied changes nothing;
//!   see `store::projection`);
//! * `completions`: created-to-first-completed durations of the tasks whose
//!   creation and completion are both known after `proj` (its RETURNING rows,
//!   since sibling CTEs do not see each other's writes).
//!
//! NB: sibling CTEs share one snapshot and never see each other's writes; hence
//! `JOIN fresh` rather than a lookup of `processed_events`, and `completions`
//! reading `proj`'s RETURNING rather than `task_projection`.

use std::collections::HashSet;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::parking::{self, ToPark};
use super::projection::{self, TaskDelta};

/// An event with where it was read from.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The decoded, validated event.
    pub event: todo_events::Event,
    /// Topic it came from (as configured, with any prefix).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record's `traceparent`, when it has a valid one.
    pub trace: Option<todo_runtime::trace::TraceContext>,
}

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Events processed for the first time.
    pub new: usize,
    /// Events already processed before (redeliveries, duplicates in the batch).
    pub duplicates: usize,
}

const APPLY: &str = r#"
WITH input AS (
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[],
                         $7::int4[], $8::int8[], $9::uuid[], $10::timestamptz[], $11::timestamptz[],
                         $12::jsonb[], $13::timestamptz[], $29::text[])
        AS i(event_id, event_type, event_version, task_id, task_version, topic, kafka_partition,
             kafka_offset, correlation_id, event_timestamp, occurred_at, event, hour, trace_id)
),
fresh AS (
    INSERT INTO processed_events (event_id)
    SELECT event_id FROM input
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
),
audit AS (
    INSERT INTO audit_log (event_id, event_type, event_version, task_id, task_version, topic,
                           kafka_partition, kafka_offset, correlation_id, event_timestamp, occurred_at, event,
                           trace_id)
    SELECT i.event_id, i.event_type, i.event_version, i.task_id, i.task_version, i.topic,
           i.kafka_partition, i.kafka_offset, i.correlation_id, i.event_timestamp, i.occurred_at, i.event,
           i.trace_id
    FROM input i JOIN fresh USING (event_id)
),
counts AS (
    -- Sharded by partition: a row has one writer (migration 0002).
    INSERT INTO event_counts_hourly (hour, event_type, shard, count)
    SELECT i.hour, i.event_type, i.kafka_partition, count(*)
    FROM input i JOIN fresh USING (event_id)
    GROUP BY i.hour, i.event_type, i.kafka_partition
    ORDER BY 1, 2, 3
    ON CONFLICT (hour, event_type, shard) DO UPDATE SET count = event_counts_hourly.count + EXCLUDED.count
),
proj AS (
    INSERT INTO task_projection AS p (task_id, title, description, content_version, content_at, status,
            status_version, status_at, completed_at, first_completed_at, created_at, user_id,
            deleted, deleted_at, task_version, last_event_at)
    SELECT u.task_id, u.title, u.description, u.content_version, u.content_at, u.status,
           u.status_version, u.status_at, u.completed_at, u.first_completed_at, u.created_at, u.user_id,
           u.deleted_at IS NOT NULL, u.deleted_at, u.task_version, u.last_event_at
    FROM UNNEST($14::int8[], $15::text[], $16::text[], $17::int8[], $18::timestamptz[], $19::text[],
                $20::int8[], $21::timestamptz[], $22::timestamptz[], $23::timestamptz[], $24::timestamptz[],
                $25::text[], $26::timestamptz[], $27::int8[], $28::timestamptz[])
         AS u(task_id, title, description, content_version, content_at, status,
              status_version, status_at, completed_at, first_completed_at, created_at,
              user_id, deleted_at, task_version, last_event_at)
    ORDER BY u.task_id
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
        updated_at = now()
    RETURNING p.task_id, p.created_at, p.first_completed_at
),
completions AS (
    INSERT INTO task_completions AS c (task_id, created_at, completed_at, duration_seconds)
    SELECT task_id, created_at, first_completed_at, extract(epoch FROM first_completed_at - created_at)::float8
    FROM proj
    WHERE created_at IS NOT NULL AND first_completed_at IS NOT NULL
    ORDER BY task_id
    ON CONFLICT (task_id) DO UPDATE SET
        created_at = EXCLUDED.created_at,
        completed_at = EXCLUDED.completed_at,
        duration_seconds = EXCLUDED.duration_seconds
    WHERE c.created_at IS DISTINCT FROM EXCLUDED.created_at OR c.completed_at IS DISTINCT FROM EXCLUDED.completed_at
)
SELECT count(*) FROM fresh
"#;

/// Applies `batch` and parks `parks` atomically: one statement when nothing
/// is parked (the common case), else one transaction.
#[tracing::instrument(skip_all, fields(events = batch.len(), parked = parks.len()))]
pub async fn apply_and_park(
    pool: &PgPool,
    batch: &[Incoming],
    parks: &[ToPark<'_>],
) -> Result<Applied, sqlx::Error> {
    if parks.is_empty() {
        return apply_batch(pool, batch).await;
    }
    let mut tx = pool.begin().await?;
    let applied = if batch.is_empty() {
        Applied::default()
    } else {
        apply_batch(&mut *tx, batch).await?
    };
    parking::park(&mut tx, parks).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Applies `batch` atomically (one statement).
pub async fn apply_batch<'e>(
    db: impl sqlx::PgExecutor<'e>,
    batch: &[Incoming],
) -> Result<Applied, sqlx::Error> {
    // A batch may hold the same event twice (a producer retry); keep the first.
    let mut seen = HashSet::new();
    let unique: Vec<&Incoming> = batch
        .iter()
        .filter(|i| seen.insert(i.event.event_id))
        .collect();
    let n = unique.len();
    let mut event_id: Vec<Uuid> = Vec::with_capacity(n);
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
    let mut hour = Vec::with_capacity(n);
    let mut trace_id: Vec<Option<String>> = Vec::with_capacity(n);
    for i in &unique {
        let e = &i.event;
        let at = e.payload.occurred_at();
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
        occurred_at.push(at);
        body.push(serde_json::to_value(e).expect("an event serializes to JSON"));
        hour.push(at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at));
        trace_id.push(i.trace.as_ref().map(|t| t.trace_id()));
    }

    let deltas = projection::fold(unique.iter().map(|i| &i.event));
    let p = ProjectionColumns::from(deltas.as_slice());

    let fresh: i64 = sqlx::query_scalar(APPLY)
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
        .bind(&hour)
        .bind(&p.task_id)
        .bind(&p.title)
        .bind(&p.description)
        .bind(&p.content_version)
        .bind(&p.content_at)
        .bind(&p.status)
        .bind(&p.status_version)
        .bind(&p.status_at)
        .bind(&p.last_completed_at)
        .bind(&p.first_completed_at)
        .bind(&p.created_at)
        .bind(&p.user_id)
        .bind(&p.deleted_at)
        .bind(&p.task_version)
        .bind(&p.last_event_at)
        .bind(&trace_id)
        .fetch_one(db)
        .await?;
    let fresh = fresh as usize;
    Ok(Applied {
        new: fresh,
        duplicates: batch.len() - fresh,
    })
}

/// The deltas as one array per column, for `UNNEST`.
struct ProjectionColumns<'a> {
    task_id: Vec<i64>,
    title: Vec<Option<&'a str>>,
    description: Vec<Option<&'a str>>,
    content_version: Vec<Option<i64>>,
    content_at: Vec<Option<DateTime<Utc>>>,
    status: Vec<Option<&'static str>>,
    status_version: Vec<Option<i64>>,
    status_at: Vec<Option<DateTime<Utc>>>,
    last_completed_at: Vec<Option<DateTime<Utc>>>,
    first_completed_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<Option<DateTime<Utc>>>,
    user_id: Vec<Option<&'a str>>,
    deleted_at: Vec<Option<DateTime<Utc>>>,
    task_version: Vec<Option<i64>>,
    last_event_at: Vec<DateTime<Utc>>,
}

impl<'a> From<&'a [TaskDelta]> for ProjectionColumns<'a> {
    fn from(deltas: &'a [TaskDelta]) -> Self {
        Self {
            task_id: deltas.iter().map(|d| d.task_id).collect(),
            title: deltas
                .iter()
                .map(|d| d.content.as_ref().map(|c| c.value.title.as_str()))
                .collect(),
            description: deltas
                .iter()
                .map(|d| {
                    d.content
                        .as_ref()
                        .and_then(|c| c.value.description.as_deref())
                })
                .collect(),
            content_version: deltas
                .iter()
                .map(|d| d.content.as_ref().and_then(|c| c.stamp.version))
                .collect(),
            content_at: deltas
                .iter()
                .map(|d| d.content.as_ref().map(|c| c.stamp.at))
                .collect(),
            status: deltas
                .iter()
                .map(|d| d.status.as_ref().map(|s| s.value.as_str()))
                .collect(),
            status_version: deltas
                .iter()
                .map(|d| d.status.as_ref().and_then(|s| s.stamp.version))
                .collect(),
            status_at: deltas
                .iter()
                .map(|d| d.status.as_ref().map(|s| s.stamp.at))
                .collect(),
            last_completed_at: deltas.iter().map(|d| d.last_completed_at).collect(),
            first_completed_at: deltas.iter().map(|d| d.first_completed_at).collect(),
            created_at: deltas.iter().map(|d| d.created_at).collect(),
            user_id: deltas.iter().map(|d| d.user_id.as_deref()).collect(),
            deleted_at: deltas.iter().map(|d| d.deleted_at).collect(),
            task_version: deltas.iter().map(|d| d.task_version).collect(),
            last_event_at: deltas.iter().map(|d| d.last_event_at).collect(),
        }
    }
}
