//! The outbox relay: publishes unpublished outbox rows in id order, straight
//! to Kafka or through the Dapr sidecar (a [`Publish`]), and marks them
//! published once the broker acknowledged them (acks=all).
//!
//! Exactly one relay is active per database: a session-level Postgres
//! advisory lock elects it; the others stand by and take over when its
//! connection goes away. It wakes on a local signal (this process's writes),
//! on `NOTIFY todo_outbox` (other processes' writes) and on a poll fallback.
//!
//! This file elects; `leader.rs` is the active relay's loop; `pipeline.rs`
//! the batches in flight; `floor.rs` where its reads start. The SQL is
//! todo-outbox's.

mod floor;
mod leader;
mod pipeline;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use todo_runtime::retry::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::publish::Publish;
use crate::metrics as m;
use leader::Leader;

/// Advisory lock key of the relay: "todo-outbox-relay" as a number.
pub const RELAY_LOCK_KEY: i64 = 0x746f_646f_7265_6c61;

/// How the relay works (`config::RelayArgs::settings` fills it).
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// Outbox rows claimed per batch.
    pub batch_size: i64,
    /// Batches in flight at once.
    pub pipeline_depth: usize,
    /// Poll interval when no wake-up arrives.
    pub poll_interval: Duration,
    /// How often a standby relay tries to become the active one.
    pub standby_interval: Duration,
    /// The wait after failed batches in a row (and between a standby's tries
    /// after the lock is lost): doubling from its base up to its cap, jittered.
    pub backoff: Backoff,
    /// How long published rows are kept for replay.
    pub retention: Duration,
    /// How often published rows past retention are pruned.
    pub prune_interval: Duration,
}

/// The relay task.
pub struct Relay<P> {
    pool: PgPool,
    publisher: P,
    settings: RelaySettings,
    wake: Arc<Notify>,
}

/// A relay ready to run until its token is cancelled, whatever its publisher.
pub type RunRelay =
    Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

impl<P: Publish> Relay<P> {
    /// A relay over `pool`'s outbox, publishing with `publisher`.
    pub fn new(pool: PgPool, publisher: P, settings: RelaySettings, wake: Arc<Notify>) -> Self {
        Self {
            pool,
            publisher,
            settings,
            wake,
        }
    }

    /// This relay as a [`RunRelay`].
    pub fn boxed(self) -> RunRelay {
        Box::new(move |cancel| Box::pin(self.run(cancel)))
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
                _ = tokio::time::sleep(self.settings.backoff.ceiling(1)) => {}
            }
        }
        self.publisher.flush().await;
        tracing::info!("outbox relay stopped");
    }

    async fn lead(
        &self,
        lock_conn: PgConnection,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        Leader::new(
            &self.pool,
            &self.publisher,
            &self.settings,
            &self.wake,
            lock_conn,
        )
        .await?
        .lead(cancel)
        .await
    }

    /// Waits until this process holds the relay lock; forwards local wake-ups
    /// to the active relay meanwhile. `None` when cancelled.
    async fn acquire_leadership(&self, cancel: &CancellationToken) -> Option<PgConnection> {
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
            let deadline = tokio::time::Instant::now() + self.settings.standby_interval;
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
}
