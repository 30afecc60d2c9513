//! The batches in flight: reading unpublished rows, queuing their sends,
//! and marking them once their delivery reports are in.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use sqlx::PgPool;
use todo_outbox::relay::{self as sql, Unpublished};
use todo_runtime::trace::{Attribute, Span, SpanKind, TraceContext};

use super::floor::Floor;
use crate::metrics as m;
use crate::outbox::publish::{Acks, OutboxRecord, Publish, PublishError};

/// What one batch did.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Rows acknowledged by Kafka and marked published.
    pub published: usize,
    /// Rows that failed; they stay unpublished and are retried.
    pub failed: usize,
}

/// The batches in flight, oldest first, the ids of their rows, and where
/// the next read starts.
#[derive(Default)]
pub struct Pipeline {
    batches: VecDeque<Batch>,
    ids: HashSet<i64>,
    floor: Floor,
}

impl Pipeline {
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The oldest batch's delivery reports, once all are in. Cancel safe:
    /// the batch stays in the pipeline until [`Pipeline::finish_oldest`].
    pub async fn oldest_acks(&mut self) -> Vec<Result<(), PublishError>> {
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

    /// Reads the next unpublished rows in id order, skipping those already in
    /// flight, and queues a send for each. `Ok(false)` when fewer than a full
    /// batch were waiting (the relay has caught up).
    ///
    /// Rows are read from the [`Floor`], not from a cursor past the last id
    /// read: a row whose transaction committed late (a lower id that became
    /// visible after higher ones were read) is above the floor, so the next
    /// read picks it up, and it still goes out before any later change of
    /// its task, which can only have been written after it committed.
    pub async fn send_next_batch<P: Publish>(
        &mut self,
        pool: &PgPool,
        publisher: &P,
        batch_size: i64,
    ) -> Result<bool, sqlx::Error> {
        let batch = batch_size.max(1);
        let from = self.floor.start();
        let rows: Vec<Unpublished> = if self.ids.is_empty() {
            let (snapshot, rows) = sql::first_unpublished(pool, from, batch).await?;
            self.floor
                .after_read(snapshot, rows.first().map(|row| row.id));
            rows
        } else {
            // Ids first (cheap), then only the rows not already in flight.
            let (snapshot, ids) =
                sql::first_unpublished_ids(pool, from, batch + self.ids.len() as i64).await?;
            self.floor.after_read(snapshot, ids.first().copied());
            let new: Vec<i64> = ids
                .into_iter()
                .filter(|id| !self.ids.contains(id))
                .collect();
            if new.is_empty() {
                return Ok(false);
            }
            sql::unpublished_of(pool, &new).await?
        };
        let full = rows.len() as i64 >= batch;
        if rows.is_empty() {
            return Ok(false);
        }
        let started = Instant::now();
        let mut sent = Vec::with_capacity(rows.len());
        let mut outgoing = Vec::with_capacity(rows.len());
        m::picked_up(rows.iter().map(|row| row.waited_s));
        for row in rows {
            self.ids.insert(row.id);
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
            outgoing.push(OutboxRecord {
                id: row.id,
                topic: row.topic,
                key: row.key,
                payload: row.payload,
                headers,
            });
        }
        let acks = publisher.send(outgoing).await;
        self.batches.push_back(Batch {
            sent,
            acks,
            started,
        });
        Ok(full)
    }

    /// Marks the oldest batch's acknowledged rows published and counts an
    /// attempt on the failed ones; `acks` are its delivery reports.
    pub async fn finish_oldest(
        &mut self,
        pool: &PgPool,
        acks: Vec<Result<(), PublishError>>,
    ) -> Result<BatchOutcome, sqlx::Error> {
        let mut batch = self
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
                sql::mark_published(pool, &published).await?;
            }
            if !failed.is_empty() {
                sql::count_failed_attempt(pool, &failed).await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        // Marked or not, these rows are no longer in flight: unmarked ones
        // are read and sent again.
        for row in &batch.sent {
            self.ids.remove(&row.id);
        }
        marked?;
        Ok(BatchOutcome {
            published: published.len(),
            failed: failed.len(),
        })
    }

    /// Forgets everything in flight (its rows stay unpublished), and reads
    /// from the first id again.
    pub fn clear(&mut self) {
        self.batches.clear();
        self.ids.clear();
        self.floor.reset();
    }

    /// Reads from the first id again: rows were queued again below the
    /// floor (a replay).
    pub fn read_from_first(&mut self) {
        self.floor.reset();
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
