//! One task per assigned partition: reads its own queue in batches, processes
//! each batch in order, and stores the offset after the last record of a batch
//! once everything in it is processed or dead-lettered (and its webhooks sent).
//!
//! Webhooks run behind the Postgres handlers: a batch's notifications are sent
//! by a task of their own, and the partition goes on with the next batches, so
//! a Redis outage holds back only the stored offset, not the other handlers.
//! Offsets are stored in order: never past a batch whose webhooks are pending.
//! Events whose effects fail are parked with their key (`parking`); the
//! partition's retrier runs beside this loop.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::lag::Progress;
use super::Ctx;
use crate::pipeline::parking::{self, ParkingLot};
use crate::pipeline::Processor;
use crate::record::Record;
use crate::Cancelled;

/// Most `task.completed` events whose webhooks may be pending before the
/// partition waits for them.
const MAX_PENDING_NOTIFICATIONS: usize = 10_000;

struct Pending {
    next_offset: i64,
    /// Kafka timestamp of the batch's first record (ms).
    first_timestamp_ms: i64,
    notifications: usize,
    done: Option<JoinHandle<Result<(), Cancelled>>>,
}

/// Processes one partition until `cancel`; then finishes the batch in hand,
/// waits up to `drain_timeout` for its pending webhooks, stores the offset of
/// what is finished and returns.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    mut queue: PartitionQueue<Ctx>,
    consumer: Arc<BaseConsumer<Ctx>>,
    topic: String,
    partition: i32,
    processor: Arc<Processor>,
    batch_size: usize,
    drain_timeout: Duration,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) {
    // Webhooks in flight get their own token: a revoke lets them finish
    // (within the drain bound) rather than abandoning them.
    let notify_cancel = CancellationToken::new();
    let _stop_notifications = notify_cancel.clone().drop_guard();
    let wake = Arc::new(Notify::new());
    {
        let wake = wake.clone();
        // NB: called from a librdkafka thread when the queue turns non-empty;
        // `notify_one` keeps a permit, so a wake-up between our last empty poll
        // and the wait is not lost.
        queue.set_nonempty_callback(move || wake.notify_one());
    }
    let Ok(lot) = ParkingLot::load(
        processor.pool().clone(),
        &topic,
        partition,
        processor.outage_policy(),
        &cancel,
    )
    .await
    else {
        return;
    };
    let retrier_cancel = CancellationToken::new();
    let _stop_retrier = retrier_cancel.clone().drop_guard();
    let retrier = tokio::spawn(
        parking::run_retrier(lot.clone(), processor.clone(), retrier_cancel.clone())
            .in_current_span(),
    );
    tracing::info!("partition assigned; processing");
    let mut batches = Batches {
        consumer: &consumer,
        topic: &topic,
        partition,
        pending: VecDeque::new(),
        notifications: 0,
    };

    loop {
        batches.store_finished(false).await;
        progress.oldest_unfinished(batches.oldest_unfinished(None));
        if cancel.is_cancelled() {
            break;
        }
        let batch = read_batch(&queue, batch_size);
        if batch.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = cancel.cancelled() => {}
                // A safety net: the queue is polled now and then regardless.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let next_offset = batch
            .last()
            .map(|r| r.offset + 1)
            .expect("batch is not empty");
        let first_timestamp_ms = first_timestamp_ms(&batch);
        progress.read_up_to(next_offset);
        progress.oldest_unfinished(batches.oldest_unfinished(Some(first_timestamp_ms)));
        let notifications = match processor.process(&batch, &lot, &cancel).await {
            Ok(n) => n,
            Err(Cancelled) => break,
        };
        let count = notifications.len();
        let done = if notifications.is_empty() {
            None
        } else {
            let notifier = processor
                .notifier()
                .expect("notifications only with a notifier")
                .clone();
            let cancel = notify_cancel.clone();
            let lot = lot.clone();
            let (retry, _) = processor.retry_policy();
            Some(tokio::spawn(
                async move {
                    parking::notify_or_park(&notifier, &lot, &retry, &notifications, &cancel).await
                }
                .in_current_span(),
            ))
        };
        batches.notifications += count;
        batches.pending.push_back(Pending {
            next_offset,
            first_timestamp_ms,
            notifications: count,
            done,
        });
        progress.oldest_unfinished(batches.oldest_unfinished(None));
        while batches.notifications > MAX_PENDING_NOTIFICATIONS && !cancel.is_cancelled() {
            batches.store_finished(true).await;
        }
    }
    // Drain: pending webhooks may finish within the bound; what finished is stored.
    let drain = async {
        while !batches.pending.is_empty() {
            let before = batches.pending.len();
            batches.store_finished(true).await;
            if batches.pending.len() == before {
                break;
            }
        }
    };
    if tokio::time::timeout(drain_timeout, drain).await.is_err() {
        tracing::warn!("webhooks still pending at the drain bound; they are redelivered");
    }
    // A parked record's attempt in flight is abandoned: it stays parked.
    retrier_cancel.cancel();
    let _ = retrier.await;
    tracing::info!("partition released");
}

/// The Kafka timestamp of the batch's first record; the time it was read if
/// it has none (a broker never omits it for the record format in use).
fn first_timestamp_ms(batch: &[Record]) -> i64 {
    batch
        .first()
        .and_then(|r| r.timestamp_ms)
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
}

/// Reads up to `max` records without waiting.
fn read_batch(queue: &PartitionQueue<Ctx>, max: usize) -> Vec<Record> {
    let mut batch = Vec::new();
    while batch.len() < max {
        match queue.poll(Duration::ZERO) {
            Some(Ok(m)) => batch.push(record_of(&m)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "error reading the partition");
                break;
            }
            None => break,
        }
    }
    batch
}

/// The partition's processed batches whose offsets are not stored yet, oldest
/// first, and how many of their webhooks are still pending.
struct Batches<'a> {
    consumer: &'a BaseConsumer<Ctx>,
    topic: &'a str,
    partition: i32,
    pending: VecDeque<Pending>,
    notifications: usize,
}

impl Batches<'_> {
    /// The timestamp of the oldest record read and not finished: the first of
    /// the oldest pending batch, else of the batch `in_hand`.
    fn oldest_unfinished(&self, in_hand: Option<i64>) -> Option<i64> {
        self.pending
            .front()
            .map(|p| p.first_timestamp_ms)
            .or(in_hand)
    }

    /// Stores the offset after the newest batch whose work is all done, in
    /// order. With `wait`, waits for the oldest pending batch first.
    async fn store_finished(&mut self, wait: bool) {
        let mut store_to = None;
        let mut first = true;
        while let Some(front) = self.pending.front_mut() {
            let finished = match &mut front.done {
                None => true,
                Some(h) if h.is_finished() || (wait && first) => matches!(h.await, Ok(Ok(()))),
                Some(_) => false,
            };
            first = false;
            let front = self.pending.pop_front().expect("front exists");
            if !finished {
                // Not done yet (or cancelled): keep it, and everything behind it.
                if front.done.as_ref().is_some_and(|h| !h.is_finished()) {
                    self.pending.push_front(front);
                } else {
                    // Cancelled or panicked: nothing at or after it may be stored.
                    self.pending.clear();
                    self.notifications = 0;
                }
                break;
            }
            self.notifications -= front.notifications;
            store_to = Some(front.next_offset);
        }
        if let Some(next) = store_to {
            store(self.consumer, self.topic, self.partition, next);
        }
    }
}

/// NB: `rd_kafka_offsets_store` stores exactly the offset given, which must be
/// the next one to read (last processed + 1); the per-message
/// `store_offset`/`store_offset_from_message` add the 1 themselves.
fn store(consumer: &BaseConsumer<Ctx>, topic: &str, partition: i32, next: i64) {
    let mut tpl = TopicPartitionList::with_capacity(1);
    if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(next)) {
        tracing::error!(error = %e, "could not build the offset list");
        return;
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // After a revoke the partition is no longer ours; its new owner resumes
        // from the last commit and redelivery changes nothing.
        tracing::debug!(error = %e, topic, partition, next, "offset not stored");
    }
}

/// Copies `m` out of librdkafka's buffers.
fn record_of(m: &BorrowedMessage<'_>) -> Record {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|hd| (hd.key.to_owned(), hd.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
        received: Instant::now(),
    }
}
