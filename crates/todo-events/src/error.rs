//! The crate's typed errors.

use thiserror::Error;

use crate::kinds::EventType;

/// A string that is not one of a vocabulary's names (event type, version, content
/// type, status).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what}: {value:?}")]
pub struct ParseError {
    /// What was being parsed, e.g. `"event type"`.
    pub what: &'static str,
    /// The rejected input (cut to 100 characters).
    pub value: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, value: &str) -> Self {
        ParseError {
            what,
            value: truncate(value, 100),
        }
    }
}

/// An event whose fields break the contract's rules (checked by
/// [`crate::Event::validate`] after decoding and before encoding).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// A UUID field does not hold a well-formed UUID.
    #[error("{field} is not a UUID: {value:?}")]
    MalformedUuid {
        /// The field, e.g. `"event_id"`.
        field: &'static str,
        /// Its value (cut to 100 characters).
        value: String,
    },
    /// A UUID field holds the nil UUID.
    #[error("{field} is the nil UUID")]
    NilUuid {
        /// The field, e.g. `"correlation_id"`.
        field: &'static str,
    },
    /// A timestamp field is not an RFC 3339 date-time.
    #[error("{field} is not an RFC 3339 timestamp: {value:?}")]
    MalformedTimestamp {
        /// The field, e.g. `"timestamp"` or `"payload.created_at"`.
        field: &'static str,
        /// Its value (cut to 100 characters).
        value: String,
    },
    /// `payload.task_id` is zero or negative.
    #[error("task_id must be > 0, got {0}")]
    NonPositiveTaskId(i64),
    /// `payload.task_version` is negative.
    #[error("task_version must be >= 0, got {0}")]
    NegativeTaskVersion(i64),
    /// `payload.title` is empty or only whitespace.
    #[error("title is empty")]
    EmptyTitle,
    /// `source` is empty.
    #[error("source is empty")]
    EmptySource,
}

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The event breaks the contract; nothing was encoded.
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    /// The Avro library refused the value (a defect of this crate: the value is
    /// built from the event to fit the schema).
    #[error("Avro encoding failed: {0}")]
    Avro(String),
    /// JSON serialization failed.
    #[error("JSON encoding failed: {0}")]
    Json(String),
}

/// Why bytes could not be turned into a valid event. Every variant is permanent:
/// the same bytes will fail the same way, so a consumer dead-letters them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Avro bytes shorter than the 10-byte single-object header.
    #[error("truncated Avro record: {len} bytes, the single-object header alone is 10")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// Avro bytes that do not start with the single-object marker `C3 01`.
    #[error("not an Avro single-object record: starts with {found:02X?}, expected [C3, 01]")]
    BadMarker {
        /// The first (up to) two bytes.
        found: Vec<u8>,
    },
    /// The writer schema's fingerprint is none of the known schemas'.
    #[error("unknown Avro schema fingerprint {}", hex(.0))]
    UnknownFingerprint([u8; 8]),
    /// The Avro body does not decode with its writer schema, or does not resolve to
    /// the reader schema, or has trailing bytes, or its envelope disagrees with its
    /// schema.
    #[error("malformed Avro body: {0}")]
    MalformedAvro(String),
    /// Not JSON, or JSON without a required field, or a field of the wrong type.
    #[error("malformed JSON event: {0}")]
    MalformedJson(String),
    /// `event_type` is not one of ours.
    #[error("unknown event_type {0:?}")]
    UnknownEventType(String),
    /// `event_version` is not one of ours.
    #[error("unknown event_version {0:?}")]
    UnknownEventVersion(String),
    /// A record whose event type does not belong on the topic it came from.
    #[error("a {event_type} event on topic {topic:?}")]
    TopicMismatch {
        /// The topic the record was read from.
        topic: String,
        /// The event type the record holds.
        event_type: EventType,
    },
    /// The event decoded but breaks the contract.
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
    /// The `content-type` header names an encoding we do not read.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
}

impl DecodeError {
    /// A short, stable name for the kind of error, for the `dlq.error_class` header
    /// and for metrics labels. Never changes once released.
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::BadMarker { .. } => "bad_marker",
            DecodeError::UnknownFingerprint(_) => "unknown_fingerprint",
            DecodeError::MalformedAvro(_) => "malformed_avro",
            DecodeError::MalformedJson(_) => "malformed_json",
            DecodeError::UnknownEventType(_) => "unknown_event_type",
            DecodeError::UnknownEventVersion(_) => "unknown_event_version",
            DecodeError::TopicMismatch { .. } => "topic_mismatch",
            DecodeError::Invalid(_) => "invalid_event",
            DecodeError::UnsupportedContentType(_) => "unsupported_content_type",
        }
    }

    /// Every class that [`DecodeError::class`] can return.
    pub const CLASSES: [&'static str; 10] = [
        "truncated",
        "bad_marker",
        "unknown_fingerprint",
        "malformed_avro",
        "malformed_json",
        "unknown_event_type",
        "unknown_event_version",
        "topic_mismatch",
        "invalid_event",
        "unsupported_content_type",
    ];
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cuts `s` to at most `max` characters: error messages end up in Kafka headers
/// and logs, and the Avro library's messages can embed whole schemas.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 2), "hi");
    }

    #[test]
    fn unknown_fingerprint_shows_hex() {
        let e = DecodeError::UnknownFingerprint([0xab, 0, 1, 2, 3, 4, 5, 0xff]);
        assert_eq!(
            e.to_string(),
            "unknown Avro schema fingerprint ab000102030405ff"
        );
        assert_eq!(e.class(), "unknown_fingerprint");
    }
}
