//! The documentation stays true: docs/asyncapi.yaml names every topic and schema
//! file, and docs/events.md's JSON examples are valid events and its fingerprint
//! table is the schemas' own.

mod common;

use std::collections::BTreeSet;

use common::repo_root;
use serde_yaml::Value as Yaml;
use todo_events::{decode_record, headers, schema, topics, DecodeError, EventType};

fn asyncapi() -> Yaml {
    let text = std::fs::read_to_string(repo_root().join("docs/asyncapi.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("docs/asyncapi.yaml is YAML")
}

fn events_md() -> String {
    std::fs::read_to_string(repo_root().join("docs/events.md")).unwrap()
}

/// Every `$ref` string anywhere in the document.
fn refs(v: &Yaml, out: &mut Vec<String>) {
    match v {
        Yaml::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("$ref") {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_owned());
                    }
                }
                refs(v, out);
            }
        }
        Yaml::Sequence(s) => s.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Follows a local `#/a/b/c` reference.
fn resolve<'a>(doc: &'a Yaml, pointer: &str) -> Option<&'a Yaml> {
    pointer
        .strip_prefix("#/")?
        .split('/')
        .try_fold(doc, |node, key| node.get(key))
}

#[test]
fn asyncapi_is_version_3_and_has_a_channel_for_every_topic() {
    let doc = asyncapi();
    assert!(doc["asyncapi"].as_str().unwrap().starts_with("3."));
    let addresses: BTreeSet<&str> = doc["channels"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|c| c["address"].as_str())
        .collect();
    for topic in topics::ALL_TASK_TOPICS.iter().chain([&topics::DLQ]) {
        assert!(addresses.contains(topic), "no channel for {topic}");
    }
}

#[test]
fn asyncapi_references_every_schema_file_on_its_types_channel() {
    let doc = asyncapi();
    let channels = doc["channels"].as_mapping().unwrap();
    for t in EventType::ALL {
        let channel = channels
            .values()
            .find(|c| c["address"].as_str() == Some(t.topic()))
            .unwrap();
        // The schema files of the messages this channel carries.
        let mut files = Vec::new();
        for m in channel["messages"].as_mapping().unwrap().values() {
            let message = resolve(&doc, m["$ref"].as_str().unwrap()).expect("message ref resolves");
            assert_eq!(message["name"].as_str(), Some(t.as_str()));
            assert!(message["payload"]["schemaFormat"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.apache.avro"));
            files.push(
                message["payload"]["schema"]["$ref"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        files.sort();
        let expected: Vec<String> = schema::versions_of(t)
            .map(|s| format!("../schemas/{}", s.file_name))
            .collect();
        assert_eq!(files, expected, "{t}");
        for f in files {
            assert!(
                repo_root().join("docs").join(&f).is_file(),
                "{f} does not exist"
            );
        }
    }
}

#[test]
fn every_local_reference_in_asyncapi_resolves() {
    let doc = asyncapi();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all.iter().filter(|r| r.starts_with('#')) {
        assert!(resolve(&doc, r).is_some(), "{r} does not resolve");
    }
}

#[test]
fn asyncapi_declares_every_header() {
    let doc = asyncapi();
    let event_headers = &doc["components"]["schemas"]["eventHeaders"]["properties"];
    for h in [
        headers::CONTENT_TYPE,
        headers::EVENT_TYPE,
        headers::EVENT_VERSION,
        headers::EVENT_ID,
        headers::CORRELATION_ID,
        headers::TRACEPARENT,
        headers::REPLAYED_FROM,
    ] {
        assert!(event_headers.get(h).is_some(), "{h}");
    }
    let dlq = &doc["components"]["schemas"]["deadLetterHeaders"]["allOf"][1]["properties"];
    for h in headers::ALL_DLQ {
        assert!(dlq.get(h).is_some(), "{h}");
    }
    let classes: Vec<&str> = dlq[headers::DLQ_ERROR_CLASS]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(classes, DecodeError::CLASSES);
}

/// The ```json blocks of a Markdown text.
fn json_blocks(md: &str) -> Vec<&str> {
    md.split("```json\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").unwrap()])
        .collect()
}

#[test]
fn every_json_example_in_events_md_is_a_valid_event_and_every_type_has_one() {
    let md = events_md();
    let mut types = BTreeSet::new();
    for block in json_blocks(&md) {
        let value: serde_json::Value = serde_json::from_str(block).unwrap();
        let t: EventType = value["event_type"].as_str().unwrap().parse().unwrap();
        let event = decode_record(t.topic(), None, block.as_bytes())
            .unwrap_or_else(|e| panic!("example of {t} does not decode: {e}\n{block}"));
        // Written as the encoder writes it, up to whitespace and digits of time.
        let reencoded: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            reencoded.as_object().unwrap().keys().collect::<Vec<_>>(),
            value.as_object().unwrap().keys().collect::<Vec<_>>()
        );
        assert_eq!(
            reencoded["payload"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<BTreeSet<_>>(),
            value["payload"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<BTreeSet<_>>(),
            "{t} {}: the example has other fields than the encoder writes",
            event.event_version
        );
        types.insert(t);
    }
    assert_eq!(types.len(), 4, "an example of every event type");
}

#[test]
fn events_md_lists_the_real_fingerprints_topics_headers_and_error_classes() {
    let md = events_md();
    for s in schema::all() {
        let hex: String = s.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
        let row = format!("| `{}` | `{hex}` |", s.file_name);
        assert!(md.contains(&row), "events.md lacks the row {row}");
    }
    for name in topics::ALL_TASK_TOPICS
        .iter()
        .chain([&topics::DLQ])
        .chain(&headers::ALL_DLQ)
        .chain(&[
            headers::CONTENT_TYPE,
            headers::EVENT_TYPE,
            headers::EVENT_VERSION,
            headers::EVENT_ID,
            headers::CORRELATION_ID,
            headers::TRACEPARENT,
            headers::REPLAYED_FROM,
        ])
        .chain(&DecodeError::CLASSES)
    {
        assert!(
            md.contains(&format!("`{name}`")),
            "events.md does not mention `{name}`"
        );
    }
}

/// The field names of an Avro record schema (JSON), nested records as `a.b`.
fn avro_fields(record: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    for f in record["fields"].as_array().unwrap() {
        let name = format!("{prefix}{}", f["name"].as_str().unwrap());
        if f["type"]["type"] == "record" {
            avro_fields(&f["type"], &format!("{name}."), out);
        }
        out.insert(name);
    }
}

/// The keys of a JSON event, nested objects as `a.b`.
fn json_fields(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in value.as_object().unwrap() {
        let name = format!("{prefix}{k}");
        if v.is_object() {
            json_fields(v, &format!("{name}."), out);
        }
        out.insert(name);
    }
}

#[test]
fn every_asyncapi_payload_is_the_avro_schema_todo_events_embeds_and_the_json_encoding_has_its_fields(
) {
    let doc = asyncapi();
    let mut seen = 0;
    for (id, message) in doc["components"]["messages"].as_mapping().unwrap() {
        let Some(file) = message["payload"]["schema"]["$ref"].as_str() else {
            continue;
        };
        let id = id.as_str().unwrap();
        let t: EventType = message["name"].as_str().unwrap().parse().unwrap();
        let version = id.rsplit_once('V').unwrap().1;
        let info = schema::versions_of(t)
            .find(|s| s.version.as_str() == format!("v{version}"))
            .unwrap_or_else(|| panic!("{id}: todo-events has no {t} v{version}"));
        // The document's payload is the very file the codec compiles in.
        let text = std::fs::read_to_string(repo_root().join("docs").join(file)).unwrap();
        assert_eq!(text, info.avsc, "{id}: {file}");

        // And what the JSON encoder writes has exactly that schema's fields.
        let avsc: serde_json::Value = serde_json::from_str(info.avsc).unwrap();
        let mut expected = BTreeSet::new();
        avro_fields(&avsc, "", &mut expected);
        let event = common::golden_event(t, info.version);
        let mut written = BTreeSet::new();
        json_fields(&serde_json::to_value(&event).unwrap(), "", &mut written);
        assert_eq!(written, expected, "{id}: JSON encoding vs {file}");
        seen += 1;
    }
    assert_eq!(seen, schema::all().len());
}
