//! Round trips of every field of every event type, in both versions and both
//! encodings, with optional fields set and null; the JSON shape of each version;
//! headers and keys; and the typed errors of the decoders.

mod common;

use common::{event, golden_event, payloads_full, payloads_null};
use serde_json::{json, Value};
use todo_events::{
    decode, decode_record, decode_record_for, headers, topics, ContentType, DecodeError, Event,
    EventType, EventVersion, Payload, ValidationError,
};
use uuid::Uuid;

#[test]
fn every_field_survives_a_round_trip_in_every_version_and_encoding() {
    for payload in payloads_full().into_iter().chain(payloads_null()) {
        for version in EventVersion::ALL {
            for ct in ContentType::ALL {
                let original = event(payload.clone(), version);
                let bytes = original.encode(ct).unwrap();
                let decoded = decode(&bytes, ct).unwrap();
                assert_eq!(
                    decoded,
                    original,
                    "{} {version} {ct}",
                    original.event_type()
                );
            }
        }
    }
}

#[test]
fn v2_keeps_task_version_and_user_id_and_v1_drops_what_it_does_not_have() {
    for payload in payloads_full() {
        let v2 = event(payload.clone(), EventVersion::V2);
        assert_eq!(v2.payload, payload, "v2 carries every field");
        assert!(v2.payload.task_version().is_some());
        assert!(v2.payload.user_id().is_some() || v2.event_type() == EventType::Deleted);

        let v1 = event(payload.clone(), EventVersion::V1);
        assert_eq!(v1.payload.task_version(), None);
        let keeps_user_id = v1.event_type() == EventType::Created;
        assert_eq!(v1.payload.user_id().is_some(), keeps_user_id);

        // A hand-built v1 event with v2 fields set loses them on the wire.
        let mut sneaky = v1.clone();
        sneaky.payload = payload.clone();
        for ct in ContentType::ALL {
            let decoded = decode(&sneaky.encode(ct).unwrap(), ct).unwrap();
            assert_eq!(decoded, v1, "{ct}");
        }
    }
}

#[test]
fn timestamps_keep_every_sub_second_digit_they_have() {
    let mut e = golden_event(EventType::Completed, EventVersion::V2);
    e.timestamp = common::at("2026-02-07T10:20:30.123456789Z");
    for ct in ContentType::ALL {
        assert_eq!(decode(&e.encode(ct).unwrap(), ct).unwrap(), e, "{ct}");
    }
}

#[test]
fn new_events_get_a_v7_id_a_microsecond_timestamp_and_our_source() {
    let e = event(payloads_full().remove(0), EventVersion::V2);
    assert_eq!(e.event_id.get_version_num(), 7);
    assert_eq!(e.timestamp.timestamp_subsec_nanos() % 1000, 0);
    assert_eq!(e.source, "todo-backend");
    let other = event(payloads_full().remove(0), EventVersion::V2);
    assert_ne!(e.event_id, other.event_id);
}

#[test]
fn event_ids_rise_in_the_order_events_are_made() {
    // Many within one millisecond: the counter keeps them ordered.
    let ids: Vec<_> = (0..10_000)
        .map(|_| event(payloads_full().remove(0), EventVersion::V2).event_id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
}

fn json_of(e: &Event) -> Value {
    serde_json::from_slice(&e.encode(ContentType::Json).unwrap()).unwrap()
}

#[test]
fn v1_json_is_exactly_the_spec_and_v2_json_adds_nullable_fields() {
    let expected_v1_payload_keys = [
        (
            EventType::Created,
            vec![
                "created_at",
                "description",
                "status",
                "task_id",
                "title",
                "user_id",
            ],
        ),
        (
            EventType::Updated,
            vec![
                "changes",
                "description",
                "status",
                "task_id",
                "title",
                "updated_at",
            ],
        ),
        (EventType::Deleted, vec!["deleted_at", "task_id"]),
        (EventType::Completed, vec!["completed_at", "task_id"]),
    ];
    for ((t, v1_keys), payload) in expected_v1_payload_keys.into_iter().zip(payloads_null()) {
        assert_eq!(payload.event_type(), t);
        let keys = |v: &Value| {
            let mut k: Vec<String> = v["payload"].as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let v1 = json_of(&event(payload.clone(), EventVersion::V1));
        assert_eq!(keys(&v1), v1_keys, "{t} v1");
        assert_eq!(v1["event_version"], "v1");
        assert_eq!(v1["event_type"], t.as_str());

        let v2 = json_of(&event(payload.clone(), EventVersion::V2));
        let mut v2_keys: Vec<&str> = v1_keys.clone();
        if !v2_keys.contains(&"user_id") {
            v2_keys.push("user_id");
        }
        v2_keys.push("task_version");
        v2_keys.sort();
        assert_eq!(keys(&v2), v2_keys, "{t} v2");
        assert_eq!(
            v2["payload"]["task_version"],
            Value::Null,
            "{t}: null, not absent"
        );
        assert_eq!(
            v2["payload"]["user_id"],
            Value::Null,
            "{t}: null, not absent"
        );
    }
}

#[test]
fn the_serde_form_of_an_event_is_its_json_wire_form() {
    let e = golden_event(EventType::Updated, EventVersion::V2);
    assert_eq!(serde_json::to_value(&e).unwrap(), json_of(&e));
    let back: Event = serde_json::from_value(json_of(&e)).unwrap();
    assert_eq!(back, e);
}

/// A v1 task.created as the spec's Python producer would send it, with optional
/// fields absent rather than null, and an extra field a later version might add.
fn minimal_v1_created() -> Value {
    json!({
        "event_id": "6f1c1a52-5f0e-4a77-9b1d-2f7c1c9e8a10",
        "event_type": "task.created",
        "event_version": "v1",
        "timestamp": "2026-02-07T10:00:00+00:00",
        "correlation_id": "0b6c2e1a-3a43-4f0e-8f54-8d0b2f7a9c11",
        "source": "todo-backend",
        "payload": {
            "task_id": 7,
            "title": "Water the plants",
            "status": "incomplete",
            "created_at": "2026-02-07T11:00:00+01:00",
            "priority": "high"
        }
    })
}

fn decode_json(v: &Value) -> Result<Event, DecodeError> {
    decode(&serde_json::to_vec(v).unwrap(), ContentType::Json)
}

#[test]
fn json_decoding_accepts_absent_optional_fields_other_offsets_and_unknown_fields() {
    let e = decode_json(&minimal_v1_created()).unwrap();
    let Payload::Created(c) = &e.payload else {
        panic!("not a task.created: {e:?}")
    };
    assert_eq!(c.description, None);
    assert_eq!(c.user_id, None);
    assert_eq!(c.task_version, None);
    assert_eq!(c.created_at, common::at("2026-02-07T10:00:00Z"));
    assert_eq!(e.event_version, EventVersion::V1);

    // A v1 event ignores v2-only fields, as a v1 Avro reader would.
    let mut with_v2_fields = minimal_v1_created();
    with_v2_fields["payload"]["task_version"] = json!(5);
    assert_eq!(
        decode_json(&with_v2_fields).unwrap().payload.task_version(),
        None
    );
    with_v2_fields["event_version"] = json!("v2");
    assert_eq!(
        decode_json(&with_v2_fields).unwrap().payload.task_version(),
        Some(5)
    );
}

#[test]
fn json_decoding_rejects_unknown_types_and_versions_and_missing_or_mistyped_fields() {
    let mut v = minimal_v1_created();
    v["event_type"] = json!("task.archived");
    assert!(
        matches!(decode_json(&v), Err(DecodeError::UnknownEventType(t)) if t == "task.archived")
    );

    let mut v = minimal_v1_created();
    v["event_version"] = json!("v3");
    assert!(matches!(decode_json(&v), Err(DecodeError::UnknownEventVersion(s)) if s == "v3"));

    let mut v = minimal_v1_created();
    v["payload"].as_object_mut().unwrap().remove("title");
    assert!(matches!(decode_json(&v), Err(DecodeError::MalformedJson(m)) if m.contains("title")));

    let mut v = minimal_v1_created();
    v.as_object_mut().unwrap().remove("correlation_id");
    assert!(
        matches!(decode_json(&v), Err(DecodeError::MalformedJson(m)) if m.contains("correlation_id"))
    );

    let mut v = minimal_v1_created();
    v["payload"]["task_id"] = json!("7");
    assert!(matches!(
        decode_json(&v),
        Err(DecodeError::MalformedJson(_))
    ));

    let mut v = minimal_v1_created();
    v["payload"]["status"] = json!("done");
    assert!(matches!(
        decode_json(&v),
        Err(DecodeError::MalformedJson(_))
    ));

    let mut v = minimal_v1_created();
    v["event_id"] = json!("not-a-uuid");
    assert!(matches!(
        decode_json(&v),
        Err(DecodeError::Invalid(ValidationError::MalformedUuid {
            field: "event_id",
            ..
        }))
    ));

    let mut v = minimal_v1_created();
    v["timestamp"] = json!("2026-02-07T10:00:00"); // no offset: not RFC 3339
    assert!(matches!(
        decode_json(&v),
        Err(DecodeError::Invalid(ValidationError::MalformedTimestamp {
            field: "timestamp",
            ..
        }))
    ));

    for garbage in [&b""[..], b"null", b"[]", b"{", b"\xff\xfe"] {
        assert!(matches!(
            decode(garbage, ContentType::Json),
            Err(DecodeError::MalformedJson(_))
        ));
    }
}

#[test]
fn avro_decoding_reports_marker_truncation_fingerprint_and_body_errors() {
    let good = golden_event(EventType::Created, EventVersion::V2)
        .encode(ContentType::Avro)
        .unwrap();
    let err = |b: &[u8]| decode(b, ContentType::Avro).unwrap_err();

    assert_eq!(err(&[]), DecodeError::Truncated { len: 0 });
    assert_eq!(err(&good[..9]), DecodeError::Truncated { len: 9 });
    assert_eq!(
        err(b"{\"event_id\": 1}"),
        DecodeError::BadMarker {
            found: b"{\"".to_vec()
        }
    );
    assert_eq!(err(&[0xC3]), DecodeError::Truncated { len: 1 });
    assert_eq!(err(&[0x00]), DecodeError::BadMarker { found: vec![0] });

    let mut unknown = good.clone();
    unknown[2] ^= 0xff;
    assert!(matches!(err(&unknown), DecodeError::UnknownFingerprint(_)));

    assert!(matches!(
        err(&good[..good.len() - 3]),
        DecodeError::MalformedAvro(_)
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(err(&trailing), DecodeError::MalformedAvro(m) if m.contains("trailing")));

    // A body written with one type's schema behind another's fingerprint.
    let completed = golden_event(EventType::Completed, EventVersion::V2)
        .encode(ContentType::Avro)
        .unwrap();
    let mut swapped = good[..10].to_vec();
    swapped.extend_from_slice(&completed[10..]);
    assert!(matches!(err(&swapped), DecodeError::MalformedAvro(_)));
}

#[test]
fn headers_name_the_encoding_type_version_and_ids() {
    let e = golden_event(EventType::Deleted, EventVersion::V1);
    let h = e.headers(ContentType::Avro);
    let get = |name: &str| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    assert_eq!(get(headers::CONTENT_TYPE), Some("application/avro"));
    assert_eq!(get(headers::EVENT_TYPE), Some("task.deleted"));
    assert_eq!(get(headers::EVENT_VERSION), Some("v1"));
    assert_eq!(
        get(headers::EVENT_ID),
        Some(e.event_id.to_string().as_str())
    );
    assert_eq!(
        get(headers::CORRELATION_ID),
        Some(e.correlation_id.to_string().as_str())
    );
    // CloudEvents binary mode.
    assert_eq!(get(headers::CE_SPECVERSION), Some("1.0"));
    assert_eq!(get(headers::CE_ID), Some(e.event_id.to_string().as_str()));
    assert_eq!(get(headers::CE_TYPE), Some("task.deleted"));
    assert_eq!(get(headers::CE_SOURCE), Some(e.source.as_str()));
    let time = chrono::DateTime::parse_from_rfc3339(get(headers::CE_TIME).unwrap()).unwrap();
    assert_eq!(time, e.timestamp);
    assert_eq!(h.len(), 10);
    assert_eq!(e.key(), "42");
    assert_eq!(e.topic(), topics::TASK_DELETED);
    assert!(headers::ALL_DLQ.iter().all(|h| h.starts_with("dlq.")));
}

#[test]
fn decode_record_reads_both_encodings_from_the_content_type_header() {
    for t in EventType::ALL {
        let e = golden_event(t, EventVersion::V2);
        let json = e.encode(ContentType::Json).unwrap();
        let avro = e.encode(ContentType::Avro).unwrap();
        assert_eq!(decode_record(t.topic(), None, &json).unwrap(), e);
        assert_eq!(
            decode_record(t.topic(), Some("application/json"), &json).unwrap(),
            e
        );
        assert_eq!(
            decode_record(t.topic(), Some("application/avro"), &avro).unwrap(),
            e
        );
        assert_eq!(
            decode_record_for("staging.tasks", t, Some("application/avro"), &avro).unwrap(),
            e
        );
    }
}

#[test]
fn decode_record_rejects_the_wrong_topic_content_type_and_invalid_events() {
    let e = golden_event(EventType::Created, EventVersion::V2);
    let json = e.encode(ContentType::Json).unwrap();
    let avro = e.encode(ContentType::Avro).unwrap();

    let wrong_topic = decode_record(topics::TASK_DELETED, None, &json).unwrap_err();
    assert_eq!(
        wrong_topic,
        DecodeError::TopicMismatch {
            topic: topics::TASK_DELETED.to_owned(),
            event_type: EventType::Created
        }
    );
    assert_eq!(wrong_topic.class(), "topic_mismatch");
    assert!(matches!(
        decode_record(topics::DLQ, None, &json),
        Err(DecodeError::TopicMismatch { .. })
    ));
    assert!(matches!(
        decode_record_for("x", EventType::Updated, None, &json),
        Err(DecodeError::TopicMismatch { .. })
    ));

    let unsupported = decode_record(topics::TASK_CREATED, Some("text/csv"), &json).unwrap_err();
    assert_eq!(
        unsupported,
        DecodeError::UnsupportedContentType("text/csv".to_owned())
    );
    assert_eq!(unsupported.class(), "unsupported_content_type");

    // Avro bytes labelled JSON, and the other way round.
    assert_eq!(
        decode_record(topics::TASK_CREATED, Some("application/json"), &avro)
            .unwrap_err()
            .class(),
        "malformed_json"
    );
    assert_eq!(
        decode_record(topics::TASK_CREATED, Some("application/avro"), &json)
            .unwrap_err()
            .class(),
        "bad_marker"
    );

    // Decodes fine, but breaks the contract: validated.
    let mut invalid = e.clone();
    invalid.payload = match invalid.payload {
        Payload::Created(mut c) => {
            c.title = "   ".to_owned();
            Payload::Created(c)
        }
        other => other,
    };
    for ct in ContentType::ALL {
        let bytes = invalid.encode_unvalidated(ct).unwrap();
        assert!(decode(&bytes, ct).is_ok(), "decode alone does not validate");
        let err = decode_record(topics::TASK_CREATED, Some(ct.as_str()), &bytes).unwrap_err();
        assert_eq!(err, DecodeError::Invalid(ValidationError::EmptyTitle));
        assert_eq!(err.class(), "invalid_event");
    }
}

#[test]
fn validation_rejects_what_the_types_allow_but_the_contract_does_not() {
    let base = golden_event(EventType::Updated, EventVersion::V2);
    assert_eq!(base.validate(), Ok(()));
    let with = |f: &dyn Fn(&mut Event)| {
        let mut e = base.clone();
        f(&mut e);
        e.validate()
    };
    assert_eq!(
        with(&|e| e.event_id = Uuid::nil()),
        Err(ValidationError::NilUuid { field: "event_id" })
    );
    assert_eq!(
        with(&|e| e.correlation_id = Uuid::nil()),
        Err(ValidationError::NilUuid {
            field: "correlation_id"
        })
    );
    assert_eq!(
        with(&|e| e.source.clear()),
        Err(ValidationError::EmptySource)
    );
    let set_payload = |f: fn(&mut todo_events::TaskUpdated)| {
        move |e: &mut Event| {
            if let Payload::Updated(u) = &mut e.payload {
                f(u)
            }
        }
    };
    assert_eq!(
        with(&set_payload(|u| u.task_id = 0)),
        Err(ValidationError::NonPositiveTaskId(0))
    );
    assert_eq!(
        with(&set_payload(|u| u.task_id = -3)),
        Err(ValidationError::NonPositiveTaskId(-3))
    );
    assert_eq!(
        with(&set_payload(|u| u.task_version = Some(-1))),
        Err(ValidationError::NegativeTaskVersion(-1))
    );
    assert_eq!(
        with(&set_payload(|u| u.title = String::new())),
        Err(ValidationError::EmptyTitle)
    );
    // encode refuses invalid events, so producers cannot publish poison.
    let mut bad = base.clone();
    bad.event_id = Uuid::nil();
    assert!(matches!(
        bad.encode(ContentType::Json),
        Err(todo_events::EncodeError::Invalid(_))
    ));
}

#[test]
fn every_error_class_is_short_stable_and_listed() {
    let samples = [
        DecodeError::Truncated { len: 0 },
        DecodeError::BadMarker { found: vec![] },
        DecodeError::UnknownFingerprint([0; 8]),
        DecodeError::MalformedAvro(String::new()),
        DecodeError::MalformedJson(String::new()),
        DecodeError::UnknownEventType(String::new()),
        DecodeError::UnknownEventVersion(String::new()),
        DecodeError::TopicMismatch {
            topic: String::new(),
            event_type: EventType::Created,
        },
        DecodeError::Invalid(ValidationError::EmptyTitle),
        DecodeError::UnsupportedContentType(String::new()),
    ];
    let classes: Vec<_> = samples.iter().map(DecodeError::class).collect();
    assert_eq!(classes, DecodeError::CLASSES);
    for c in classes {
        assert!(
            c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
            "{c}"
        );
    }
}
