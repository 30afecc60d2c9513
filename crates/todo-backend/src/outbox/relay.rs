//! The outbox relay: publishes unpublished outbox rows to Kafka in id order
//! and marks them published once Kafka acknowledged them (acks=all).
//!
//! Exactly one relay is active per database: a session-level Postgres
//! advisory lock elects it; the others stand by and take over when its
//! connection goes away. It wakes on a local signal (this process's writes),
//! on `NOTIFY todo_outbox` (other processes' writes) and on a poll fallback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::NOTIFY_CHANNEL;
use crate::config::RelayArgs;
use crate::metrics as m;

/// Advisory lock key of the relay: "todo-outbox-relay" as a number.
pub const RELAY_LOCK_KEY: i64 = 0x746f_646f_7265_6c61;

/// One outbox row as the relay reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: uuid::Uuid,
    event_type: String,
    topic: String,
    key: String,
    payload: Vec<u8>,
    headers: sqlx::types::Json<Vec<[String; 2]>>,
}

/// The relay task.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    settings: RelayArgs,
    wake: Arc<Notify>,
}

/// What one batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows read.
    pub claimed: usize,
    /// Rows acknowledged by Kafka and marked published.
    pub published: usize,
    /// Rows that failed; they stay unpublished and are retried.
    pub failed: usize,
}

impl Relay {
    /// A relay over `pool`'s outbox, publishing with `producer`.
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        settings: RelayArgs,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            producer,
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
        let _ = tokio::task::spawn_blocking({
            let producer = self.producer.clone();
            move || producer.flush(Duration::from_secs(5))
        })
        .await;
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
                        let _ = sqlx::query("SELECT pg_notify($1, '')").bind(NOTIFY_CHANNEL).execute(&self.pool).await;
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
    async fn lead(
        &self,
        mut lock_conn: PgConnection,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let mut failures: u32 = 0;
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
                match prune(
                    &self.pool,
                    Duration::from_secs(self.settings.retention_hours * 3600),
                )
                .await
                {
                    Ok(n) if n > 0 => {
                        tracing::info!(rows = n, "pruned published outbox rows past retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox prune failed"),
                }
            }
            let outcome = tokio::select! {
                _ = cancel.cancelled() => continue,
                r = self.publish_batch() => r,
            };
            match outcome {
                Ok(o) if o.failed == 0 => {
                    failures = 0;
                    if o.claimed as i64 >= self.settings.batch_size {
                        continue;
                    }
                }
                Ok(o) => {
                    failures += 1;
                    let wait = backoff(failures, &self.settings);
                    tracing::warn!(
                        failed = o.failed,
                        published = o.published,
                        retry_in_ms = wait.as_millis() as u64,
                        "outbox batch partly failed; retrying"
                    );
                    tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
                    continue;
                }
                Err(e) => {
                    if crate::error::is_unavailable(&e) {
                        failures += 1;
                        let wait = backoff(failures, &self.settings);
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "outbox relay: database unavailable");
                        tokio::select! { _ = cancel.cancelled() => {}, _ = tokio::time::sleep(wait) => {} }
                        // The lock connection is likely gone too: re-check now.
                        lock_conn.ping().await?;
                        continue;
                    }
                    return Err(e.into());
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = self.wake.notified() => {}
                n = listener.recv() => { n?; }
                _ = tokio::time::sleep(self.settings.poll_interval()) => {}
            }
        }
    }

    /// Publishes the next batch of unpublished rows, in id order, with every
    /// send in flight at once, then marks the acknowledged rows published.
    pub async fn publish_batch(&self) -> Result<BatchOutcome, sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event_id, event_type, topic, key, payload, headers
             FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(self.settings.batch_size)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let started = Instant::now();
        let mut in_flight = FuturesOrdered::new();
        for row in &rows {
            let headers = row.headers.iter().fold(
                OwnedHeaders::new_with_capacity(row.headers.len()),
                |h, [k, v]| {
                    h.insert(Header {
                        key: k,
                        value: Some(v.as_bytes()),
                    })
                },
            );
            let mut record = FutureRecord::to(&row.topic)
                .key(&row.key)
                .payload(&row.payload)
                .headers(headers);
            // NB: never await one send at a time; queue them all, then await
            // the delivery reports in order.
            let delivery = loop {
                match self.producer.send_result(record) {
                    Ok(fut) => break Ok(fut),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => break Err(e),
                }
            };
            in_flight.push_back(async move {
                match delivery {
                    Ok(fut) => match fut.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(e),
                        Err(_) => Err(KafkaError::Canceled),
                    },
                    Err(e) => Err(e),
                }
            });
        }
        let mut published = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut i = 0;
        while let Some(result) = in_flight.next().await {
            let row = &rows[i];
            i += 1;
            match result {
                Ok(()) => {
                    m::published(&row.event_type, started.elapsed());
                    published.push(row.id);
                }
                Err(e) => {
                    m::publish_failed(&row.event_type);
                    tracing::warn!(event_id = %row.event_id, topic = %row.topic, error = %e, retriable = todo_kafka::is_retriable(&e), "event publish failed; will retry");
                    failed.push(row.id);
                }
            }
        }
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&published)
                .execute(&self.pool)
                .await?;
        }
        if !failed.is_empty() {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(&failed)
                .execute(&self.pool)
                .await?;
        }
        Ok(BatchOutcome {
            claimed: rows.len(),
            published: published.len(),
            failed: failed.len(),
        })
    }
}

/// Exponential backoff with full jitter, capped.
fn backoff(failures: u32, s: &RelayArgs) -> Duration {
    let exp = s
        .backoff_base_ms
        .saturating_mul(1u64 << failures.min(16).saturating_sub(1));
    let capped = exp.min(s.backoff_cap_ms).max(1);
    Duration::from_millis(rand::random_range(capped / 2..=capped))
}

/// Deletes published rows older than `retention`, in chunks.
pub async fn prune(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let secs = retention.as_secs_f64();
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox
                 WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)
                   -- implied by the line above (a row is published after it
                   -- is created); lets the BRIN index on created_at narrow the scan
                   AND created_at < now() - make_interval(secs => $1)
                 LIMIT 10000)",
        )
        .bind(secs)
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < 10_000 {
            return Ok(total);
        }
    }
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
