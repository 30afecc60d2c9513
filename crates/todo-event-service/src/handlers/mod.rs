//! What happens to a batch of records from one partition: decode and validate
//! each with `todo-events`, dead-letter what can never be processed, apply the
//! rest with the Postgres handlers in one transaction (audit log, task
//! projection, analytics; see [`crate::store::apply_batch`]), retrying as the
//! failure deserves, and hand `task.completed` events to the webhook notifier.

pub mod dedup;
pub mod notifier;
pub mod projection;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use todo_events::{decode_record, headers, Event, EventType};
use todo_kafka::TopicNames;
use tokio_util::sync::CancellationToken;

use crate::consumer::dlq::{DeadLetters, Failure as DeadLetter};
use crate::consumer::record::Record;
use crate::consumer::retry::{sleep_or_cancel, Backoff};
use crate::store::{self, Applied, Failure, Incoming};
use crate::Cancelled;

/// Error class of an event a handler kept failing on.
pub const HANDLER_FAILED: &str = "handler_failed";

/// Processes batches; shared by every partition worker.
pub struct Processor {
    pool: PgPool,
    topics: TopicNames,
    dead_letters: DeadLetters,
    retry: Backoff,
    attempts: u32,
    outage: Backoff,
    notifier: Option<Arc<notifier::Notifier>>,
}

/// What a processed batch leaves for the notifier.
pub type Notifications = Vec<(Record, Event)>;

impl Processor {
    /// A processor writing to `pool`.
    pub fn new(
        pool: PgPool,
        topics: TopicNames,
        dead_letters: DeadLetters,
        retry: Backoff,
        attempts: u32,
        outage_cap: Duration,
        notifier: Option<Arc<notifier::Notifier>>,
    ) -> Self {
        Self {
            pool,
            topics,
            dead_letters,
            retry,
            attempts: attempts.max(1),
            outage: Backoff::new(Duration::from_millis(100), 2.0, outage_cap),
            notifier,
        }
    }

    /// The notifier, when webhooks are configured.
    pub fn notifier(&self) -> Option<&Arc<notifier::Notifier>> {
        self.notifier.as_ref()
    }

    /// Decodes and validates one record (the topic mapped to its contract name first).
    pub fn decode(&self, record: &Record) -> Result<Event, DeadLetter> {
        let canonical = self
            .topics
            .canonical(&record.topic)
            .unwrap_or(&record.topic);
        let bytes = record.value.as_deref().unwrap_or_default();
        decode_record(canonical, record.header(headers::CONTENT_TYPE), bytes).map_err(|e| {
            DeadLetter {
                class: e.class().to_owned(),
                message: e.to_string(),
                attempts: 1,
            }
        })
    }

    /// Processes `batch` (records of one partition, in order). When it returns
    /// `Ok`, every record has been applied or dead-lettered and its offset may
    /// be stored; the `task.completed` events are returned for the notifier.
    /// `Err(Cancelled)`: stopped part-way; store nothing (redelivery is harmless).
    pub async fn process(
        &self,
        batch: &[Record],
        cancel: &CancellationToken,
    ) -> Result<Notifications, Cancelled> {
        let mut incoming = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for r in batch {
            match self.decode(r) {
                Ok(event) => {
                    incoming.push(Incoming {
                        event,
                        topic: r.topic.clone(),
                        partition: r.partition,
                        offset: r.offset,
                    });
                    records.push(r);
                }
                Err(failure) => dead.push((r, failure)),
            }
        }

        let (applied, failed) = self.apply(&incoming, cancel).await?;
        let mut notifications = Vec::new();
        let mut consumed = [0u64; 4];
        for (i, (inc, rec)) in incoming.iter().zip(&records).enumerate() {
            if let Some((_, failure)) = failed.iter().find(|(idx, _)| *idx == i) {
                dead.push((rec, failure.clone()));
                continue;
            }
            crate::metrics::processing_time(rec.received.elapsed());
            let t = inc.event.event_type();
            consumed[EventType::ALL.iter().position(|x| *x == t).unwrap_or(0)] += 1;
            if t == EventType::Completed && self.notifier.is_some() {
                notifications.push(((*rec).clone(), inc.event.clone()));
            }
        }
        for (t, n) in EventType::ALL.iter().zip(consumed) {
            if n > 0 {
                crate::metrics::consumed(t.as_str(), n);
            }
        }
        if applied.duplicates > 0 {
            tracing::debug!(
                duplicates = applied.duplicates,
                "redelivered events changed nothing"
            );
            crate::metrics::duplicates(applied.duplicates as u64);
        }

        dead.sort_by_key(|(r, _)| r.offset);
        for (record, failure) in dead {
            self.dead_letters.send(record, &failure, cancel).await?;
        }
        Ok(notifications)
    }

    /// Applies `batch`; on a handler error, applies its events one by one so
    /// only the culprit is retried to exhaustion and dead-lettered. Returns the
    /// indexes of the events given up on.
    async fn apply(
        &self,
        batch: &[Incoming],
        cancel: &CancellationToken,
    ) -> Result<(Applied, Vec<(usize, DeadLetter)>), Cancelled> {
        if batch.is_empty() {
            return Ok((Applied::default(), Vec::new()));
        }
        match self
            .apply_with_retry(batch, batch.len() == 1, cancel)
            .await?
        {
            Ok(applied) => Ok((applied, Vec::new())),
            Err(_) if batch.len() > 1 => {
                tracing::warn!(
                    events = batch.len(),
                    "a handler failed on the batch; applying its events one by one"
                );
                let mut total = Applied::default();
                let mut failed = Vec::new();
                for (i, one) in batch.iter().enumerate() {
                    match self
                        .apply_with_retry(std::slice::from_ref(one), true, cancel)
                        .await?
                    {
                        Ok(a) => {
                            total.new += a.new;
                            total.duplicates += a.duplicates;
                        }
                        Err(f) => failed.push((i, f)),
                    }
                }
                Ok((total, failed))
            }
            Err(f) => Ok((Applied::default(), vec![(0, f)])),
        }
    }

    /// One transaction for `batch`, retried: forever while the database is
    /// unreachable, and (when `exhaust`) up to the attempt budget with
    /// exponential backoff on handler errors. Without `exhaust`, the first
    /// handler error is returned at once (the caller isolates the culprit).
    async fn apply_with_retry(
        &self,
        batch: &[Incoming],
        exhaust: bool,
        cancel: &CancellationToken,
    ) -> Result<Result<Applied, DeadLetter>, Cancelled> {
        let mut attempts = 0;
        let mut outages = 0;
        let mut conflicts = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let started = std::time::Instant::now();
            let err = match store::apply_batch(&self.pool, batch).await {
                Ok(applied) => {
                    tracing::trace!(
                        events = batch.len(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "batch applied"
                    );
                    if outages > 0 {
                        tracing::info!(attempts = outages, "the database is back");
                    }
                    return Ok(Ok(applied));
                }
                Err(e) => e,
            };
            match store::classify(&err) {
                Failure::Outage => {
                    outages += 1;
                    crate::metrics::outage_retry("postgres");
                    tracing::warn!(error = %err, attempt = outages, "the database is unreachable; pausing this partition");
                    if !sleep_or_cancel(self.outage.delay(outages), cancel).await {
                        return Err(Cancelled);
                    }
                }
                Failure::Conflict if conflicts < 20 => {
                    conflicts += 1;
                    tracing::debug!(error = %err, "transaction conflict; retrying");
                    if !sleep_or_cancel(Duration::from_millis(5 * conflicts), cancel).await {
                        return Err(Cancelled);
                    }
                }
                Failure::Conflict | Failure::Handler => {
                    attempts += 1;
                    let failure = DeadLetter {
                        class: HANDLER_FAILED.into(),
                        message: err.to_string(),
                        attempts,
                    };
                    if !exhaust {
                        return Ok(Err(failure));
                    }
                    let e = &batch[0].event;
                    if attempts >= self.attempts {
                        tracing::error!(event_id = %e.event_id, correlation_id = %e.correlation_id, task_id = e.task_id(),
                            error = %err, attempts, "handler failed; giving up on the event");
                        return Ok(Err(failure));
                    }
                    crate::metrics::handler_retry("postgres");
                    tracing::warn!(event_id = %e.event_id, correlation_id = %e.correlation_id, task_id = e.task_id(),
                        error = %err, attempt = attempts, "handler failed; retrying");
                    if !sleep_or_cancel(self.retry.delay(attempts), cancel).await {
                        return Err(Cancelled);
                    }
                }
            }
        }
    }
}
