//! Writing events: SQL fragments that a task statement embeds as CTEs, so a
//! change and its event commit together in one statement and one round trip
//! (`todo-backend`'s `store::batched_writes` composes them with its `tasks`
//! writes), and the whole create statement, [`create_tasks`], which the
//! backend's group commit runs and `todo-bench ceiling` measures on its own.
//!
//! [`bind_events`] binds a batch's events as `$1`..`$9`; [`EVENT_ROWS`] reads
//! them as the CTE `e`; [`INSERT_EVENTS`] or [`INSERT_APPLIED_EVENTS`] writes
//! them. The embedding statement's own parameters start at `$10`.
//!
//! Both read the rows of the statement's task write (`t`), so an outbox id is
//! drawn only after that write: the writer's transaction holds a transaction
//! id by then. The relay's read floor relies on it (`todo-backend`,
//! `outbox/relay/floor.rs`): a row not yet visible to a read belongs to a
//! transaction that the read's snapshot knows.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::types::Json;
use sqlx::{PgExecutor, Postgres};
use todo_events::{ContentType, EncodeError, Event};
use uuid::Uuid;

/// Writer tasks per kind of batched statement in the backend's group commit
/// (`BATCH_WRITERS`): at most this many create statements run at once. With
/// four kinds (create, change, delete, read), one each already keeps both
/// cores of a 2-core machine busy, and a request that arrives while its kind's
/// statement runs joins the next batch: on 2 cores, 1 beat 2 at 1 000
/// events/s and at the maximum (docs/performance.md). More cores may want more.
pub const DEFAULT_BATCH_WRITERS: usize = 1;

/// Most writes in one statement of the backend's group commit (`BATCH_MAX`).
/// Below saturation batches stay far smaller; past it, requests queue and a
/// larger batch spreads each statement's fixed cost over more of them: 256
/// against 64 at 5 000 req/s offered, PostgreSQL used less CPU in each of
/// four pairs (docs/performance.md, 7 Dec 2026).
pub const DEFAULT_BATCH_MAX: usize = 256;

/// One event, encoded, as the outbox stores it. The task id comes from the
/// task row written by the same statement.
#[derive(Debug)]
pub struct NewEvent {
    /// The envelope's event id.
    pub event_id: Uuid,
    /// `task.created`, ...
    pub event_type: &'static str,
    /// The topic, prefix included.
    pub topic: String,
    /// The record key (the task id).
    pub key: String,
    /// The encoded event (JSON or Avro single-object).
    pub payload: Vec<u8>,
    /// Kafka headers as `[name, value]` pairs.
    pub headers: Json<Vec<[String; 2]>>,
    /// The request's correlation id.
    pub correlation_id: Uuid,
}

impl NewEvent {
    /// `event` encoded as `content_type` for `topic`, with the Kafka headers
    /// every record carries (add `traceparent` to `headers` when traced).
    pub fn encode(
        event: &Event,
        content_type: ContentType,
        topic: String,
    ) -> Result<Self, EncodeError> {
        Ok(Self {
            event_id: event.event_id,
            event_type: event.event_type().as_str(),
            topic,
            key: event.key(),
            payload: event.encode(content_type)?,
            headers: Json(
                event
                    .headers(content_type)
                    .into_iter()
                    .map(|(k, v)| [k.to_owned(), v])
                    .collect(),
            ),
            correlation_id: event.correlation_id,
        })
    }
}

/// A new task as the create statement writes it (the `tasks` columns).
#[derive(Clone, Copy, Debug)]
pub struct NewTask<'a> {
    /// Its id, taken from the table's sequence beforehand.
    pub id: i64,
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// `incomplete` or `complete`.
    pub status: &'a str,
    /// Owner.
    pub user_id: Option<&'a str>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Row version (1 for a new task).
    pub version: i64,
}

/// Writes new tasks, each with its event (`None`: events off), all or none,
/// in one statement: one group-commit batch of creates. Returns the tasks
/// written. The tables are the unqualified `tasks` and `outbox` of the
/// connection's `search_path`.
pub async fn create_tasks(
    db: impl PgExecutor<'_>,
    items: &[(NewTask<'_>, Option<&NewEvent>)],
) -> sqlx::Result<u64> {
    let tasks = items.iter().map(|(t, _)| t);
    let written: i32 = bind_events(
        sqlx::query_scalar(&format!(
            "WITH t AS (
                 INSERT INTO tasks (id, title, description, status, user_id, created_at, updated_at, completed_at, version)
                 SELECT * FROM unnest($10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[],
                                      $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::bigint[])
                 RETURNING id),
             {EVENT_ROWS},
             {INSERT_EVENTS}
             SELECT count(*)::int FROM t"
        )),
        items.iter().map(|(t, e)| (t.id, *e)),
    )
    .bind(tasks.clone().map(|t| t.id).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.title).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.description).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.status).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.user_id).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.created_at).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.updated_at).collect::<Vec<_>>())
    .bind(tasks.clone().map(|t| t.completed_at).collect::<Vec<_>>())
    .bind(tasks.map(|t| t.version).collect::<Vec<_>>())
    .fetch_one(db)
    .await?;
    Ok(written as u64)
}

/// The events of a batch, bound by [`bind_events`], as the CTE `e`.
pub const EVENT_ROWS: &str = "e AS (
    SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                         $7::bytea[], $8::jsonb[], $9::uuid[])
        AS e(ord, event_id, event_type, topic, key, task_id, payload, headers, correlation_id))";

/// Writes the event of each task that a CTE `t(id)` created, in batch order,
/// as the CTE `o`.
pub const INSERT_EVENTS: &str = "o AS (
    INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
    SELECT e.event_id, e.event_type, e.topic, e.key, e.task_id, e.payload, e.headers, e.correlation_id
    FROM e JOIN t ON t.id = e.task_id ORDER BY e.ord)";

/// Writes the events of the batch positions a CTE `t(ord)` returns (the
/// changes that applied), in batch order, as the CTE `o`.
pub const INSERT_APPLIED_EVENTS: &str = "o AS (
    INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
    SELECT e.event_id, e.event_type, e.topic, e.key, e.task_id, e.payload, e.headers, e.correlation_id
    FROM e JOIN t ON t.ord = e.ord ORDER BY e.ord)";

/// Binds the events of a batch as `$1`..`$9`: position in the batch, event
/// id, type, topic, key, task id, payload, headers, correlation id. `events`
/// gives each batch item's task id and event; items without an event
/// (events off) have no row.
pub fn bind_events<'q, O>(
    q: QueryScalar<'q, Postgres, O, PgArguments>,
    events: impl Iterator<Item = (i64, Option<&'q NewEvent>)>,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    let events: Vec<Indexed<'q>> = events
        .enumerate()
        .filter_map(|(i, (task_id, e))| e.map(|e| (i as i32, task_id, e)))
        .collect();
    q.bind(column(&events, |&(i, _, _)| i))
        .bind(column(&events, |&(_, _, e)| e.event_id))
        .bind(column(&events, |&(_, _, e)| e.event_type))
        .bind(column(&events, |&(_, _, e)| e.topic.as_str()))
        .bind(column(&events, |&(_, _, e)| e.key.as_str()))
        .bind(column(&events, |&(_, task_id, _)| task_id))
        .bind(column(&events, |&(_, _, e)| e.payload.as_slice()))
        .bind(column(&events, |&(_, _, e)| &e.headers))
        .bind(column(&events, |&(_, _, e)| e.correlation_id))
}

/// An event with its position in the batch and its task id.
type Indexed<'q> = (i32, i64, &'q NewEvent);

/// One column of the events, as the array bound for it.
fn column<'q, T>(events: &[Indexed<'q>], f: impl Fn(&Indexed<'q>) -> T) -> Vec<T> {
    events.iter().map(f).collect()
}
