//! The JSON codec: the envelope exactly as the specification shows it.

use std::borrow::Cow;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{truncate, DecodeError, EncodeError};
use crate::event::Event;
use crate::kinds::{EventType, EventVersion, TaskStatus};
use crate::payload::{Changes, Payload, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};
use crate::text;

pub(crate) fn encode(event: &Event) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(384);
    serde_json::to_writer(&mut out, &Wire(event)).map_err(|e| EncodeError::Json(e.to_string()))?;
    Ok(out)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let wire: EnvelopeIn<'_> = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::MalformedJson(truncate(&e.to_string(), 300)))?;
    wire.into_event()
}

/// The wire form of an event, in its version: v1 has no `task_version` and, except
/// on `task.created`, no `user_id`; v2 has both, `null` when unknown.
pub(crate) struct Wire<'a>(pub &'a Event);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut st = ser.serialize_struct("Event", 7)?;
        st.serialize_field("event_id", &e.event_id.hyphenated())?;
        st.serialize_field("event_type", e.event_type().as_str())?;
        st.serialize_field("event_version", e.event_version.as_str())?;
        st.serialize_field("timestamp", &text::format(&e.timestamp))?;
        st.serialize_field("correlation_id", &e.correlation_id.hyphenated())?;
        st.serialize_field("source", &e.source)?;
        st.serialize_field("payload", &WirePayload(&e.payload, e.event_version))?;
        st.end()
    }
}

struct WirePayload<'a>(&'a Payload, EventVersion);

impl Serialize for WirePayload<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let v2 = self.1 == EventVersion::V2;
        match self.0 {
            Payload::Created(c) => {
                let mut st = ser.serialize_struct("TaskCreated", 6 + usize::from(v2))?;
                st.serialize_field("task_id", &c.task_id)?;
                st.serialize_field("title", &c.title)?;
                st.serialize_field("description", &c.description)?;
                st.serialize_field("status", &c.status)?;
                st.serialize_field("created_at", &text::format(&c.created_at))?;
                st.serialize_field("user_id", &c.user_id)?;
                if v2 {
                    st.serialize_field("task_version", &c.task_version)?;
                }
                st.end()
            }
            Payload::Updated(u) => {
                let mut st = ser.serialize_struct("TaskUpdated", 6 + 2 * usize::from(v2))?;
                st.serialize_field("task_id", &u.task_id)?;
                st.serialize_field("title", &u.title)?;
                st.serialize_field("description", &u.description)?;
                st.serialize_field("status", &u.status)?;
                st.serialize_field("updated_at", &text::format(&u.updated_at))?;
                st.serialize_field("changes", &u.changes)?;
                if v2 {
                    st.serialize_field("user_id", &u.user_id)?;
                    st.serialize_field("task_version", &u.task_version)?;
                }
                st.end()
            }
            Payload::Deleted(d) => {
                let mut st = ser.serialize_struct("TaskDeleted", 2 + 2 * usize::from(v2))?;
                st.serialize_field("task_id", &d.task_id)?;
                st.serialize_field("deleted_at", &text::format(&d.deleted_at))?;
                if v2 {
                    st.serialize_field("user_id", &d.user_id)?;
                    st.serialize_field("task_version", &d.task_version)?;
                }
                st.end()
            }
            Payload::Completed(c) => {
                let mut st = ser.serialize_struct("TaskCompleted", 2 + 2 * usize::from(v2))?;
                st.serialize_field("task_id", &c.task_id)?;
                st.serialize_field("completed_at", &text::format(&c.completed_at))?;
                if v2 {
                    st.serialize_field("user_id", &c.user_id)?;
                    st.serialize_field("task_version", &c.task_version)?;
                }
                st.end()
            }
        }
    }
}

/// The envelope as read: types are checked after parsing, so that an unknown
/// event type or version gets its own error rather than a generic serde one.
/// Unknown fields are ignored (a tolerant reader).
#[derive(Deserialize)]
pub(crate) struct EnvelopeIn<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    event_version: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    correlation_id: Cow<'a, str>,
    source: String,
    #[serde(borrow)]
    payload: PayloadIn<'a>,
}

/// Every payload field of every type; which are required depends on the type.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PayloadIn<'a> {
    task_id: Option<i64>,
    title: Option<String>,
    description: Option<String>,
    status: Option<TaskStatus>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    deleted_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    completed_at: Option<Cow<'a, str>>,
    changes: Option<Changes>,
    user_id: Option<String>,
    task_version: Option<i64>,
}

fn missing(event_type: EventType, field: &str) -> DecodeError {
    DecodeError::MalformedJson(format!("payload of {event_type} lacks {field}"))
}

impl EnvelopeIn<'_> {
    pub(crate) fn into_event(self) -> Result<Event, DecodeError> {
        let event_type: EventType = self
            .event_type
            .parse()
            .map_err(|_| DecodeError::UnknownEventType(truncate(&self.event_type, 100)))?;
        let event_version: EventVersion = self
            .event_version
            .parse()
            .map_err(|_| DecodeError::UnknownEventVersion(truncate(&self.event_version, 100)))?;
        let event_id = text::parse_uuid("event_id", &self.event_id)?;
        let timestamp = text::parse("timestamp", &self.timestamp)?;
        let correlation_id = text::parse_uuid("correlation_id", &self.correlation_id)?;
        let p = self.payload;
        let v2 = event_version == EventVersion::V2;
        // Fields a version does not have are ignored when reading it, as an Avro
        // reader of that version's schema would.
        let task_version = if v2 { p.task_version } else { None };
        let added_user_id = if v2 { p.user_id.clone() } else { None };
        let task_id = p.task_id.ok_or_else(|| missing(event_type, "task_id"))?;
        let at = |field: &'static str, v: Option<Cow<'_, str>>| match v {
            Some(s) => Ok(text::parse(field, &s)?),
            None => Err(missing(event_type, &field["payload.".len()..])),
        };
        let payload = match event_type {
            EventType::Created => Payload::Created(TaskCreated {
                task_id,
                title: p.title.ok_or_else(|| missing(event_type, "title"))?,
                description: p.description,
                status: p.status.ok_or_else(|| missing(event_type, "status"))?,
                created_at: at("payload.created_at", p.created_at)?,
                user_id: p.user_id,
                task_version,
            }),
            EventType::Updated => Payload::Updated(TaskUpdated {
                task_id,
                title: p.title.ok_or_else(|| missing(event_type, "title"))?,
                description: p.description,
                status: p.status.ok_or_else(|| missing(event_type, "status"))?,
                updated_at: at("payload.updated_at", p.updated_at)?,
                changes: p.changes.ok_or_else(|| missing(event_type, "changes"))?,
                user_id: added_user_id,
                task_version,
            }),
            EventType::Deleted => Payload::Deleted(TaskDeleted {
                task_id,
                deleted_at: at("payload.deleted_at", p.deleted_at)?,
                user_id: added_user_id,
                task_version,
            }),
            EventType::Completed => Payload::Completed(TaskCompleted {
                task_id,
                completed_at: at("payload.completed_at", p.completed_at)?,
                user_id: added_user_id,
                task_version,
            }),
        };
        Ok(Event {
            event_id,
            event_version,
            timestamp,
            correlation_id,
            source: self.source,
            payload,
        })
    }
}
