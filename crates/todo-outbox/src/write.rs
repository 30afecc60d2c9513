//! Writing events: SQL fragments that a task statement embeds as CTEs, so a
//! change and its event commit together in one statement and one round trip
//! (`todo-backend`'s `store::batched_writes` composes them with its `tasks`
//! write).
//!
//! [`bind_events`] binds a batch's events as `$1`..`$9`; [`EVENT_ROWS`] reads
//! them as the CTE `e`; [`INSERT_EVENTS`] or [`INSERT_APPLIED_EVENTS`] writes
//! them. The embedding statement's own parameters start at `$10`.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::types::Json;
use sqlx::Postgres;
use uuid::Uuid;

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

/// The events of a batch, bound by [`bind_events`], as the CTE `e`.
pub const EVENT_ROWS: &str = "e AS (
    SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                         $7::bytea[], $8::jsonb[], $9::uuid[])
        AS e(ord, event_id, event_type, topic, key, task_id, payload, headers, correlation_id))";

/// Writes every event of `e`, in batch order, as the CTE `o`.
pub const INSERT_EVENTS: &str =
    "o AS (INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
      SELECT event_id, event_type, topic, key, task_id, payload, headers, correlation_id FROM e ORDER BY ord)";

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
