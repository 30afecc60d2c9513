//! Fixtures shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use todo_events::{
    Changes, Event, EventType, EventVersion, Payload, TaskCompleted, TaskCreated, TaskDeleted,
    TaskStatus, TaskUpdated, SOURCE,
};
use uuid::Uuid;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The payload of the golden event of `t`, with every v2 field set; a mix of null
/// and non-null optional fields, and a non-ASCII title.
pub fn golden_payload(t: EventType) -> Payload {
    match t {
        EventType::Created => Payload::Created(TaskCreated {
            task_id: 42,
            title: "Buy groceries — café & crème".to_owned(),
            description: Some("Milk, eggs, flour".to_owned()),
            status: TaskStatus::Incomplete,
            created_at: at("2026-02-07T10:00:00.123456Z"),
            user_id: Some("user-7".to_owned()),
            task_version: Some(1),
        }),
        EventType::Updated => Payload::Updated(TaskUpdated {
            task_id: 42,
            title: "Buy groceries today".to_owned(),
            description: None,
            status: TaskStatus::Complete,
            updated_at: at("2026-02-07T10:05:00.5Z"),
            changes: Changes {
                title: true,
                description: true,
                status: false,
            },
            user_id: Some("user-7".to_owned()),
            task_version: Some(2),
        }),
        EventType::Deleted => Payload::Deleted(TaskDeleted {
            task_id: 42,
            deleted_at: at("2026-02-07T10:15:00Z"),
            user_id: None,
            task_version: Some(4),
        }),
        EventType::Completed => Payload::Completed(TaskCompleted {
            task_id: 9_007_199_254_740_993, // beyond a double's exact integers
            completed_at: at("2026-02-07T10:10:00.000001Z"),
            user_id: Some("user-7".to_owned()),
            task_version: Some(3),
        }),
    }
}

/// The golden event of `t` in `v`: fixed ids and timestamps, so its encodings never
/// change unless the wire format does.
pub fn golden_event(t: EventType, v: EventVersion) -> Event {
    let n = EventType::ALL.iter().position(|x| *x == t).unwrap() as u128;
    Event {
        event_id: Uuid::from_u128(0x0f1e2d3c_4b5a_4978_8695_a4b3c2d1e000 + n),
        event_version: v,
        timestamp: at("2026-02-07T10:20:30.654321Z"),
        correlation_id: Uuid::from_u128(0x7c2e8f40_1d3b_4a5c_9e6f_0a1b2c3d4e5f),
        source: SOURCE.to_owned(),
        payload: golden_payload(t).as_in_version(v),
    }
}

/// Every event type with every optional field set.
pub fn payloads_full() -> Vec<Payload> {
    EventType::ALL.into_iter().map(golden_payload).collect()
}

/// Every event type with every optional field null.
pub fn payloads_null() -> Vec<Payload> {
    payloads_full()
        .into_iter()
        .map(|p| match p {
            Payload::Created(mut c) => {
                c.description = None;
                c.user_id = None;
                c.task_version = None;
                Payload::Created(c)
            }
            Payload::Updated(mut u) => {
                u.description = None;
                u.user_id = None;
                u.task_version = None;
                Payload::Updated(u)
            }
            Payload::Deleted(mut d) => {
                d.user_id = None;
                d.task_version = None;
                Payload::Deleted(d)
            }
            Payload::Completed(mut c) => {
                c.user_id = None;
                c.task_version = None;
                Payload::Completed(c)
            }
        })
        .collect()
}

/// An event around `payload` in `version`, as a producer makes it.
pub fn event(payload: Payload, version: EventVersion) -> Event {
    Event::new(payload, version, Uuid::new_v4())
}
