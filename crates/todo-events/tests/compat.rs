//! The compatibility gate: every version of every event type can read every other
//! version's data (checked with apache-avro's own schema compatibility checker),
//! the evolution rules hold between versions, and `check_new_schema` — what a
//! proposed v3 must pass — accepts a proper new version and refuses the rest.
//! (That golden v1 records decode with the v2 reader and vice versa is in
//! `golden.rs`.)

use apache_avro::schema_compatibility::SchemaCompatibility;
use serde_json::{json, Value};
use todo_events::schema::{self, check_compatible};
use todo_events::{check_new_schema, EventType};

#[test]
fn every_pair_of_versions_is_backward_and_forward_compatible_by_apache_avros_checker() {
    let mut pairs = 0;
    for t in EventType::ALL {
        let versions: Vec<_> = schema::versions_of(t).collect();
        assert_eq!(versions.len(), 2, "{t}");
        for older in &versions {
            for newer in versions.iter().filter(|n| n.version > older.version) {
                // Backward: the newer reader reads data of the older writer.
                SchemaCompatibility::can_read(older.schema(), newer.schema()).unwrap_or_else(|e| {
                    panic!("{} cannot read {}: {e}", newer.file_name, older.file_name)
                });
                // Forward: the older reader reads data of the newer writer.
                SchemaCompatibility::can_read(newer.schema(), older.schema()).unwrap_or_else(|e| {
                    panic!("{} cannot read {}: {e}", older.file_name, newer.file_name)
                });
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 4);
}

#[test]
fn every_later_version_follows_the_evolution_rules() {
    for t in EventType::ALL {
        let versions: Vec<_> = schema::versions_of(t).collect();
        for (i, older) in versions.iter().enumerate() {
            for newer in &versions[i + 1..] {
                check_compatible(older.avsc, newer.avsc).unwrap_or_else(|p| {
                    panic!("{} -> {}: {p:#?}", older.file_name, newer.file_name)
                });
            }
        }
    }
}

/// The newest `task.created` schema, as JSON to edit into proposals.
fn latest_created() -> Value {
    serde_json::from_str(schema::get(EventType::Created, todo_events::EventVersion::LATEST).avsc)
        .unwrap()
}

fn payload_fields(v: &mut Value) -> &mut Vec<Value> {
    v["fields"][6]["type"]["fields"].as_array_mut().unwrap()
}

fn check(v: &Value) -> Result<(), Vec<String>> {
    check_new_schema(&serde_json::to_string_pretty(v).unwrap())
}

fn assert_refused(v: &Value, needle: &str) {
    let problems = check(v).expect_err("the proposal must be refused");
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem mentioning {needle:?}, got {problems:#?}"
    );
}

#[test]
fn a_v3_that_adds_an_optional_field_with_a_default_passes() {
    let mut v3 = latest_created();
    payload_fields(&mut v3).push(json!({
        "name": "due_at", "type": ["null", "string"], "default": null,
        "doc": "Added in v3: when the task is due, RFC 3339 in UTC."
    }));
    assert_eq!(check(&v3), Ok(()));
}

#[test]
fn a_v3_that_adds_a_field_without_a_default_is_refused() {
    let mut v3 = latest_created();
    payload_fields(&mut v3).push(json!({"name": "priority", "type": "int"}));
    assert_refused(&v3, "not backward compatible");
    assert_refused(&v3, "added field payload.priority has no default");
}

#[test]
fn a_v3_that_removes_or_renames_a_field_is_refused() {
    let mut removed = latest_created();
    payload_fields(&mut removed).retain(|f| f["name"] != "description");
    // Avro itself would allow it (the old field has a default); our rules do not.
    assert_refused(&removed, "field payload.description removed");

    let mut renamed = latest_created();
    payload_fields(&mut renamed)[1]["name"] = json!("name");
    assert_refused(&renamed, "field payload.title removed (or renamed)");
}

#[test]
fn a_v3_that_retypes_a_field_is_refused() {
    let mut v3 = latest_created();
    payload_fields(&mut v3)[0]["type"] = json!("string"); // task_id: long -> string
    assert_refused(&v3, "payload.task_id retyped");
    assert_refused(&v3, "not backward compatible");

    let mut widened = latest_created();
    payload_fields(&mut widened)[2]["type"] = json!(["null", "string", "long"]);
    assert_refused(&widened, "payload.description retyped");
}

#[test]
fn a_v3_that_adds_a_status_symbol_is_refused_because_old_readers_break() {
    let mut v3 = latest_created();
    payload_fields(&mut v3)[3]["type"]["symbols"] = json!(["incomplete", "complete", "archived"]);
    assert_refused(&v3, "not forward compatible");
}

#[test]
fn a_v3_with_a_logical_type_is_refused() {
    let mut v3 = latest_created();
    payload_fields(&mut v3).push(json!({
        "name": "due_at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
        "default": null
    }));
    assert_refused(&v3, "logicalType");
}

#[test]
fn an_unchanged_schema_an_unknown_record_and_non_schemas_are_refused() {
    let mut doc_only = latest_created();
    doc_only["doc"] = json!("Same schema, new words.");
    assert_refused(&doc_only, "not a new version");

    let mut other = latest_created();
    other["name"] = json!("TaskArchived");
    assert_refused(&other, "is not an event schema");

    assert!(check_new_schema("{not json").unwrap_err()[0].contains("not JSON"));
    assert!(check_new_schema(r#""string""#).unwrap_err()[0].contains("not a record"));
    assert!(check_new_schema(r#"{"type":"record"}"#).unwrap_err()[0]
        .contains("not a valid Avro schema"));
}

#[test]
fn each_existing_schema_would_not_pass_as_a_new_version_of_another_type() {
    // task.deleted v2 proposed as a new task.created: a different record name.
    let mut deleted = serde_json::from_str::<Value>(
        schema::get(EventType::Deleted, todo_events::EventVersion::V2).avsc,
    )
    .unwrap();
    deleted["name"] = json!("TaskCreated");
    let problems = check(&deleted).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("payload.title removed")),
        "{problems:#?}"
    );
}
