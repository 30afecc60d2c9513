//! The outbox relay: publishes unpublished outbox rows in id order, straight
//! to Kafka or through the Dapr sidecar ([`Publisher`]), and marks them
//! published once the broker acknowledged them (acks=all).
//!
//! Exactly one relay is active per database: a session-level Postgres
//! advisory lock elects it; the others stand by and take over when its
//! connection goes away. It wakes on a local signal (this process's writes),
//! on `NOTIFY todo_outbox` (other processes' writes) and on a poll fallback.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use todo_outbox::relay::{self as sql, Unpublished};
use todo_outbox::NOTIFY_CHANNEL;
use todo_runtime::retry::Backoff;
use todo_runtime::trace::{Attribute, Span, SpanKind, TraceContext};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::publish::{Acks, Outgoing, PublishError, Publisher};
use crate::config::RelayArgs;
use crate::metrics as m;

/// Advisory lock key of the relay: "todo-outbox-relay" as a number.
pub const RELAY_LOCK_KEY: i64 = 0x746f_646f_7265_6c61;

/// The relay task.
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    settings: RelayArgs,
    wake: Arc<Notify>,
}

/// What one batch did.
#[derive(Debug)]
struct BatchOutcome {
    /// Rows acknowledged by Kafka and marked published.
    published: usize,
    /// Rows that failed; they stay unpublished and are retried.
    failed: usize,
}

impl Relay {
    /// A relay over `pool`'s outbox, publishing with `publisher`.
    pub fn new(pool: PgPool, publisher: Publisher, settings: RelayArgs, wake: Arc<Notify>) -> Self {
        Self {
            pool,
            publisher,
            settings,
            wake,
        }
    }

    /// Runs until `cancel`: stands by until elected, then relays. Returns
    /// after flushing what is in flight.
    pub async fn run(self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            match self.acquire_leadership(&cancel).await {
                Some(lock_conn) => {
                    tracing::info!("outbox relay active (holds the relay lock)");
                    m::relay_active(true);
                    if let Err(e) = self.lead(lock_conn, &cancel).await {
                        tracing::warn!(error = %e, "outbox relay stepped down; will try again");
                    }
                    m::relay_active(false);
                }
                None => break,
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_millis(self.settings.backoff_base_ms)) => {}
            }
        }
        self.publisher.flush().await;
        tracing::info!("outbox relay stopped");
    }

    /// Waits until this process holds the relay lock; forwards local wake-ups
    /// to the active relay meanwhile. `None` when cancelled.
    async fn acquire_leadership(&self, cancel: &CancellationToken) -> Option<PgConnection> {
        let standby = Duration::from_millis(self.settings.standby_interval_ms);
        let mut logged = false;
        loop {
            match self.try_lock().await {
                Ok(Some(conn)) => return Some(conn),
                Ok(None) if !logged => {
                    tracing::info!(
                        "outbox relay on standby: another instance holds the relay lock"
                    );
                    logged = true;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "outbox relay cannot reach the database"),
            }
            let deadline = tokio::time::Instant::now() + standby;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = self.wake.notified() => {
                        // NB: NOTIFY outside the writer's transaction, and at most
                        // once per wake-up burst: NOTIFY inside every API
                        // transaction would serialize their commits.
                        let _ = todo_outbox::notify(&self.pool).await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }
    }

    async fn try_lock(&self) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if locked {
            Ok(Some(conn))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Relays while the lock connection lives.
    ///
    /// Up to `pipeline_depth` batches are in flight: while Kafka acknowledges
    /// the oldest, new rows are read and sent as soon as a wake-up says they
    /// exist. Acknowledged batches are marked published oldest first.
    async fn lead(
        &self,
        mut lock_conn: PgConnection,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let mut failures: u32 = 0;
        let mut pipeline = Pipeline::default();
        // The last read found less than a full batch, and nothing woke us since.
        let mut caught_up = false;
        let mut last_lock_check = Instant::now();
        let mut last_prune = Instant::now() - Duration::from_secs(self.settings.prune_interval_s);
        loop {
            if cancel.is_cancelled() {
                let _ = lock_conn.close().await;
                return Ok(());
            }
            if last_lock_check.elapsed() > Duration::from_millis(500) {
                // Losing this connection means losing the lock: step down.
                lock_conn.ping().await?;
                last_lock_check = Instant::now();
            }
            if last_prune.elapsed() > Duration::from_secs(self.settings.prune_interval_s) {
                last_prune = Instant::now();
                self.prune_logged().await;
            }
            // After a failure, one batch at a time until one goes through.
            let depth = if failures == 0 {
                self.publisher.max_in_flight(self.settings.pipeline_depth)
            } else {
                1
            };
            let mut read = Ok(());
            while !caught_up && pipeline.len() < depth {
                match self.send_next_batch(&mut pipeline).await {
                    Ok(full) => caught_up = !full,
                    Err(e) => {
                        read = Err(e);
                        break;
                    }
                }
            }
            let outcome = match read {
                Err(e) => Err(e),
                Ok(()) if pipeline.is_empty() => {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = self.wake.notified() => {}
                        n = listener.recv() => { n?; }
                        _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                    }
                    caught_up = false;
                    continue;
                }
                Ok(()) => {
                    let room = pipeline.len() < depth;
                    tokio::select! {
                        _ = cancel.cancelled() => continue,
                        _ = self.wake.notified(), if room => { caught_up = false; continue; }
                        n = listener.recv(), if room => { n?; caught_up = false; continue; }
                        acks = pipeline.oldest_acks() => self.finish_oldest(acks, &mut pipeline).await,
                    }
                }
            };
            match outcome {
                Ok(o) if o.failed == 0 => failures = 0,
                Ok(o) => {
                    // Let what is in flight finish before the failed rows are
                    // read again, so they go out ahead of anything newer.
                    while !pipeline.is_empty() {
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            acks = pipeline.oldest_acks() => { self.finish_oldest(acks, &mut pipeline).await?; }
                        }
                    }
                    failures += 1;
                    caught_up = false;
                    let wait = backoff(failures, &self.settings);
                    tracing::warn!(
                        failed = o.failed,
                        published = o.published,
                        retry_in_ms = wait.as_millis() as u64,
                        "outbox batch partly failed; retrying"
                    );
                    tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
                }
                Err(e) if crate::error::is_unavailable(&e) => {
                    // Rows in flight stay unpublished; they are read and sent
                    // again (same event ids) once the database is back.
                    pipeline.clear();
                    failures += 1;
                    caught_up = false;
                    let wait = backoff(failures, &self.settings);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay: database unavailable");
                    tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
                    // The lock connection is likely gone too: re-check now.
                    lock_conn.ping().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn prune_logged(&self) {
        let retention = Duration::from_secs(self.settings.retention_hours * 3600);
        match sql::prune(&self.pool, retention).await {
            Ok(n) if n > 0 => {
                tracing::info!(rows = n, "pruned published outbox rows past retention")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox prune failed"),
        }
    }

    /// Reads the next unpublished rows in id order, skipping those already in
    /// flight, and queues a send for each. `Ok(false)` when fewer than a full
    /// batch were waiting (the relay has caught up).
    ///
    /// Rows are read from the lowest unpublished id every time, not from a
    /// cursor: a row whose transaction committed late (a lower id that became
    /// visible after higher ones were read) is picked up by the next read and
    /// still goes out before any later change of its task, which can only
    /// have been written after it committed.
    async fn send_next_batch(&self, pipeline: &mut Pipeline) -> Result<bool, sqlx::Error> {
        let batch = self.settings.batch_size.max(1);
        let rows: Vec<Unpublished> = if pipeline.ids.is_empty() {
            sql::first_unpublished(&self.pool, batch).await?
        } else {
            // Ids first (cheap), then only the rows not already in flight.
            let ids =
                sql::first_unpublished_ids(&self.pool, batch + pipeline.ids.len() as i64).await?;
            let new: Vec<i64> = ids
                .into_iter()
                .filter(|id| !pipeline.ids.contains(id))
                .collect();
            if new.is_empty() {
                return Ok(false);
            }
            sql::unpublished_of(&self.pool, &new).await?
        };
        let full = rows.len() as i64 >= batch;
        if rows.is_empty() {
            return Ok(false);
        }
        let started = Instant::now();
        let mut sent = Vec::with_capacity(rows.len());
        let mut outgoing = Vec::with_capacity(rows.len());
        for row in rows {
            pipeline.ids.insert(row.id);
            let mut headers: Vec<(String, String)> =
                row.headers.0.into_iter().map(|[k, v]| (k, v)).collect();
            let span = publish_span(&row.event_id, &row.topic, &mut headers);
            sent.push(Sent {
                id: row.id,
                event_id: row.event_id,
                event_type: row.event_type,
                topic: row.topic.clone(),
                span,
            });
            outgoing.push(Outgoing {
                id: row.id,
                topic: row.topic,
                key: row.key,
                payload: row.payload,
                headers,
            });
        }
        let acks = self.publisher.send(outgoing).await;
        pipeline.batches.push_back(Batch {
            sent,
            acks,
            started,
        });
        Ok(full)
    }

    /// Marks the oldest batch's acknowledged rows published and counts an
    /// attempt on the failed ones; `acks` are its delivery reports.
    async fn finish_oldest(
        &self,
        acks: Vec<Result<(), PublishError>>,
        pipeline: &mut Pipeline,
    ) -> Result<BatchOutcome, sqlx::Error> {
        let mut batch = pipeline
            .batches
            .pop_front()
            .expect("acks come from the oldest batch");
        let elapsed = batch.started.elapsed();
        let mut published = Vec::with_capacity(batch.sent.len());
        let mut published_by_type = std::collections::BTreeMap::<&str, usize>::new();
        let mut failed = Vec::new();
        for (row, result) in batch.sent.iter_mut().zip(acks) {
            match result {
                Ok(()) => {
                    *published_by_type.entry(&row.event_type).or_default() += 1;
                    published.push(row.id);
                }
                Err(e) => {
                    m::publish_failed(&row.event_type);
                    if let Some(span) = &mut row.span {
                        span.fail(|| e.to_string());
                    }
                    tracing::warn!(event_id = %row.event_id, topic = %row.topic, error = %e, retriable = e.retriable, "event publish failed; will retry");
                    failed.push(row.id);
                }
            }
        }
        for (event_type, count) in published_by_type {
            m::published(event_type, count, elapsed);
        }
        let marked = async {
            if !published.is_empty() {
                sql::mark_published(&self.pool, &published).await?;
            }
            if !failed.is_empty() {
                sql::count_failed_attempt(&self.pool, &failed).await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        // Marked or not, these rows are no longer in flight: unmarked ones
        // are read and sent again.
        for row in &batch.sent {
            pipeline.ids.remove(&row.id);
        }
        marked?;
        Ok(BatchOutcome {
            published: published.len(),
            failed: failed.len(),
        })
    }
}

/// The span of one row's publish, in the trace of the request that wrote it
/// (its `traceparent` header; a row without one starts a trace). The record
/// goes out with this span as its `traceparent`, so the event service's
/// processing is the publish's child. Ends when the row's batch is finished.
///
/// While export is off no publish span is recorded, so a row's stored
/// `traceparent` goes out as it is: no parse, id or format per row on the
/// relay loop. Only a row without one gets a new trace.
fn publish_span(
    event_id: &uuid::Uuid,
    topic: &str,
    headers: &mut Vec<(String, String)>,
) -> Option<Span> {
    let name = todo_events::headers::TRACEPARENT;
    let at = headers.iter().position(|(k, _)| k == name);
    if at.is_some() && !todo_runtime::trace::exporting() {
        return None;
    }
    let parent = at.and_then(|i| TraceContext::parse(&headers[i].1));
    let mut span = Span::start("publish", SpanKind::Producer, parent.as_ref());
    span.record(|| {
        vec![
            Attribute::new("messaging.operation.type", "send"),
            Attribute::new("messaging.destination.name", topic.to_owned()),
            Attribute::new("messaging.message.id", event_id.to_string()),
        ]
    });
    let value = span.context().traceparent();
    match at {
        Some(i) => headers[i].1 = value,
        None => headers.push((name.to_owned(), value)),
    }
    Some(span)
}

/// The batches in flight, oldest first, and the ids of their rows.
#[derive(Default)]
struct Pipeline {
    batches: VecDeque<Batch>,
    ids: HashSet<i64>,
}

impl Pipeline {
    fn len(&self) -> usize {
        self.batches.len()
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The oldest batch's delivery reports, once all are in. Cancel safe:
    /// the batch stays in the pipeline until [`Relay::finish_oldest`].
    async fn oldest_acks(&mut self) -> Vec<Result<(), PublishError>> {
        let Some(batch) = self.batches.front_mut() else {
            return std::future::pending().await;
        };
        let n = batch.sent.len();
        (&mut batch.acks).await.unwrap_or_else(|_| {
            (0..n)
                .map(|_| {
                    Err(PublishError {
                        message: "the delivery task ended".into(),
                        retriable: true,
                    })
                })
                .collect()
        })
    }

    /// Forgets everything in flight (its rows stay unpublished).
    fn clear(&mut self) {
        self.batches.clear();
        self.ids.clear();
    }
}

/// A batch whose sends are queued; a task collects its delivery reports.
struct Batch {
    sent: Vec<Sent>,
    acks: Acks,
    started: Instant,
}

/// One queued send.
struct Sent {
    id: i64,
    event_id: uuid::Uuid,
    event_type: String,
    topic: String,
    /// The publish's span, ended with the batch (none while export is off).
    span: Option<Span>,
}

/// The wait after `failures` failed batches in a row: doubling from the
/// base, capped, jittered.
fn backoff(failures: u32, s: &RelayArgs) -> Duration {
    Backoff::new(
        Duration::from_millis(s.backoff_base_ms),
        2.0,
        Duration::from_millis(s.backoff_cap_ms),
    )
    .delay(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct A {
        #[command(flatten)]
        r: RelayArgs,
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let s = A::parse_from(["x"]).r;
        assert!(backoff(1, &s) <= Duration::from_millis(s.backoff_base_ms));
        for f in 1..40 {
            assert!(backoff(f, &s) <= Duration::from_millis(s.backoff_cap_ms));
        }
        assert!(backoff(10, &s) >= Duration::from_millis(s.backoff_cap_ms / 2));
    }
}
