//! The writes that go through [`Batcher`](super::batcher::Batcher): creates,
//! changes (update and complete) and deletes, each with its outbox rows, many
//! tasks per statement. Each kind has its one-task statement in
//! `store::tasks`, used when a batch fails for another reason than an
//! outage, so that one bad row fails only its own request.
//!
//! Changes and deletes keep optimistic concurrency: a task is written only if
//! it is still at the version its request read. Two requests for one task in
//! one batch: the first (in queue order) is written, the other is reported
//! as not applied and its request reads the task again.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::batcher::BatchWrite;
use super::tasks as store;
use super::unavailable;
use crate::domain::Task;
use crate::error::is_unavailable;
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

    async fn write(pool: &PgPool, items: &[Self::Item]) -> Vec<sqlx::Result<()>> {
        batched(
            pool,
            items,
            Self::OP,
            async |items| {
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
            },
            async |conn, (task, event)| store::insert(conn, task, event.as_ref()).await,
        )
        .await
    }
}

impl BatchWrite for Changes {
    type Item = (Task, Option<OutboxRow>);
    type Output = bool;
    const OP: &'static str = "change";

    async fn write(pool: &PgPool, items: &[Self::Item]) -> Vec<sqlx::Result<bool>> {
        batched(
            pool,
            items,
            Self::OP,
            async |items| {
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
            },
            async |conn, (task, event)| store::update(conn, task, event.as_ref()).await,
        )
        .await
    }
}

impl BatchWrite for Deletes {
    type Item = (i64, i64, Option<OutboxRow>);
    type Output = bool;
    const OP: &'static str = "delete";

    async fn write(pool: &PgPool, items: &[Self::Item]) -> Vec<sqlx::Result<bool>> {
        batched(
            pool,
            items,
            Self::OP,
            async |items| {
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
            },
            async |conn, (id, version, event)| store::delete(conn, *id, *version, event.as_ref()).await,
        )
        .await
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

/// Writes `items` with `many` (one statement), or, if that fails for another
/// reason than an outage, one by one with `one`. One result per item.
async fn batched<I, O>(
    pool: &PgPool,
    items: &[I],
    op: &str,
    many: impl AsyncFnOnce(&[I]) -> sqlx::Result<Vec<O>>,
    one: impl AsyncFn(&mut PgConnection, &I) -> sqlx::Result<O>,
) -> Vec<sqlx::Result<O>> {
    if items.len() > 1 {
        match many(items).await {
            Ok(out) => return out.into_iter().map(Ok).collect(),
            Err(e) if is_unavailable(&e) => {
                tracing::warn!(error = %e, op, rows = items.len(), "batched write failed: database unavailable");
                let why = e.to_string();
                return items.iter().map(|_| Err(unavailable(&why))).collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, op, rows = items.len(), "batched write failed; writing its rows one by one")
            }
        }
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(match pool.acquire().await {
            Ok(mut conn) => one(&mut conn, item).await,
            Err(e) => Err(e),
        });
    }
    results
}
