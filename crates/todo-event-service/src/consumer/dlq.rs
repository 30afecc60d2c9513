//! The dead-letter topic: the original key, value and headers, plus the
//! `dlq.*` headers that say where the record came from and why it failed.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use todo_events::headers;
use todo_kafka::Producer;
use tokio_util::sync::CancellationToken;

use super::record::Record;
use super::retry::{sleep_or_cancel, Backoff};
use crate::Cancelled;

/// Why a record is dead-lettered.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Short stable class (`DecodeError::class`, `handler_failed`, `webhook_failed`).
    pub class: String,
    /// What went wrong.
    pub message: String,
    /// Processing attempts made.
    pub attempts: u32,
}

/// Sends records to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: Producer,
    topic: String,
    group: String,
    outage: Backoff,
}

impl DeadLetters {
    /// Dead letters go to `topic`, marked as given up by `group`.
    pub fn new(producer: Producer, topic: String, group: String, outage_cap: Duration) -> Self {
        Self {
            producer,
            topic,
            group,
            outage: Backoff::new(Duration::from_millis(100), 2.0, outage_cap),
        }
    }

    /// The headers of the dead letter of `record`.
    pub fn headers(&self, record: &Record, failure: &Failure) -> OwnedHeaders {
        let mut h = OwnedHeaders::new_with_capacity(record.headers.len() + headers::ALL_DLQ.len());
        for (k, v) in &record.headers {
            // Earlier dead-letter headers (a replayed record failing again) are replaced.
            if !headers::ALL_DLQ.contains(&k.as_str()) {
                h = h.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
        }
        let message: String = failure.message.chars().take(1_000).collect();
        let added = [
            (headers::DLQ_ORIGINAL_TOPIC, record.topic.clone()),
            (
                headers::DLQ_ORIGINAL_PARTITION,
                record.partition.to_string(),
            ),
            (headers::DLQ_ORIGINAL_OFFSET, record.offset.to_string()),
            (
                headers::DLQ_ORIGINAL_TIMESTAMP,
                record
                    .timestamp_ms
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ),
            (headers::DLQ_CONSUMER_GROUP, self.group.clone()),
            (headers::DLQ_ERROR_CLASS, failure.class.clone()),
            (headers::DLQ_ERROR_MESSAGE, message),
            (headers::DLQ_ATTEMPTS, failure.attempts.to_string()),
        ];
        for (k, v) in &added {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        h
    }

    /// Sends the dead letter and waits for Kafka's acknowledgement, retrying
    /// for as long as Kafka refuses (an outage is never a reason to drop it).
    pub async fn send(
        &self,
        record: &Record,
        failure: &Failure,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(self.headers(record, failure));
            if let Some(k) = &record.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &record.value {
                fr = fr.payload(v.as_slice());
            }
            let sent = tokio::select! {
                r = self.producer.send(fr, Duration::from_secs(30)) => r,
                _ = cancel.cancelled() => return Err(Cancelled),
            };
            match sent {
                Ok(_) => {
                    tracing::warn!(
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        error_class = %failure.class, error = %failure.message, attempts = failure.attempts,
                        "record dead-lettered"
                    );
                    crate::metrics::dead_lettered(&failure.class);
                    return Ok(());
                }
                Err((e, _)) => {
                    attempt += 1;
                    crate::metrics::outage_retry("kafka");
                    tracing::warn!(error = %e, attempt, "could not write to the dead-letter topic; retrying");
                    if !sleep_or_cancel(self.outage.delay(attempt), cancel).await {
                        return Err(Cancelled);
                    }
                }
            }
        }
    }
}
