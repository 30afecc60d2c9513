//! The event contract of the todo system.
//!
//! Every task state change in `todo-backend` becomes one [`Event`] on Kafka, and
//! `todo-event-service` consumes them. This crate is the only place where topic
//! names, header names, payload fields and wire formats are declared:
//!
//! * the envelope ([`Event`]) and the payloads of `task.created`, `task.updated`,
//!   `task.deleted` and `task.completed` ([`Payload`]), in versions
//!   [`EventVersion::V1`] (exactly the spec) and [`EventVersion::V2`] (v1 plus
//!   optional `task_version` and `user_id`);
//! * topic names ([`topics`]), Kafka header names ([`headers`]), content types
//!   ([`ContentType`]); the record key is the task id in decimal ([`Event::key`]);
//! * two encodings: JSON (`application/json`, the default) and Avro binary in Avro's
//!   single-object encoding (`application/avro`), whose schemas are the `.avsc` files
//!   under `schemas/` at the repository root, embedded here ([`schema`]);
//! * one decode entry point for consumers, [`decode_record`], which turns any bad
//!   input into a typed [`DecodeError`] (never a panic) with a stable
//!   [`DecodeError::class`] for the dead-letter headers;
//! * the schema evolution gate, [`check_new_schema`], for whoever adds a version.
//!
//! ```
//! use todo_events::{decode_record, ContentType, Event, EventVersion, Payload, TaskCompleted};
//!
//! let completed = TaskCompleted {
//!     task_id: 42,
//!     completed_at: chrono::Utc::now(),
//!     user_id: None,
//!     task_version: Some(3),
//! };
//! let event = Event::new(Payload::Completed(completed), EventVersion::V2, uuid::Uuid::new_v4());
//! let bytes = event.encode(ContentType::Avro)?;
//! let decoded = decode_record(event.topic(), Some(ContentType::Avro.as_str()), &bytes)?;
//! assert_eq!(decoded, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod avro;
mod error;
mod event;
mod json;
mod kinds;
mod payload;
pub mod schema;
mod text;

pub use avro::decode_avro_with_reader;
pub use error::{DecodeError, EncodeError, ParseError, ValidationError};
pub use event::{decode, decode_record, decode_record_for, Event};
pub use kinds::{ContentType, EventType, EventVersion, TaskStatus};
pub use payload::{Changes, Payload, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};
pub use schema::{check_new_schema, SchemaInfo};

/// The `source` of every event this system produces.
pub const SOURCE: &str = "todo-backend";

/// Kafka topic names (the defaults; deployments may rename them in configuration).
pub mod topics {
    /// Topic of `task.created` events.
    pub const TASK_CREATED: &str = "todo.tasks.created";
    /// Topic of `task.updated` events.
    pub const TASK_UPDATED: &str = "todo.tasks.updated";
    /// Topic of `task.deleted` events.
    pub const TASK_DELETED: &str = "todo.tasks.deleted";
    /// Topic of `task.completed` events.
    pub const TASK_COMPLETED: &str = "todo.tasks.completed";
    /// Dead-letter topic: records that could not be processed, with their original
    /// key and bytes and the `dlq.*` headers of [`crate::headers`].
    pub const DLQ: &str = "todo.tasks.dlq";
    /// The four task topics, in the order of [`crate::EventType::ALL`].
    pub const ALL_TASK_TOPICS: [&str; 4] =
        [TASK_CREATED, TASK_UPDATED, TASK_DELETED, TASK_COMPLETED];
}

/// Kafka header names. Values are UTF-8 strings.
pub mod headers {
    /// Encoding of the record value: a [`crate::ContentType`] string. Absent means JSON.
    pub const CONTENT_TYPE: &str = "content-type";
    /// The event type, e.g. `task.created` (lets a consumer route without decoding).
    pub const EVENT_TYPE: &str = "event_type";
    /// The event version, `v1` or `v2`.
    pub const EVENT_VERSION: &str = "event_version";
    /// The event id (UUID).
    pub const EVENT_ID: &str = "event_id";
    /// The correlation id (UUID) of the request that caused the event.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// W3C trace context (`00-<trace id>-<span id>-<flags>`) of the span that
    /// published the record: the event service continues that trace.
    pub const TRACEPARENT: &str = "traceparent";

    /// CloudEvents Kafka binary mode (CloudEvents 1.0 Kafka protocol binding):
    /// the record is a CloudEvent whose data is the value. Spec version: `1.0`.
    pub const CE_SPECVERSION: &str = "ce_specversion";
    /// CloudEvents `id`: the event id.
    pub const CE_ID: &str = "ce_id";
    /// CloudEvents `type`: the event type, e.g. `task.created`.
    pub const CE_TYPE: &str = "ce_type";
    /// CloudEvents `source`: the envelope's `source` (`todo-backend`).
    pub const CE_SOURCE: &str = "ce_source";
    /// CloudEvents `time`: the envelope's `timestamp`, RFC 3339.
    pub const CE_TIME: &str = "ce_time";

    /// Dead-letter header: the topic the record was consumed from.
    pub const DLQ_ORIGINAL_TOPIC: &str = "dlq.original_topic";
    /// Dead-letter header: its partition (decimal).
    pub const DLQ_ORIGINAL_PARTITION: &str = "dlq.original_partition";
    /// Dead-letter header: its offset (decimal).
    pub const DLQ_ORIGINAL_OFFSET: &str = "dlq.original_offset";
    /// Dead-letter header: its Kafka timestamp (milliseconds since the epoch, decimal).
    pub const DLQ_ORIGINAL_TIMESTAMP: &str = "dlq.original_timestamp";
    /// Dead-letter header: the consumer group that gave up on it.
    pub const DLQ_CONSUMER_GROUP: &str = "dlq.consumer_group";
    /// Dead-letter header: a short stable error class, e.g. [`crate::DecodeError::class`].
    pub const DLQ_ERROR_CLASS: &str = "dlq.error_class";
    /// Dead-letter header: the human-readable error message.
    pub const DLQ_ERROR_MESSAGE: &str = "dlq.error_message";
    /// Dead-letter header: how many processing attempts were made (decimal).
    pub const DLQ_ATTEMPTS: &str = "dlq.attempts";
    /// Dead-letter header: when processing first failed, over every replay
    /// (milliseconds since the epoch, decimal).
    pub const DLQ_FIRST_FAILED_AT: &str = "dlq.first_failed_at";
    /// Dead-letter header: when processing last failed (milliseconds since the
    /// epoch, decimal).
    pub const DLQ_LAST_FAILED_AT: &str = "dlq.last_failed_at";
    /// Set on a record replayed from the DLQ: `<topic>/<partition>/<offset>` of the
    /// dead-letter record it came from.
    pub const REPLAYED_FROM: &str = "replayed_from";

    /// Every `dlq.*` header, in the order above.
    pub const ALL_DLQ: [&str; 10] = [
        DLQ_ORIGINAL_TOPIC,
        DLQ_ORIGINAL_PARTITION,
        DLQ_ORIGINAL_OFFSET,
        DLQ_ORIGINAL_TIMESTAMP,
        DLQ_CONSUMER_GROUP,
        DLQ_ERROR_CLASS,
        DLQ_ERROR_MESSAGE,
        DLQ_ATTEMPTS,
        DLQ_FIRST_FAILED_AT,
        DLQ_LAST_FAILED_AT,
    ];

    /// The `dlq.*` headers a record replayed from the DLQ keeps, so that if it
    /// fails again its dead letter still names where it first failed, when,
    /// and after how many attempts in all.
    pub const DLQ_KEPT_ON_REPLAY: [&str; 6] = [
        DLQ_ORIGINAL_TOPIC,
        DLQ_ORIGINAL_PARTITION,
        DLQ_ORIGINAL_OFFSET,
        DLQ_ORIGINAL_TIMESTAMP,
        DLQ_ATTEMPTS,
        DLQ_FIRST_FAILED_AT,
    ];

    /// Most bytes (names plus values) of the `dlq.*` headers of one dead
    /// letter, whatever the number of retries and replays. The record's own
    /// headers are kept as they came: a dead letter must be replayable as it
    /// was.
    pub const DLQ_MAX_HEADER_BYTES: usize = 2_048;
    /// Most bytes of `dlq.error_message` (cut at a character boundary).
    pub const DLQ_MAX_ERROR_MESSAGE_BYTES: usize = 512;

    /// Whether `name` is a dead-letter header (any `dlq.*`, also one this
    /// version does not know): a dead letter carries one fresh set of them.
    pub fn is_dlq(name: &str) -> bool {
        name.starts_with("dlq.")
    }
}
