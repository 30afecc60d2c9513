//! The envelope, and the encode and decode entry points.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::{DecodeError, EncodeError, ValidationError};
use crate::headers;
use crate::kinds::{ContentType, EventType, EventVersion};
use crate::payload::Payload;
use crate::{avro, json, SOURCE};

/// One event: the envelope of the specification around a [`Payload`].
///
/// Its serde form ([`Serialize`], [`Deserialize`]) is the JSON wire form in its
/// version, the same as [`Event::encode`] with [`ContentType::Json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per event; consumers deduplicate on it. A time-ordered UUID
    /// (version 7) since 7 Dec 2026, version 4 before: see [`Event::new`].
    pub event_id: Uuid,
    /// The schema version the event is written in.
    pub event_version: EventVersion,
    /// When the event was produced.
    pub timestamp: DateTime<Utc>,
    /// The id of the request that caused the event, for tracing across services.
    pub correlation_id: Uuid,
    /// The producing service, [`SOURCE`] for ours.
    pub source: String,
    /// What happened; its variant is the event type.
    pub payload: Payload,
}

impl Event {
    /// A new event from [`SOURCE`], with a fresh `event_id` and `timestamp` now,
    /// cut to microseconds (what PostgreSQL and most consumers keep).
    ///
    /// The id is a UUID version 7 (RFC 9562): a millisecond timestamp, then a
    /// counter and random bits, so ids rise with time, also within one
    /// millisecond of this process. A consumer that keeps event ids in a B-tree
    /// (the event service's `processed_events` and `audit_log`) then appends
    /// near its right edge, where a random (v4) id would land on a random page
    /// of the whole index: a buffer miss once the index outgrows memory, and a
    /// full-page image in the WAL at its first change after each checkpoint.
    ///
    /// Fields that `version` does not carry are cleared from the payload (see
    /// [`Payload::as_in_version`]), so that decoding the encoded event gives back
    /// exactly this one.
    pub fn new(payload: Payload, version: EventVersion, correlation_id: Uuid) -> Self {
        Event {
            event_id: Uuid::now_v7(),
            event_version: version,
            timestamp: Utc::now().trunc_subsecs(6),
            correlation_id,
            source: SOURCE.to_owned(),
            payload: payload.as_in_version(version),
        }
    }

    /// The event type, from the payload.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    /// The (default) topic the event is published to.
    pub fn topic(&self) -> &'static str {
        self.event_type().topic()
    }

    /// The record key: the task id in decimal, so that a task's events keep their
    /// order within one partition.
    pub fn key(&self) -> String {
        self.payload.task_id().to_string()
    }

    /// The event's task id.
    pub fn task_id(&self) -> i64 {
        self.payload.task_id()
    }

    /// Validates, then encodes in the schema of `self.event_version`: fields the
    /// version lacks are not written.
    pub fn encode(&self, content_type: ContentType) -> Result<Vec<u8>, EncodeError> {
        self.validate()?;
        self.encode_unvalidated(content_type)
    }

    /// Encodes without validating, for tests and tools that need to produce records
    /// a consumer must reject (poison messages).
    pub fn encode_unvalidated(&self, content_type: ContentType) -> Result<Vec<u8>, EncodeError> {
        match content_type {
            ContentType::Json => json::encode(self),
            ContentType::Avro => avro::encode(self),
        }
    }

    /// The Kafka headers of the record that carries this event encoded as
    /// `content_type`: `content-type`, `event_type`, `event_version`, `event_id` and
    /// `correlation_id` (add `traceparent` when tracing is on).
    pub fn headers(&self, content_type: ContentType) -> Vec<(&'static str, String)> {
        vec![
            (headers::CONTENT_TYPE, content_type.as_str().to_owned()),
            (headers::EVENT_TYPE, self.event_type().as_str().to_owned()),
            (
                headers::EVENT_VERSION,
                self.event_version.as_str().to_owned(),
            ),
            (headers::EVENT_ID, self.event_id.hyphenated().to_string()),
            (
                headers::CORRELATION_ID,
                self.correlation_id.hyphenated().to_string(),
            ),
            // CloudEvents binary mode: `content-type` above is its
            // datacontenttype.
            (headers::CE_SPECVERSION, "1.0".to_owned()),
            (headers::CE_ID, self.event_id.hyphenated().to_string()),
            (headers::CE_TYPE, self.event_type().as_str().to_owned()),
            (headers::CE_SOURCE, self.source.clone()),
            (
                headers::CE_TIME,
                self.timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ),
        ]
    }

    /// Checks the contract's rules that the types alone do not: `event_id` and
    /// `correlation_id` are not nil, `source` is not empty, `task_id` > 0,
    /// `task_version` (if any) >= 0, and titles are not blank. (Malformed UUIDs and
    /// timestamps are rejected while decoding, as [`ValidationError`]s too.)
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.event_id.is_nil() {
            return Err(ValidationError::NilUuid { field: "event_id" });
        }
        if self.correlation_id.is_nil() {
            return Err(ValidationError::NilUuid {
                field: "correlation_id",
            });
        }
        if self.source.trim().is_empty() {
            return Err(ValidationError::EmptySource);
        }
        let task_id = self.payload.task_id();
        if task_id <= 0 {
            return Err(ValidationError::NonPositiveTaskId(task_id));
        }
        if let Some(v) = self.payload.task_version() {
            if v < 0 {
                return Err(ValidationError::NegativeTaskVersion(v));
            }
        }
        let title = match &self.payload {
            Payload::Created(c) => Some(&c.title),
            Payload::Updated(u) => Some(&u.title),
            Payload::Deleted(_) | Payload::Completed(_) => None,
        };
        if title.is_some_and(|t| t.trim().is_empty()) {
            return Err(ValidationError::EmptyTitle);
        }
        Ok(())
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        json::Wire(self).serialize(ser)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        json::EnvelopeIn::deserialize(de)?
            .into_event()
            .map_err(serde::de::Error::custom)
    }
}

/// Decodes bytes of the given content type into an event of whichever version they
/// were written in. Avro is read with the newest reader schema (fields the writer
/// lacked are `None`). Does not validate: [`decode_record`] does.
pub fn decode(bytes: &[u8], content_type: ContentType) -> Result<Event, DecodeError> {
    match content_type {
        ContentType::Json => json::decode(bytes),
        ContentType::Avro => avro::decode(bytes),
    }
}

/// The consumer's one entry point: decodes a Kafka record's value read from `topic`,
/// with the value of its `content-type` header (`None`: JSON; a string that is not
/// a known content type: [`DecodeError::UnsupportedContentType`]), checks that the
/// event type belongs on `topic` (one of the default [`crate::topics`]), and
/// validates. Every error is permanent for these bytes: dead-letter them.
pub fn decode_record(
    topic: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Event, DecodeError> {
    let event = decode_unchecked(content_type, bytes)?;
    if EventType::from_topic(topic) != Some(event.event_type()) {
        return Err(DecodeError::TopicMismatch {
            topic: topic.to_owned(),
            event_type: event.event_type(),
        });
    }
    event.validate()?;
    Ok(event)
}

/// As [`decode_record`], for deployments that rename topics: `expected` is the
/// event type configured for `topic`.
pub fn decode_record_for(
    topic: &str,
    expected: EventType,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Event, DecodeError> {
    let event = decode_unchecked(content_type, bytes)?;
    if event.event_type() != expected {
        return Err(DecodeError::TopicMismatch {
            topic: topic.to_owned(),
            event_type: event.event_type(),
        });
    }
    event.validate()?;
    Ok(event)
}

fn decode_unchecked(content_type: Option<&str>, bytes: &[u8]) -> Result<Event, DecodeError> {
    let content_type = match content_type {
        None => ContentType::Json,
        Some(s) => s
            .parse()
            .map_err(|_| DecodeError::UnsupportedContentType(crate::error::truncate(s, 100)))?,
    };
    decode(bytes, content_type)
}
