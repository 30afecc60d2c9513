//! Where the relay sends outbox rows: a [`Publish`] implementation. Straight
//! to Kafka ([`kafka::KafkaPublisher`], `EVENT_TRANSPORT=kafka`, the default
//! and the fastest), or through the Dapr sidecar's bulk publish API
//! ([`dapr::DaprPublisher`], `EVENT_TRANSPORT=dapr`). Either way a row's
//! bytes, key and headers reach the topic unchanged, and a row counts as
//! published only once the broker acknowledged it.

pub mod dapr;
pub mod kafka;

use std::future::Future;

use rdkafka::error::KafkaError;
use tokio::task::JoinHandle;

/// One outbox row to publish.
pub struct OutboxRecord {
    /// Outbox id.
    pub id: i64,
    /// Topic (with any prefix).
    pub topic: String,
    /// Record key (the task id).
    pub key: String,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Vec<(String, String)>,
}

/// Why a row was not published.
#[derive(Debug, Clone)]
pub struct PublishError {
    /// What the transport said.
    pub message: String,
    /// Whether trying again may succeed (every row is tried again regardless).
    pub retriable: bool,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<KafkaError> for PublishError {
    fn from(e: KafkaError) -> Self {
        Self {
            retriable: todo_kafka::is_retriable(&e),
            message: e.to_string(),
        }
    }
}

/// The delivery reports of one batch, in row order.
pub type Acks = JoinHandle<Vec<Result<(), PublishError>>>;

/// Publishes outbox rows. The relay makes one call per batch, so it is
/// generic over this (no per-row dispatch).
pub trait Publish: Send + Sync + 'static {
    /// Batches in flight at once, given the configured pipeline depth.
    fn max_in_flight(&self, configured: usize) -> usize;

    /// Starts publishing `rows` (in id order); the returned task gives one
    /// result per row, in the same order.
    fn send(&self, rows: Vec<OutboxRecord>) -> impl Future<Output = Acks> + Send;

    /// Waits (bounded) for what is queued to be sent.
    fn flush(&self) -> impl Future<Output = ()> + Send;
}
