//! The writes that go through [`Batcher`](super::batcher::Batcher): creates,
//! changes (update and complete) and deletes, each with its outbox rows, any
//! number of tasks per statement (a lone request is a batch of one).
//!
//! Changes and deletes keep optimistic concurrency: a task is written only if
//! it is still at the version its request read. Two requests for one task in
//! one batch: the first (in queue order) is written, the other is reported
//! as not applied and its request reads the task again.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use todo_runtime::trace::TraceContext;

use super::batcher::BatchWrite;
use crate::domain::Task;
use crate::outbox::OutboxRow;

/// New tasks: `(task, event)`, written all or none.
pub struct Creates;
/// Changes to tasks: `(the task's new state, event)`, each applied only if
/// the task is still at the previous version.
pub struct Changes;
/// Deletions: `(task id, version read, event)`, each applied only if the task
/// is still at that version.
pub struct Deletes;

impl BatchWrite for Creates {
    type Item = (Task, Option<OutboxRow>);
    type Output = ();
    const OP: &'static str = "create";
    const SPAN: &'static str = "write batch create";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn write_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<()>> {
        let tasks = items.iter().map(|(t, _)| t);
        bind_events(
            sqlx::query_scalar(&format!(
                "WITH t AS (
                     INSERT INTO tasks (id, title, description, status, user_id, created_at, updated_at, completed_at, version)
                     SELECT * FROM unnest($10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[],
                                          $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::bigint[])
                     RETURNING id),
                 {EVENT_ROWS},
                 o AS (INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
                       SELECT event_id, event_type, topic, key, task_id, payload, headers, correlation_id FROM e ORDER BY ord)
                 SELECT count(*)::int FROM t"
            )),
            items.iter().map(|(t, e)| (t.id, e.as_ref())),
        )
        .bind(tasks.clone().map(|t| t.id).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.title.as_str()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.description.as_deref()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.status().as_str()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.user_id.as_deref()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.created_at).collect::<Vec<DateTime<Utc>>>())
        .bind(tasks.clone().map(|t| t.updated_at).collect::<Vec<DateTime<Utc>>>())
        .bind(tasks.clone().map(|t| t.completed_at).collect::<Vec<Option<DateTime<Utc>>>>())
        .bind(tasks.map(|t| t.version).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
        Ok(items.iter().map(|_| ()).collect())
    }
}

impl BatchWrite for Changes {
    type Item = (Task, Option<OutboxRow>);
    type Output = bool;
    const OP: &'static str = "change";
    const SPAN: &'static str = "write batch change";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn write_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<bool>> {
        let tasks = items.iter().map(|(t, _)| t);
        let applied: Vec<i32> = bind_events(
            sqlx::query_scalar(&format!(
                "WITH v AS (
                     SELECT DISTINCT ON (id) * FROM unnest($10::int[], $11::bigint[], $12::bigint[], $13::text[], $14::text[],
                                                           $15::text[], $16::timestamptz[], $17::timestamptz[])
                         AS v(ord, id, version, title, description, status, completed_at, updated_at)
                     ORDER BY id, ord),
                 t AS (
                     UPDATE tasks SET title = v.title, description = v.description, status = v.status,
                            completed_at = v.completed_at, updated_at = v.updated_at, version = v.version
                     FROM v WHERE tasks.id = v.id AND tasks.version = v.version - 1
                     RETURNING v.ord),
                 {EVENT_ROWS},
                 {WRITE_APPLIED_EVENTS}"
            )),
            items.iter().map(|(t, e)| (t.id, e.as_ref())),
        )
        .bind((0..items.len() as i32).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.id).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.version).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.title.as_str()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.description.as_deref()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.status().as_str()).collect::<Vec<_>>())
        .bind(tasks.clone().map(|t| t.completed_at).collect::<Vec<Option<DateTime<Utc>>>>())
        .bind(tasks.map(|t| t.updated_at).collect::<Vec<DateTime<Utc>>>())
        .fetch_all(pool)
        .await?;
        Ok(applied_flags(items.len(), &applied))
    }
}

impl BatchWrite for Deletes {
    type Item = (i64, i64, Option<OutboxRow>);
    type Output = bool;
    const OP: &'static str = "delete";
    const SPAN: &'static str = "write batch delete";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, _, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn write_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<bool>> {
        let applied: Vec<i32> = bind_events(
            sqlx::query_scalar(&format!(
                "WITH v AS (
                     SELECT DISTINCT ON (id) * FROM unnest($10::int[], $11::bigint[], $12::bigint[]) AS v(ord, id, version)
                     ORDER BY id, ord),
                 t AS (DELETE FROM tasks USING v WHERE tasks.id = v.id AND tasks.version = v.version RETURNING v.ord),
                 {EVENT_ROWS},
                 {WRITE_APPLIED_EVENTS}"
            )),
            items.iter().map(|(id, _, e)| (*id, e.as_ref())),
        )
        .bind((0..items.len() as i32).collect::<Vec<_>>())
        .bind(items.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, v, _)| *v).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
        Ok(applied_flags(items.len(), &applied))
    }
}

/// The events of a batch, bound by [`bind_events`], as the CTE `e`.
const EVENT_ROWS: &str = "e AS (
    SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                         $7::bytea[], $8::jsonb[], $9::uuid[])
        AS e(ord, event_id, event_type, topic, key, task_id, payload, headers, correlation_id))";

/// Writes the events of the batch positions `t` returns (the changes that
/// applied) and returns those positions.
const WRITE_APPLIED_EVENTS: &str = "o AS (
    INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
    SELECT e.event_id, e.event_type, e.topic, e.key, e.task_id, e.payload, e.headers, e.correlation_id
    FROM e JOIN t ON t.ord = e.ord ORDER BY e.ord)
SELECT ord FROM t";

/// `true` at each position of `applied`.
fn applied_flags(n: usize, applied: &[i32]) -> Vec<bool> {
    let mut flags = vec![false; n];
    for &i in applied {
        flags[i as usize] = true;
    }
    flags
}

/// Binds the events of a batch as `$1`..`$9`: position in the batch, event
/// id, type, topic, key, task id, payload, headers, correlation id. Items
/// without an event (events off) have no row.
fn bind_events<'q>(
    q: QueryScalar<'q, Postgres, i32, PgArguments>,
    events: impl Iterator<Item = (i64, Option<&'q OutboxRow>)>,
) -> QueryScalar<'q, Postgres, i32, PgArguments> {
    let events: Vec<(i32, i64, &OutboxRow)> = events
        .enumerate()
        .filter_map(|(i, (task_id, e))| e.map(|e| (i as i32, task_id, e)))
        .collect();
    q.bind(events.iter().map(|(i, _, _)| *i).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.event_id)
                .collect::<Vec<Uuid>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.event_type)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.topic.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|(_, id, _)| *id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.payload.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, _, e)| &e.headers)
                .collect::<Vec<&Json<Vec<[String; 2]>>>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, _, e)| e.correlation_id)
                .collect::<Vec<Uuid>>(),
        )
}
