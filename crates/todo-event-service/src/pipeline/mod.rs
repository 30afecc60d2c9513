//! The pipeline: what happens to a batch of records from one partition,
//! whichever intake read it. Decode and validate
//! each with `todo-events`, dead-letter what can never be processed, apply the
//! rest with the Postgres handlers in one transaction (audit log, task
//! projection, analytics; see [`crate::store::apply_batch`]), park what fails
//! for a reason of its own (`pipeline::parking`), wait out outages, and hand
//! `task.completed` events to the webhook notifier.
//!
//! It may call the store, [`crate::record`], [`crate::retry`] and the metrics;
//! it knows no intake and no Kafka client type.

pub mod dead_letter;
pub mod dedup;
pub mod notifier;
pub mod parking;
mod spans;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use todo_events::{decode_record, headers, Event, EventType};
use todo_kafka::TopicNames;
use todo_runtime::trace::{Attribute, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::record::Record;
use crate::retry::{sleep_or_cancel, Backoff};
use crate::store::parking::{key_of, ToPark};
use crate::store::{self, Applied, Failure, Incoming};
use crate::Cancelled;
use dead_letter::{DeadLetters, Failure as DeadLetter};
use parking::{first_retry_at, Keys, ParkingLot, BEHIND};
use spans::process_spans;

/// An event decoded from `record`, with where it was read and its trace.
fn incoming_of(event: Event, record: &Record) -> Incoming {
    Incoming {
        event,
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        trace: record
            .header(headers::TRACEPARENT)
            .and_then(TraceContext::parse),
    }
}

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
        decode_record(canonical, record.header(headers::CONTENT_TYPE), bytes)
            .map_err(|e| DeadLetter::new(e.class(), e.to_string(), 1))
    }

    /// The retry policy of parked records: backoff, and attempts before the
    /// dead-letter topic.
    pub fn retry_policy(&self) -> (Backoff, u32) {
        (self.retry, self.attempts)
    }

    /// The wait policy while a dependency is down.
    pub fn outage_policy(&self) -> Backoff {
        self.outage
    }

    /// The event store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Sends `record` to the dead-letter topic.
    pub async fn dead_letter(
        &self,
        record: &Record,
        failure: &DeadLetter,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        self.dead_letters.send(record, failure, cancel).await
    }

    /// Processes `batch` (records of one partition, in order). When it returns
    /// `Ok`, every record has been applied, parked or dead-lettered and its
    /// offset may be stored; the applied `task.completed` events are returned
    /// for the notifier. A record of a key parked in `lot` is parked behind
    /// it; a record whose handlers fail is parked (see `pipeline::parking`).
    /// `Err(Cancelled)`: stopped part-way; store nothing (redelivery is harmless).
    pub async fn process(
        &self,
        batch: &[Record],
        lot: &ParkingLot,
        cancel: &CancellationToken,
    ) -> Result<Notifications, Cancelled> {
        let mut incoming = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        crate::metrics::delivery_times(
            batch
                .iter()
                .filter_map(|r| r.timestamp_ms.map(|ts| (ts, r.received))),
        );
        for r in batch {
            match self.decode(r) {
                Ok(event) => {
                    incoming.push(incoming_of(event, r));
                    records.push(r);
                }
                Err(failure) => dead.push((r, failure)),
            }
        }

        let mut spans = process_spans(&incoming);

        // NB: held until what is parked is committed (see `pipeline::parking`).
        let mut keys = lot.lock().await;
        let (applied, parked) = self.apply(&incoming, &records, &mut keys, cancel).await?;
        drop(keys);
        for &i in &parked {
            if let Some(span) = spans.events.get_mut(i) {
                span.record(|| vec![Attribute::new("todo.parked", true)]);
            }
        }
        if !parked.is_empty() {
            lot.wake();
        }
        let mut notifications = Vec::new();
        let mut consumed = [0u64; 4];
        let kept: Vec<(&Incoming, &&Record)> = incoming
            .iter()
            .zip(&records)
            .enumerate()
            .filter(|(i, _)| !parked.contains(i))
            .map(|(_, pair)| pair)
            .collect();
        crate::metrics::processing_times(kept.iter().map(|(_, rec)| rec.received));
        for (inc, rec) in kept {
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

    /// Applies `batch`, parking the events of parked keys. On a handler
    /// error, applies its events one by one, in order, so that the culprit
    /// and the later events of its key are parked and the rest applied.
    /// Returns the indexes of the parked events.
    async fn apply(
        &self,
        batch: &[Incoming],
        records: &[&Record],
        keys: &mut Keys,
        cancel: &CancellationToken,
    ) -> Result<(Applied, Vec<usize>), Cancelled> {
        if batch.is_empty() {
            return Ok((Applied::default(), Vec::new()));
        }
        let now = chrono::Utc::now();
        let behind: Vec<usize> = (0..batch.len())
            .filter(|&i| keys.contains(key_of(records[i])))
            .collect();
        // NB: the common case parks nothing and copies nothing.
        let unparked: Vec<Incoming>;
        let ready: &[Incoming] = if behind.is_empty() {
            batch
        } else {
            unparked = (0..batch.len())
                .filter(|i| !behind.contains(i))
                .map(|i| batch[i].clone())
                .collect();
            &unparked
        };
        let parks: Vec<ToPark<'_>> = behind
            .iter()
            .map(|&i| park_behind(records[i], &batch[i], now))
            .collect();
        let failed = match self.apply_with_retry(ready, &parks, cancel).await? {
            Ok(applied) => {
                for p in &parks {
                    keys.add(key_of(p.record), now);
                    crate::metrics::parked(BEHIND);
                }
                return Ok((applied, behind));
            }
            Err(f) => f,
        };
        // NB: a lone event tried alone has failed already: it is not tried twice.
        let mut known = (ready.len() == 1 && parks.is_empty()).then_some(failed);
        if ready.len() > 1 {
            tracing::warn!(
                events = ready.len(),
                "a handler failed on the batch; applying its events one by one"
            );
        }
        let mut total = Applied::default();
        let mut parked = Vec::new();
        let mut failures: Vec<(usize, DeadLetter)> = Vec::new();
        let mut failed_keys: Vec<&[u8]> = Vec::new();
        for (i, (one, record)) in batch.iter().zip(records).enumerate() {
            let key = key_of(record);
            if keys.contains(key) || failed_keys.contains(&key) {
                parked.push(i);
                continue;
            }
            let outcome = match known.take() {
                Some(f) => Err(f),
                None => {
                    self.apply_with_retry(std::slice::from_ref(one), &[], cancel)
                        .await?
                }
            };
            match outcome {
                Ok(a) => {
                    total.new += a.new;
                    total.duplicates += a.duplicates;
                }
                Err(f) => {
                    let e = &one.event;
                    tracing::warn!(event_id = %e.event_id, correlation_id = %e.correlation_id, task_id = e.task_id(),
                        error = %f.message, "handler failed; parking the event and its key");
                    failed_keys.push(key);
                    failures.push((i, f));
                    parked.push(i);
                }
            }
        }
        let due = first_retry_at(&self.retry);
        let parks: Vec<ToPark<'_>> = parked
            .iter()
            .map(|&i| match failures.iter().find(|(j, _)| *j == i) {
                Some((_, f)) => ToPark {
                    failure: Some((f.class.as_str(), f.message.as_str(), f.attempts)),
                    next_attempt_at: due,
                    ..park_behind(records[i], &batch[i], now)
                },
                None => park_behind(records[i], &batch[i], now),
            })
            .collect();
        if parks.is_empty() {
            return Ok((total, parked));
        }
        if let Err(f) = self.apply_with_retry(&[], &parks, cancel).await? {
            // Parking is an insert of bytes as read; only an outage stops it,
            // and outages are waited out above.
            tracing::error!(error = %f.message, "could not park; the batch is redelivered");
            return Err(Cancelled);
        }
        for p in &parks {
            keys.add(key_of(p.record), p.next_attempt_at);
            crate::metrics::parked(p.failure.map_or(BEHIND, |(class, _, _)| class));
        }
        Ok((total, parked))
    }

    /// One parked record, from the start: its handlers (a no-op if they were
    /// applied before), then its webhooks.
    pub async fn retry_parked(
        &self,
        record: &Record,
        cancel: &CancellationToken,
    ) -> Result<Result<(), DeadLetter>, Cancelled> {
        let event = match self.decode(record) {
            Ok(e) => e,
            Err(f) => return Ok(Err(f)),
        };
        let one = incoming_of(event, record);
        let _span = process_spans(std::slice::from_ref(&one));
        let applied = match self
            .apply_with_retry(std::slice::from_ref(&one), &[], cancel)
            .await?
        {
            Ok(a) => a,
            Err(f) => return Ok(Err(f)),
        };
        if applied.new > 0 {
            crate::metrics::consumed(one.event.event_type().as_str(), 1);
        }
        match &self.notifier {
            Some(n) if one.event.event_type() == EventType::Completed => {
                n.notify(&one.event, cancel).await
            }
            _ => Ok(Ok(())),
        }
    }

    /// One transaction for `batch` and `parks`, retried forever while the
    /// database is unreachable and a few times on a transaction conflict.
    /// A handler error is returned at once (the caller parks the culprit).
    async fn apply_with_retry(
        &self,
        batch: &[Incoming],
        parks: &[ToPark<'_>],
        cancel: &CancellationToken,
    ) -> Result<Result<Applied, DeadLetter>, Cancelled> {
        let mut outages = 0;
        let mut conflicts = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let started = std::time::Instant::now();
            let err = match store::apply_and_park(&self.pool, batch, parks).await {
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
                    return Ok(Err(DeadLetter::new(HANDLER_FAILED, err.to_string(), 1)));
                }
            }
        }
    }
}

/// A record parked behind an earlier one of its key.
fn park_behind<'a>(
    record: &'a Record,
    incoming: &Incoming,
    now: chrono::DateTime<chrono::Utc>,
) -> ToPark<'a> {
    ToPark {
        record,
        event_id: incoming.event.event_id,
        failure: None,
        next_attempt_at: now,
    }
}
