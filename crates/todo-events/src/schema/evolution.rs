//! The evolution gate: whether a new schema version may follow the existing
//! ones.

use apache_avro::schema::{RecordSchema, Schema, SchemaKind};
use apache_avro::schema_compatibility::SchemaCompatibility;
use serde_json::Value as Json;

use super::canonical::fingerprint;
use super::registry::versions_of;
use super::NAMESPACE;
use crate::kinds::EventType;

/// Checks that `new_avsc` may follow `old_avsc` as a later version of the same
/// event: each can read the other's data (backward and forward compatibility, by
/// `apache-avro`'s own schema compatibility checker), and the evolution rules hold:
/// no field removed, renamed or retyped, and every added field has a default.
/// Returns every problem found.
pub fn check_compatible(old_avsc: &str, new_avsc: &str) -> Result<(), Vec<String>> {
    let old = Schema::parse_str(old_avsc).map_err(|e| vec![format!("old schema: {e}")])?;
    let new = Schema::parse_str(new_avsc).map_err(|e| vec![format!("new schema: {e}")])?;
    let problems = compatibility_problems(&old, &new);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn compatibility_problems(old: &Schema, new: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = SchemaCompatibility::can_read(old, new) {
        problems.push(format!(
            "not backward compatible (new reader, old data): {}",
            chain(&e)
        ));
    }
    if let Err(e) = SchemaCompatibility::can_read(new, old) {
        problems.push(format!(
            "not forward compatible (old reader, new data): {}",
            chain(&e)
        ));
    }
    evolution_problems(old, new, "", &mut problems);
    problems
}

/// An error and its causes, outermost first: the checker nests the field path.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn evolution_problems(old: &Schema, new: &Schema, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() {
        "the top level"
    } else {
        path
    };
    match (old, new) {
        (Schema::Record(o), Schema::Record(n)) => record_problems(o, n, path, problems),
        (Schema::Enum(o), Schema::Enum(n)) => {
            if o.name != n.name {
                problems.push(format!(
                    "enum at {at} renamed from {} to {}",
                    o.name, n.name
                ));
            }
            for s in &o.symbols {
                if !n.symbols.contains(s) {
                    problems.push(format!("enum symbol {s:?} removed at {at}"));
                }
            }
        }
        (Schema::Union(o), Schema::Union(n)) => {
            let o: Vec<_> = o.variants().iter().map(Schema::canonical_form).collect();
            let n: Vec<_> = n.variants().iter().map(Schema::canonical_form).collect();
            if o != n {
                problems.push(format!("{at} retyped from {o:?} to {n:?}"));
            }
        }
        (o, n) => {
            if SchemaKind::from(o) != SchemaKind::from(n)
                || o.canonical_form() != n.canonical_form()
            {
                problems.push(format!(
                    "{at} retyped from {} to {}",
                    o.canonical_form(),
                    n.canonical_form()
                ));
            }
        }
    }
}

fn record_problems(o: &RecordSchema, n: &RecordSchema, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() {
        "the top level"
    } else {
        path
    };
    if o.name != n.name {
        problems.push(format!(
            "record at {at} renamed from {} to {}",
            o.name, n.name
        ));
    }
    for of in &o.fields {
        let field_path = if path.is_empty() {
            of.name.clone()
        } else {
            format!("{path}.{}", of.name)
        };
        match n.fields.iter().find(|nf| nf.name == of.name) {
            None => problems.push(format!("field {field_path} removed (or renamed)")),
            Some(nf) => evolution_problems(&of.schema, &nf.schema, &field_path, problems),
        }
    }
    for nf in &n.fields {
        if !o.fields.iter().any(|of| of.name == nf.name) && nf.default.is_none() {
            let field_path = if path.is_empty() {
                nf.name.clone()
            } else {
                format!("{path}.{}", nf.name)
            };
            problems.push(format!(
                "added field {field_path} has no default (new fields must be optional with a default)"
            ));
        }
    }
}

fn logical_type_paths(json: &Json, path: &str, found: &mut Vec<String>) {
    match json {
        Json::Object(obj) => {
            if obj.contains_key("logicalType") {
                found.push(if path.is_empty() {
                    "/".to_owned()
                } else {
                    path.to_owned()
                });
            }
            for (k, v) in obj {
                logical_type_paths(v, &format!("{path}/{k}"), found);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                logical_type_paths(v, &format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Checks a proposed new version of an event schema (the text of a `.avsc` file)
/// against every existing version of its event type, which it finds by the record's
/// full name (`todo.events.TaskCreated`, ...). It must
///
/// * parse as an Avro record schema of one of the four event types;
/// * use no logical types (their fingerprints differ between Avro implementations,
///   see the module documentation), so its fingerprint is the same everywhere;
/// * differ from every existing version (a changed canonical form);
/// * be backward and forward compatible with every existing version and follow the
///   evolution rules (see [`check_compatible`]).
///
/// Returns every problem found, each a sentence. `todoctl schema check FILE` prints
/// them.
pub fn check_new_schema(new_avsc: &str) -> Result<(), Vec<String>> {
    let json: Json = match serde_json::from_str(new_avsc) {
        Ok(j) => j,
        Err(e) => return Err(vec![format!("not JSON: {e}")]),
    };
    let mut problems = Vec::new();
    let mut logical = Vec::new();
    logical_type_paths(&json, "", &mut logical);
    for p in logical {
        problems.push(format!(
            "logicalType at {p}: event schemas use plain types only (the apache-avro crate's fingerprint differs from other implementations' for logical types)"
        ));
    }
    let new = match Schema::parse_str(new_avsc) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("not a valid Avro schema: {e}"));
            return Err(problems);
        }
    };
    let Schema::Record(record) = &new else {
        problems.push(
            "not a record schema: an event schema is a record of the whole envelope".to_owned(),
        );
        return Err(problems);
    };
    let fullname = record.name.fullname(None);
    let Some(event_type) = EventType::ALL
        .into_iter()
        .find(|t| format!("{NAMESPACE}.{}", t.avro_record_name()) == fullname)
    else {
        let known: Vec<_> = EventType::ALL
            .iter()
            .map(|t| format!("{NAMESPACE}.{}", t.avro_record_name()))
            .collect();
        problems.push(format!(
            "record {fullname} is not an event schema (expected one of {})",
            known.join(", ")
        ));
        return Err(problems);
    };
    match fingerprint(new_avsc) {
        Ok(fp) => {
            for existing in versions_of(event_type) {
                if existing.fingerprint() == fp {
                    problems.push(format!(
                        "same canonical form as {}: not a new version",
                        existing.file_name
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("no canonical form: {e}")),
    }
    for existing in versions_of(event_type) {
        for p in compatibility_problems(existing.schema(), &new) {
            problems.push(format!("against {}: {p}", existing.file_name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
