//! The transactional outbox: an event is written in the same transaction as
//! the change it describes, and the relay publishes it after commit.

pub mod payloads;
pub mod relay;
pub mod replay;

use std::sync::Arc;

use sqlx::PgConnection;
use todo_events::{ContentType, Event, EventVersion, Payload};
use todo_kafka::TopicNames;
use tokio::sync::Notify;
use uuid::Uuid;

/// Channel the relay LISTENs on; other instances NOTIFY it.
pub const NOTIFY_CHANNEL: &str = "todo_outbox";

/// Errors writing an outbox row.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The event could not be encoded (a bug: the types are ours).
    #[error("event encoding failed: {0}")]
    Encode(#[from] todo_events::EncodeError),
    /// The insert failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Writes events into the outbox; shared by every request handler.
#[derive(Clone)]
pub struct EventWriter {
    enabled: bool,
    version: EventVersion,
    content_type: ContentType,
    topics: TopicNames,
    wake: Arc<Notify>,
}

impl EventWriter {
    /// A writer; `enabled = false` is the spec's rollout flag (no rows at all).
    pub fn new(
        enabled: bool,
        version: EventVersion,
        content_type: ContentType,
        topics: TopicNames,
    ) -> Self {
        Self {
            enabled,
            version,
            content_type,
            topics,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The signal the in-process relay waits on.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tells the relay there is work (call after commit). Free when nobody waits.
    pub fn wake(&self) {
        if self.enabled {
            self.wake.notify_one();
        }
    }

    /// Appends the event for `payload` to the outbox inside the caller's
    /// transaction. Returns the event id, or `None` when events are off.
    #[tracing::instrument(skip_all, fields(event_type = %payload.event_type(), task_id = payload.task_id(), event_id))]
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        payload: Payload,
        correlation_id: Uuid,
    ) -> Result<Option<Uuid>, OutboxError> {
        if !self.enabled {
            return Ok(None);
        }
        let event = Event::new(payload, self.version, correlation_id);
        tracing::Span::current().record("event_id", tracing::field::display(event.event_id));
        let bytes = event.encode(self.content_type)?;
        let headers: Vec<[String; 2]> = event
            .headers(self.content_type)
            .into_iter()
            .map(|(k, v)| [k.to_owned(), v])
            .collect();
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.event_id)
        .bind(event.event_type().as_str())
        .bind(self.topics.for_event(event.event_type()))
        .bind(event.key())
        .bind(event.payload.task_id())
        .bind(bytes)
        .bind(sqlx::types::Json(headers))
        .bind(correlation_id)
        .execute(conn)
        .await?;
        Ok(Some(event.event_id))
    }
}
