//! Group commit for new tasks: concurrent `POST /tasks` requests are written
//! by one statement (their tasks and their outbox rows) and one commit, and
//! each request answers once that commit is done. Under load this turns many
//! small commits, each with its own WAL flush and round trip, into a few
//! larger ones; a lone request is written at once, with no added wait.
//!
//! A failed batch is retried one request at a time, so each request gets its
//! own outcome and one bad row cannot fail the others.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::tasks as store;
use super::unavailable;
use crate::domain::Task;
use crate::error::is_unavailable;
use crate::outbox::OutboxRow;

/// A task and its event, waiting to be written.
struct Pending {
    task: Task,
    event: Option<OutboxRow>,
    done: oneshot::Sender<sqlx::Result<()>>,
}

/// Hands new tasks to a few writer tasks that batch them.
#[derive(Clone)]
pub struct InsertBatcher {
    queue: mpsc::Sender<Pending>,
}

impl InsertBatcher {
    /// Starts `writers` writer tasks on `pool`, each writing up to
    /// `max_batch` tasks per statement. They stop once every clone of the
    /// batcher is dropped and the queue is empty.
    pub fn start(pool: PgPool, writers: usize, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(writers.max(1) * max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_loop(pool.clone(), rx.clone(), max_batch));
        }
        Self { queue }
    }

    /// Writes `task` and its event; returns after they are committed.
    pub async fn insert(&self, task: Task, event: Option<OutboxRow>) -> sqlx::Result<()> {
        let (done, result) = oneshot::channel();
        self.queue
            .send(Pending { task, event, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        result.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn write_loop(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<Pending>>>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            // Whatever else is already waiting joins this batch; nothing waits
            // for more to arrive.
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        if write(&pool, &mut batch).await == Outcome::DatabaseUnavailable {
            // Everything queued behind this batch would wait for the same
            // unreachable database, one acquire timeout per batch: answer it
            // now (503), so that clients see the outage at once.
            let mut rx = rx.lock().await;
            while let Ok(p) = rx.try_recv() {
                let _ = p.done.send(Err(unavailable(
                    "the database was unavailable for the previous batch",
                )));
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    DatabaseUnavailable,
}

/// Writes `batch` (and empties it), answering every request in it.
async fn write(pool: &PgPool, batch: &mut Vec<Pending>) -> Outcome {
    let (items, answers): (Vec<_>, Vec<_>) =
        batch.drain(..).map(|p| ((p.task, p.event), p.done)).unzip();
    crate::metrics::create_batch(items.len());
    let mut outcome = Outcome::Done;
    for (result, done) in write_all(pool, &items).await.into_iter().zip(answers) {
        if result.as_ref().is_err_and(is_unavailable) {
            outcome = Outcome::DatabaseUnavailable;
        }
        let _ = done.send(result);
    }
    outcome
}

/// Writes new tasks and their events: all in one statement, or, if that
/// fails, one by one. One result per item, in order.
pub async fn write_all(
    pool: &PgPool,
    items: &[(Task, Option<OutboxRow>)],
) -> Vec<sqlx::Result<()>> {
    if items.len() > 1 {
        match insert_many(pool, items).await {
            Ok(()) => return items.iter().map(|_| Ok(())).collect(),
            Err(e) if is_unavailable(&e) => {
                tracing::warn!(error = %e, tasks = items.len(), "batched insert failed: database unavailable");
                let why = e.to_string();
                return items.iter().map(|_| Err(unavailable(&why))).collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, tasks = items.len(), "batched insert failed; writing its tasks one by one")
            }
        }
    }
    let mut results = Vec::with_capacity(items.len());
    for (task, event) in items {
        results.push(
            async {
                let mut conn = pool.acquire().await?;
                store::insert(&mut conn, task, event.as_ref()).await
            }
            .await,
        );
    }
    results
}

/// One statement for all of `batch`: the tasks, then their outbox rows in
/// the same order.
async fn insert_many(pool: &PgPool, batch: &[(Task, Option<OutboxRow>)]) -> sqlx::Result<()> {
    let tasks = batch.iter().map(|(t, _)| t);
    let events: Vec<&OutboxRow> = batch.iter().filter_map(|(_, e)| e.as_ref()).collect();
    let event_task_ids: Vec<i64> = batch
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(t, _)| t.id)
        .collect();
    sqlx::query(
        "WITH t AS (
             INSERT INTO tasks (id, title, description, status, user_id, created_at, updated_at, completed_at, version)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bigint[])
             RETURNING id),
         o AS (
             INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
             SELECT * FROM unnest($10::uuid[], $11::text[], $12::text[], $13::text[], $14::bigint[],
                                  $15::bytea[], $16::jsonb[], $17::uuid[]))
         SELECT 1",
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
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<Uuid>>())
    .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.key.as_str()).collect::<Vec<_>>())
    .bind(event_task_ids)
    .bind(events.iter().map(|e| e.payload.as_slice()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| &e.headers).collect::<Vec<&Json<Vec<[String; 2]>>>>())
    .bind(events.iter().map(|e| e.correlation_id).collect::<Vec<Uuid>>())
    .execute(pool)
    .await?;
    Ok(())
}
