//! The transactional outbox: an event is written in the same transaction as
//! the change it describes, and the relay publishes it after commit.

pub mod payloads;
pub mod publish;
pub mod relay;

use std::sync::Arc;

use todo_events::{ContentType, Event, EventVersion, Payload};
use todo_kafka::TopicNames;
use todo_outbox::write::NewEvent;
use todo_runtime::trace::TraceContext;
use tokio::sync::Notify;
use uuid::Uuid;

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

    /// Encodes the event for `payload` as the outbox row the change's own
    /// statement writes (see `store::batched_writes`), so the change and its event
    /// commit together in one round trip. `None` when events are off.
    /// The origin's span goes with the event as its `traceparent` header:
    /// the relay's publish span and the event service's processing continue
    /// that trace.
    pub fn prepare(
        &self,
        payload: Payload,
        Origin {
            correlation_id,
            trace,
        }: Origin,
    ) -> Result<Option<OutboxRow>, todo_events::EncodeError> {
        if !self.enabled {
            return Ok(None);
        }
        let event = Event::new(payload, self.version, correlation_id);
        let mut row = NewEvent::encode(
            &event,
            self.content_type,
            self.topics.for_event(event.event_type()),
        )?;
        if let Some(trace) = &trace {
            row.headers.0.push([
                todo_events::headers::TRACEPARENT.to_owned(),
                trace.traceparent(),
            ]);
        }
        tracing::debug!(event_id = %event.event_id, event_type = %event.event_type(), task_id = event.payload.task_id(), "event prepared");
        Ok(Some(OutboxRow { event: row, trace }))
    }
}

/// Where a change comes from, as its event records it.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// The request's correlation id.
    pub correlation_id: Uuid,
    /// The request's span, if any.
    pub trace: Option<TraceContext>,
}

impl Origin {
    /// A change with no request span (tests, tools).
    pub fn untraced(correlation_id: Uuid) -> Self {
        Self {
            correlation_id,
            trace: None,
        }
    }
}

/// One event, encoded, as the outbox stores it, and the request it comes from.
#[derive(Debug)]
pub struct OutboxRow {
    /// The row (the task id comes from the task row written by the same
    /// statement).
    pub event: NewEvent,
    /// The request's span (also in the headers as `traceparent`); the write
    /// batch's span links to it.
    pub trace: Option<TraceContext>,
}
