//! The writes that go through [`Batcher`](super::batcher::Batcher): creates,
//! changes (update and complete) and deletes, each with its outbox rows, any
//! number of tasks per statement (a lone request is a batch of one).
//!
//! Each statement writes `tasks` and, through the CTEs `todo_outbox::write`
//! provides, `outbox`: one statement, so the change and its event commit
//! together in one round trip. For changes and deletes the `tasks` part is
//! here, the outbox part is todo-outbox's; the create statement is all
//! todo-outbox's ([`create_tasks`]), because `todo-bench ceiling` runs the
//! same statement without the backend.
//!
//! Changes and deletes keep optimistic concurrency: a task is written only if
//! it is still at the version its request read. Two requests for one task in
//! one batch: the first (in queue order) is written, the other is reported
//! as not applied and its request reads the task again.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use todo_outbox::write::{
    bind_events, create_tasks, NewEvent, NewTask, EVENT_ROWS, INSERT_APPLIED_EVENTS,
};

use todo_runtime::trace::TraceContext;

use super::batcher::BatchStatement;
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

impl BatchStatement for Creates {
    type Item = (Task, Option<OutboxRow>);
    type Output = ();
    const METRIC: &'static str = crate::metrics::TASK_WRITE_BATCH_SIZE;
    const OP: &'static str = "create";
    const SPAN: &'static str = "write batch create";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn run_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<()>> {
        let rows: Vec<_> = items
            .iter()
            .map(|(t, e)| {
                let task = NewTask {
                    id: t.id,
                    title: t.title.as_str(),
                    description: t.description.as_deref(),
                    status: t.status().as_str(),
                    user_id: t.user_id.as_deref(),
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                    completed_at: t.completed_at,
                    version: t.version,
                };
                (task, e.as_ref().map(|e| &e.event))
            })
            .collect();
        create_tasks(pool, &rows).await?;
        Ok(items.iter().map(|_| ()).collect())
    }
}

impl BatchStatement for Changes {
    type Item = (Task, Option<OutboxRow>);
    type Output = bool;
    const METRIC: &'static str = crate::metrics::TASK_WRITE_BATCH_SIZE;
    const OP: &'static str = "change";
    const SPAN: &'static str = "write batch change";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn run_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<bool>> {
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
                 {INSERT_APPLIED_EVENTS}
                 SELECT ord FROM t"
            )),
            events(items.iter().map(|(t, e)| (t.id, e))),
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

impl BatchStatement for Deletes {
    type Item = (i64, i64, Option<OutboxRow>);
    type Output = bool;
    const METRIC: &'static str = crate::metrics::TASK_WRITE_BATCH_SIZE;
    const OP: &'static str = "delete";
    const SPAN: &'static str = "write batch delete";

    fn trace(item: &Self::Item) -> Option<&TraceContext> {
        let (_, _, e) = item;
        e.as_ref()?.trace.as_ref()
    }

    async fn run_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<bool>> {
        let applied: Vec<i32> = bind_events(
            sqlx::query_scalar(&format!(
                "WITH v AS (
                     SELECT DISTINCT ON (id) * FROM unnest($10::int[], $11::bigint[], $12::bigint[]) AS v(ord, id, version)
                     ORDER BY id, ord),
                 t AS (DELETE FROM tasks USING v WHERE tasks.id = v.id AND tasks.version = v.version RETURNING v.ord),
                 {EVENT_ROWS},
                 {INSERT_APPLIED_EVENTS}
                 SELECT ord FROM t"
            )),
            events(items.iter().map(|(id, _, e)| (*id, e))),
        )
        .bind((0..items.len() as i32).collect::<Vec<_>>())
        .bind(items.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, v, _)| *v).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
        Ok(applied_flags(items.len(), &applied))
    }
}

/// `true` at each position of `applied`.
fn applied_flags(n: usize, applied: &[i32]) -> Vec<bool> {
    let mut flags = vec![false; n];
    for &i in applied {
        flags[i as usize] = true;
    }
    flags
}

/// Each item's task id and event row, for [`bind_events`].
fn events<'q>(
    items: impl Iterator<Item = (i64, &'q Option<OutboxRow>)>,
) -> impl Iterator<Item = (i64, Option<&'q NewEvent>)> {
    items.map(|(id, e)| (id, e.as_ref().map(|e| &e.event)))
}
