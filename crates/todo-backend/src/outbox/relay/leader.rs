//! The active relay's loop, as a state machine: while this process holds the
//! relay lock, it fills the pipeline, waits for wake-ups or delivery
//! reports, and recovers from failed batches and database outages.

use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::pipeline::{BatchOutcome, Pipeline};
use super::RelaySettings;
use crate::outbox::publish::Publish;

/// Where the active relay is.
#[derive(Debug)]
enum Step {
    /// Read and send batches while there is room in the pipeline and rows
    /// may be waiting.
    Fill,
    /// Nothing in flight, and the last read found less than a full batch:
    /// wait for a wake-up, a NOTIFY or the poll.
    Idle,
    /// Batches in flight: wait for the oldest one's delivery reports, or
    /// for a wake-up while there is room for another batch.
    AwaitAcks,
    /// A batch partly failed: let what is in flight finish, then back off
    /// before its rows are read again.
    Retry(BatchOutcome),
    /// The database failed: forget what is in flight, back off, re-check the lock.
    DatabaseDown(sqlx::Error),
}

/// The state of the active relay, for as long as it holds the lock.
pub(super) struct Leader<'r, P> {
    pool: &'r PgPool,
    publisher: &'r P,
    settings: &'r RelaySettings,
    wake: &'r tokio::sync::Notify,
    lock_conn: PgConnection,
    listener: PgListener,
    pipeline: Pipeline,
    /// Failed batches in a row.
    failures: u32,
    /// The last read found less than a full batch, and nothing woke us since.
    caught_up: bool,
    last_lock_check: Instant,
    last_prune: Instant,
    /// The prune in progress, if any: it runs beside the loop, never in it.
    prune: Option<tokio::task::JoinHandle<()>>,
}

impl<'r, P: Publish> Leader<'r, P> {
    /// Starts listening for other processes' writes.
    pub(super) async fn new(
        pool: &'r PgPool,
        publisher: &'r P,
        settings: &'r RelaySettings,
        wake: &'r tokio::sync::Notify,
        lock_conn: PgConnection,
    ) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(todo_outbox::NOTIFY_CHANNEL).await?;
        Ok(Self {
            pool,
            publisher,
            settings,
            wake,
            lock_conn,
            listener,
            pipeline: Pipeline::default(),
            failures: 0,
            caught_up: false,
            last_lock_check: Instant::now(),
            last_prune: Instant::now() - settings.prune_interval,
            prune: None,
        })
    }

    /// Relays while the lock connection lives; `Err` when it stepped down.
    ///
    /// Up to `pipeline_depth` batches are in flight: while Kafka acknowledges
    /// the oldest, new rows are read and sent as soon as a wake-up says they
    /// exist. Acknowledged batches are marked published oldest first.
    pub(super) async fn lead(mut self, cancel: &CancellationToken) -> anyhow::Result<()> {
        let mut step = Step::Fill;
        loop {
            if cancel.is_cancelled() {
                let _ = self.lock_conn.close().await;
                return Ok(());
            }
            self.housekeeping().await?;
            step = match step {
                Step::Fill => self.fill().await?,
                Step::Idle => self.idle(cancel).await?,
                Step::AwaitAcks => self.await_acks(cancel).await?,
                Step::Retry(outcome) => self.retry(outcome, cancel).await?,
                Step::DatabaseDown(e) => self.database_down(e, cancel).await?,
            };
        }
    }

    /// Checks the lock now and then (losing its connection means losing
    /// the lock: step down), and starts a prune now and then.
    ///
    /// The prune runs in a task of its own, one at a time: a prune of many
    /// rows takes seconds, and the relay keeps publishing meanwhile (it once
    /// ran in this loop, and every prune stalled publishing for a second).
    async fn housekeeping(&mut self) -> Result<(), sqlx::Error> {
        if self.last_lock_check.elapsed() > Duration::from_millis(500) {
            self.lock_conn.ping().await?;
            self.last_lock_check = Instant::now();
        }
        let pruning = self.prune.as_ref().is_some_and(|p| !p.is_finished());
        if !pruning && self.last_prune.elapsed() > self.settings.prune_interval {
            self.last_prune = Instant::now();
            self.prune = Some(tokio::spawn(prune_logged(
                self.pool.clone(),
                self.settings.retention,
            )));
        }
        Ok(())
    }

    /// Batches in flight at once: after a failure, one at a time until one
    /// goes through.
    fn depth(&self) -> usize {
        if self.failures == 0 {
            self.publisher.max_in_flight(self.settings.pipeline_depth)
        } else {
            1
        }
    }

    async fn fill(&mut self) -> anyhow::Result<Step> {
        let depth = self.depth();
        while !self.caught_up && self.pipeline.len() < depth {
            match self
                .pipeline
                .send_next_batch(self.pool, self.publisher, self.settings.batch_size)
                .await
            {
                Ok(full) => self.caught_up = !full,
                Err(e) => return database_failed(e),
            }
        }
        Ok(if self.pipeline.is_empty() {
            Step::Idle
        } else {
            Step::AwaitAcks
        })
    }

    async fn idle(&mut self, cancel: &CancellationToken) -> anyhow::Result<Step> {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.wake.notified() => {}
            n = self.listener.recv() => { self.notified(n?); }
            _ = tokio::time::sleep(self.settings.poll_interval) => {}
        }
        self.caught_up = false;
        Ok(Step::Fill)
    }

    async fn await_acks(&mut self, cancel: &CancellationToken) -> anyhow::Result<Step> {
        let room = self.pipeline.len() < self.depth();
        let acks = tokio::select! {
            _ = cancel.cancelled() => return Ok(Step::Fill),
            _ = self.wake.notified(), if room => { self.caught_up = false; return Ok(Step::Fill); }
            n = self.listener.recv(), if room => { self.notified(n?); self.caught_up = false; return Ok(Step::Fill); }
            acks = self.pipeline.oldest_acks() => acks,
        };
        match self.pipeline.finish_oldest(self.pool, acks).await {
            Ok(o) if o.failed == 0 => {
                self.failures = 0;
                Ok(Step::Fill)
            }
            Ok(o) => Ok(Step::Retry(o)),
            Err(e) => database_failed(e),
        }
    }

    async fn retry(&mut self, o: BatchOutcome, cancel: &CancellationToken) -> anyhow::Result<Step> {
        // Let what is in flight finish before the failed rows are read
        // again, so they go out ahead of anything newer.
        while !self.pipeline.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => break,
                acks = self.pipeline.oldest_acks() => { self.pipeline.finish_oldest(self.pool, acks).await?; }
            }
        }
        let wait = self.failed();
        tracing::warn!(
            failed = o.failed,
            published = o.published,
            retry_in_ms = wait.as_millis() as u64,
            "outbox batch partly failed; retrying"
        );
        tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
        Ok(Step::Fill)
    }

    async fn database_down(
        &mut self,
        e: sqlx::Error,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Step> {
        // Rows in flight stay unpublished; they are read and sent again
        // (same event ids) once the database is back.
        self.pipeline.clear();
        let wait = self.failed();
        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay: database unavailable");
        tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
        // The lock connection is likely gone too: re-check now.
        self.lock_conn.ping().await?;
        Ok(Step::Fill)
    }

    /// A NOTIFY on the outbox channel: a write elsewhere, or a replay,
    /// which queued rows again below where reads start.
    fn notified(&mut self, n: sqlx::postgres::PgNotification) {
        if n.payload() == todo_outbox::REPLAY_PAYLOAD {
            self.pipeline.read_from_first();
        }
    }

    /// Counts a failure; the wait before trying again.
    fn failed(&mut self) -> Duration {
        self.failures += 1;
        self.caught_up = false;
        self.settings.backoff.delay(self.failures)
    }
}

/// Prunes published rows past `retention`, and logs what it did.
async fn prune_logged(pool: PgPool, retention: Duration) {
    match todo_outbox::relay::prune(&pool, retention).await {
        Ok(n) if n > 0 => {
            tracing::info!(rows = n, "pruned published outbox rows past retention")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "outbox prune failed; will try again"),
    }
}

/// A database error: an outage is waited out, anything else steps down.
fn database_failed(e: sqlx::Error) -> anyhow::Result<Step> {
    if todo_runtime::db::is_outage(&e) {
        Ok(Step::DatabaseDown(e))
    } else {
        Err(e.into())
    }
}
