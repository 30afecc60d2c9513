//! Golden files: the encoding of a fixed event of every type, version and encoding
//! is committed under `schemas/golden/`, so that any change to the wire format fails
//! here. After an intended change (a new version), regenerate them with
//! `TODO_EVENTS_BLESS=1 cargo test -p todo-events --test golden` and review the diff.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{golden_event, repo_root};
use todo_events::{decode, decode_avro_with_reader, ContentType, EventType, EventVersion};

fn extension(ct: ContentType) -> &'static str {
    match ct {
        ContentType::Json => "json",
        ContentType::Avro => "avro",
    }
}

fn golden_path(t: EventType, v: EventVersion, ct: ContentType) -> PathBuf {
    repo_root()
        .join("schemas/golden")
        .join(format!("{t}.{v}.{}", extension(ct)))
}

fn read_golden(t: EventType, v: EventVersion, ct: ContentType) -> Vec<u8> {
    let path = golden_path(t, v, ct);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with TODO_EVENTS_BLESS=1 cargo test -p todo-events --test golden",
            path.display()
        )
    })
}

fn each_case() -> impl Iterator<Item = (EventType, EventVersion, ContentType)> {
    EventType::ALL.into_iter().flat_map(|t| {
        EventVersion::ALL
            .into_iter()
            .flat_map(move |v| ContentType::ALL.into_iter().map(move |ct| (t, v, ct)))
    })
}

#[test]
fn encoding_the_golden_events_gives_the_committed_bytes() {
    let bless = std::env::var_os("TODO_EVENTS_BLESS").is_some();
    for (t, v, ct) in each_case() {
        let bytes = golden_event(t, v).encode(ct).unwrap();
        if bless {
            std::fs::write(golden_path(t, v, ct), &bytes).unwrap();
            continue;
        }
        let committed = read_golden(t, v, ct);
        assert!(
            bytes == committed,
            "{t} {v} {ct}: the encoding changed; if that is intended, add a version instead \
             (or regenerate with TODO_EVENTS_BLESS=1)\n now:       {}\n committed: {}",
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&committed)
        );
    }
}

#[test]
fn the_committed_golden_files_decode_to_the_golden_events() {
    for (t, v, ct) in each_case() {
        let decoded = decode(&read_golden(t, v, ct), ct).unwrap();
        assert_eq!(decoded, golden_event(t, v), "{t} {v} {ct}");
    }
}

#[test]
fn a_v1_golden_record_decodes_with_the_v2_reader_and_a_v2_golden_with_the_v1_reader() {
    for t in EventType::ALL {
        let v1 = read_golden(t, EventVersion::V1, ContentType::Avro);
        let read_by_v2 = decode_avro_with_reader(&v1, EventVersion::V2).unwrap();
        // The fields v1 lacks take their defaults: null.
        assert_eq!(read_by_v2, golden_event(t, EventVersion::V1), "{t}");
        assert_eq!(read_by_v2.payload.task_version(), None);

        let v2 = read_golden(t, EventVersion::V2, ContentType::Avro);
        let read_by_v1 = decode_avro_with_reader(&v2, EventVersion::V1).unwrap();
        // The fields v1 lacks are dropped; the envelope still says what was written.
        let mut expected = golden_event(t, EventVersion::V2);
        expected.payload = expected.payload.as_in_version(EventVersion::V1);
        assert_eq!(read_by_v1, expected, "{t}");
        assert_eq!(read_by_v1.event_version, EventVersion::V2);
        assert_ne!(
            read_by_v1,
            golden_event(t, EventVersion::V2),
            "{t}: the v1 reader must not see task_version"
        );

        // And each reader reads its own version unchanged.
        for v in EventVersion::ALL {
            let own = read_golden(t, v, ContentType::Avro);
            assert_eq!(
                decode_avro_with_reader(&own, v).unwrap(),
                golden_event(t, v),
                "{t} {v}"
            );
        }
    }
}

#[test]
fn the_golden_json_is_the_envelope_of_the_spec_with_rfc3339_utc_timestamps() {
    let created = read_golden(EventType::Created, EventVersion::V1, ContentType::Json);
    let json: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    let mut expected = vec![
        "correlation_id",
        "event_id",
        "event_type",
        "event_version",
        "payload",
        "source",
        "timestamp",
    ];
    expected.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, expected);
    assert_eq!(json["timestamp"], "2026-02-07T10:20:30.654321Z");
    assert_eq!(json["payload"]["created_at"], "2026-02-07T10:00:00.123456Z");
    assert_eq!(json["event_version"], "v1");
    assert_eq!(json["source"], "todo-backend");
}

#[test]
fn the_golden_directory_holds_exactly_the_golden_files() {
    let dir = repo_root().join("schemas/golden");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = each_case()
        .map(|(t, v, ct)| format!("{t}.{v}.{}", extension(ct)))
        .collect();
    assert_eq!(present, expected);
}
