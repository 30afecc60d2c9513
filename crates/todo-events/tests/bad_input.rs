//! Bad input never panics: random and mutated bytes fed to both decoders always
//! give a typed error (or, for a mutation that happens to keep a valid record, an
//! event).

mod common;

use common::golden_event;
use proptest::prelude::*;
use todo_events::schema;
use todo_events::{decode, decode_record, ContentType, EventType, EventVersion};

fn golden_records() -> Vec<(EventType, ContentType, Vec<u8>)> {
    let mut out = Vec::new();
    for t in EventType::ALL {
        for v in EventVersion::ALL {
            for ct in ContentType::ALL {
                out.push((t, ct, golden_event(t, v).encode(ct).unwrap()));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Remove { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match *m {
        Mutation::Flip { at, mask } => {
            if let Some(b) = bytes.get_mut(at % len) {
                *b ^= mask
            }
        }
        Mutation::Set { at, byte } => {
            if let Some(b) = bytes.get_mut(at % len) {
                *b = byte
            }
        }
        Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Mutation::Remove { at } => {
            if !bytes.is_empty() {
                bytes.remove(at % len);
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at % len),
    }
}

/// Every decoder and entry point on the same bytes; only returning matters.
fn decode_everything(bytes: &[u8]) {
    for ct in ContentType::ALL {
        let _ = decode(bytes, ct);
        let _ = decode_record(EventType::Created.topic(), Some(ct.as_str()), bytes);
    }
    for v in EventVersion::ALL {
        let _ = todo_events::decode_avro_with_reader(bytes, v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // Failures print their minimal input; no regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_known_fingerprint_never_panic(
        schema_index in 0usize..8,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        // Gets past the header checks, so the Avro body decoder itself is exercised.
        let mut bytes = schema::all()[schema_index].single_object_header().to_vec();
        bytes.extend_from_slice(&body);
        decode_everything(&bytes);
        prop_assert!(decode(&bytes, ContentType::Avro).is_err() || body.len() > 20);
    }

    #[test]
    fn mutated_records_never_panic(
        record in 0usize..16,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let (t, ct, mut bytes) = golden_records().swap_remove(record);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        decode_everything(&bytes);
        // Whatever still decodes must still be a well-formed event of some type.
        if let Ok(e) = decode_record(t.topic(), Some(ct.as_str()), &bytes) {
            prop_assert_eq!(e.event_type(), t);
        }
    }

    #[test]
    fn random_json_values_in_the_envelope_never_panic(
        record in 0usize..8,
        field in prop_oneof![
            Just("event_id"), Just("event_type"), Just("event_version"), Just("timestamp"),
            Just("correlation_id"), Just("source"), Just("payload"),
        ],
        replacement in prop_oneof![
            Just(serde_json::Value::Null),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            Just(serde_json::json!({})),
            Just(serde_json::json!([1, "a"])),
        ],
    ) {
        let t = EventType::ALL[record % 4];
        let v = EventVersion::ALL[record / 4];
        let mut json = serde_json::to_value(golden_event(t, v)).unwrap();
        let any_string_will_do = field == "source" && replacement.is_string();
        json[field] = replacement;
        let bytes = serde_json::to_vec(&json).unwrap();
        decode_everything(&bytes);
        if !any_string_will_do {
            prop_assert!(decode(&bytes, ContentType::Json).is_err());
        }
    }
}

#[test]
fn every_proper_prefix_of_a_record_is_rejected() {
    for (t, ct, bytes) in golden_records() {
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut], ct);
            assert!(
                result.is_err(),
                "{t} {ct}: the first {cut} bytes decoded: {result:?}"
            );
        }
    }
}
