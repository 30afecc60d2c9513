//! Small closed vocabularies of the contract: event types, versions, content types
//! and task statuses. Each has a stable string form (`as_str`, `Display`, `FromStr`,
//! serde) that is part of the wire format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::topics;

/// The kind of task state change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// `task.created`: a task was created.
    #[serde(rename = "task.created")]
    Created,
    /// `task.updated`: a task's title, description or status changed.
    #[serde(rename = "task.updated")]
    Updated,
    /// `task.deleted`: a task was deleted.
    #[serde(rename = "task.deleted")]
    Deleted,
    /// `task.completed`: a task was marked complete.
    #[serde(rename = "task.completed")]
    Completed,
}

impl EventType {
    /// Every event type, in the order of [`topics::ALL_TASK_TOPICS`].
    pub const ALL: [EventType; 4] = [
        EventType::Created,
        EventType::Updated,
        EventType::Deleted,
        EventType::Completed,
    ];

    /// The wire name, e.g. `"task.created"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "task.created",
            EventType::Updated => "task.updated",
            EventType::Deleted => "task.deleted",
            EventType::Completed => "task.completed",
        }
    }

    /// The (default) Kafka topic of this event type, e.g. `"todo.tasks.created"`.
    pub fn topic(self) -> &'static str {
        match self {
            EventType::Created => topics::TASK_CREATED,
            EventType::Updated => topics::TASK_UPDATED,
            EventType::Deleted => topics::TASK_DELETED,
            EventType::Completed => topics::TASK_COMPLETED,
        }
    }

    /// The event type whose (default) topic is `topic`; `None` for any other topic,
    /// the DLQ included.
    pub fn from_topic(topic: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.topic() == topic)
    }

    /// The Avro record name of this type's schemas (namespace `todo.events`).
    pub fn avro_record_name(self) -> &'static str {
        match self {
            EventType::Created => "TaskCreated",
            EventType::Updated => "TaskUpdated",
            EventType::Deleted => "TaskDeleted",
            EventType::Completed => "TaskCompleted",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseError::new("event type", s))
    }
}

/// The version of an event's schema. Producers emit one configured version;
/// consumers accept every version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum EventVersion {
    /// `v1`: exactly the fields of the specification.
    #[serde(rename = "v1")]
    V1,
    /// `v2`: v1 plus the optional `task_version` on every payload and `user_id` on
    /// the payloads that lacked it.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl EventVersion {
    /// The newest version, the producers' default.
    pub const LATEST: EventVersion = EventVersion::V2;

    /// Every version, oldest first.
    pub const ALL: [EventVersion; 2] = [EventVersion::V1, EventVersion::V2];

    /// The wire name, `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventVersion::V1 => "v1",
            EventVersion::V2 => "v2",
        }
    }
}

impl fmt::Display for EventVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventVersion {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ParseError::new("event version", s))
    }
}

/// The encoding of a record's value, carried in the `content-type` header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum ContentType {
    /// `application/json`: the JSON envelope of the specification (the default).
    #[default]
    #[serde(rename = "application/json")]
    Json,
    /// `application/avro`: Avro binary in Avro's single-object encoding
    /// (`C3 01`, 8-byte CRC-64-AVRO schema fingerprint, body).
    #[serde(rename = "application/avro")]
    Avro,
}

impl ContentType {
    /// Both content types.
    pub const ALL: [ContentType; 2] = [ContentType::Json, ContentType::Avro];

    /// The MIME type, `"application/json"` or `"application/avro"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Avro => "application/avro",
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentType {
    type Err = ParseError;

    /// Accepts the MIME type case-insensitively, with surrounding blanks and with
    /// parameters (`application/json; charset=utf-8`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let essence = s.split(';').next().unwrap_or("").trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(essence))
            .ok_or_else(|| ParseError::new("content type", s))
    }
}

/// Whether a task is done.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// `incomplete`: the status of every new task.
    #[default]
    Incomplete,
    /// `complete`.
    Complete,
}

impl TaskStatus {
    /// Both statuses, in the order of the Avro enum's symbols.
    pub const ALL: [TaskStatus; 2] = [TaskStatus::Incomplete, TaskStatus::Complete];

    /// The wire name, `"incomplete"` or `"complete"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Incomplete => "incomplete",
            TaskStatus::Complete => "complete",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ParseError::new("task status", s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_round_trips_through_its_name_and_its_topic() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(EventType::from_topic(t.topic()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert_eq!(EventType::from_topic(topics::DLQ), None);
        assert!("task.archived".parse::<EventType>().is_err());
    }

    #[test]
    fn topics_are_in_the_order_of_event_types() {
        let from_types: Vec<_> = EventType::ALL.iter().map(|t| t.topic()).collect();
        assert_eq!(from_types, topics::ALL_TASK_TOPICS);
    }

    #[test]
    fn versions_parse_and_default_to_the_latest() {
        assert_eq!(EventVersion::default(), EventVersion::LATEST);
        assert_eq!(EventVersion::LATEST, EventVersion::V2);
        assert_eq!("v1".parse::<EventVersion>().unwrap(), EventVersion::V1);
        assert_eq!("v2".parse::<EventVersion>().unwrap(), EventVersion::V2);
        assert!("v3".parse::<EventVersion>().is_err());
        assert!("V1".parse::<EventVersion>().is_err());
    }

    #[test]
    fn content_types_parse_leniently_and_default_to_json() {
        assert_eq!(ContentType::default(), ContentType::Json);
        assert_eq!(
            "application/json".parse::<ContentType>().unwrap(),
            ContentType::Json
        );
        assert_eq!(
            " Application/JSON; charset=utf-8"
                .parse::<ContentType>()
                .unwrap(),
            ContentType::Json
        );
        assert_eq!(
            "application/avro".parse::<ContentType>().unwrap(),
            ContentType::Avro
        );
        assert!("text/plain".parse::<ContentType>().is_err());
        assert!("".parse::<ContentType>().is_err());
    }

    #[test]
    fn statuses_use_their_lowercase_names() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
