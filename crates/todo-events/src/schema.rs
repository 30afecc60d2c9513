//! The Avro schemas of the events, embedded from the `.avsc` files under `schemas/`
//! at the repository root (the source of truth), their fingerprints, and the schema
//! evolution gate.
//!
//! NB: fingerprints are computed here from a Parsing Canonical Form built to the
//! Avro specification ([`parsing_canonical_form`]), not with the `apache-avro`
//! crate's `Schema::fingerprint`: that one keeps `logicalType` in the canonical form
//! (AVRO-4004), so for a schema with a logical type it disagrees with the Java and
//! Python implementations and other languages could not find our writer schema. Our
//! schemas have no logical types (UUIDs and timestamps are strings), so both agree
//! today, a test checks that they do, and [`check_new_schema`] refuses logical types
//! so that it stays so.

use std::collections::HashSet;
use std::sync::LazyLock;

use apache_avro::schema::{RecordSchema, Schema, SchemaKind};
use apache_avro::schema_compatibility::SchemaCompatibility;
use serde_json::Value as Json;

use crate::kinds::{EventType, EventVersion};

/// The namespace of every named type in the event schemas.
pub const NAMESPACE: &str = "todo.events";

/// The two bytes that start every Avro single-object encoded record.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];

/// Length of the single-object header: the marker and the 8-byte fingerprint.
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;

macro_rules! avsc {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../schemas/",
                $file
            )),
        )
    };
}

/// (type, version, file name, file contents) of every schema, oldest version first.
const EMBEDDED: [(EventType, EventVersion, (&str, &str)); 8] = [
    (
        EventType::Created,
        EventVersion::V1,
        avsc!("task.created.v1.avsc"),
    ),
    (
        EventType::Created,
        EventVersion::V2,
        avsc!("task.created.v2.avsc"),
    ),
    (
        EventType::Updated,
        EventVersion::V1,
        avsc!("task.updated.v1.avsc"),
    ),
    (
        EventType::Updated,
        EventVersion::V2,
        avsc!("task.updated.v2.avsc"),
    ),
    (
        EventType::Deleted,
        EventVersion::V1,
        avsc!("task.deleted.v1.avsc"),
    ),
    (
        EventType::Deleted,
        EventVersion::V2,
        avsc!("task.deleted.v2.avsc"),
    ),
    (
        EventType::Completed,
        EventVersion::V1,
        avsc!("task.completed.v1.avsc"),
    ),
    (
        EventType::Completed,
        EventVersion::V2,
        avsc!("task.completed.v2.avsc"),
    ),
];

/// One version of one event type's schema.
#[derive(Debug)]
pub struct SchemaInfo {
    /// The event type.
    pub event_type: EventType,
    /// The version.
    pub version: EventVersion,
    /// The file name under `schemas/`, e.g. `task.created.v1.avsc`.
    pub file_name: &'static str,
    /// The `.avsc` text, as committed.
    pub avsc: &'static str,
    schema: Schema,
    canonical_form: String,
    fingerprint: [u8; 8],
}

impl SchemaInfo {
    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema's Parsing Canonical Form (Avro specification).
    pub fn canonical_form(&self) -> &str {
        &self.canonical_form
    }

    /// The CRC-64-AVRO fingerprint of the canonical form, as the 8 little-endian
    /// bytes that follow the marker in a single-object encoded record.
    pub fn fingerprint(&self) -> [u8; 8] {
        self.fingerprint
    }

    /// The single-object header of records written with this schema: the marker
    /// `C3 01` and the fingerprint.
    pub fn single_object_header(&self) -> [u8; SINGLE_OBJECT_HEADER_LEN] {
        let mut h = [0u8; SINGLE_OBJECT_HEADER_LEN];
        h[..2].copy_from_slice(&SINGLE_OBJECT_MARKER);
        h[2..].copy_from_slice(&self.fingerprint);
        h
    }
}

static SCHEMAS: LazyLock<Vec<SchemaInfo>> = LazyLock::new(|| {
    EMBEDDED
        .iter()
        .map(|&(event_type, version, (file_name, avsc))| {
            // The embedded files are checked by this crate's tests; a failure here is
            // a build defect, not bad input.
            let schema = Schema::parse_str(avsc)
                .unwrap_or_else(|e| panic!("embedded schema {file_name} does not parse: {e}"));
            let canonical_form = parsing_canonical_form(avsc)
                .unwrap_or_else(|e| panic!("embedded schema {file_name}: {e}"));
            let fingerprint = crc64_avro(canonical_form.as_bytes()).to_le_bytes();
            SchemaInfo {
                event_type,
                version,
                file_name,
                avsc,
                schema,
                canonical_form,
                fingerprint,
            }
        })
        .collect()
});

/// Every known schema: each event type in each version, oldest version first.
pub fn all() -> &'static [SchemaInfo] {
    &SCHEMAS
}

/// The schema of `event_type` in `version`.
pub fn get(event_type: EventType, version: EventVersion) -> &'static SchemaInfo {
    // EMBEDDED lists every (type, version) pair; a test checks it.
    SCHEMAS
        .iter()
        .find(|s| s.event_type == event_type && s.version == version)
        .expect("every event type has a schema in every version")
}

/// The known versions of `event_type`'s schema, oldest first.
pub fn versions_of(event_type: EventType) -> impl Iterator<Item = &'static SchemaInfo> {
    SCHEMAS.iter().filter(move |s| s.event_type == event_type)
}

/// The known schema with this fingerprint, if any.
pub fn by_fingerprint(fingerprint: &[u8; 8]) -> Option<&'static SchemaInfo> {
    SCHEMAS.iter().find(|s| &s.fingerprint == fingerprint)
}

// ------------------------------------------------------------------ fingerprints

const CRC64_AVRO_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const CRC64_AVRO_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & 0u64.wrapping_sub(fp & 1));
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// The CRC-64-AVRO (Rabin) fingerprint of `data`, as specified in the Avro
/// specification's "Schema Fingerprints" section. Single-object encoding writes it
/// little-endian (`to_le_bytes`).
pub fn crc64_avro(data: &[u8]) -> u64 {
    data.iter().fold(CRC64_AVRO_EMPTY, |fp, &b| {
        (fp >> 8) ^ CRC64_AVRO_TABLE[((fp ^ u64::from(b)) & 0xff) as usize]
    })
}

/// The single-object fingerprint bytes of a schema given as JSON text: CRC-64-AVRO
/// of its Parsing Canonical Form, little-endian.
pub fn fingerprint(avsc: &str) -> Result<[u8; 8], String> {
    Ok(crc64_avro(parsing_canonical_form(avsc)?.as_bytes()).to_le_bytes())
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of a schema given as JSON text, following the Avro
/// specification's rules: `[PRIMITIVES]` (so `{"type":"string","logicalType":"uuid"}`
/// becomes `"string"`), `[FULLNAMES]`, `[STRIP]` (only `type`, `name`, `fields`,
/// `symbols`, `items`, `values` and `size` are kept), `[ORDER]`, `[STRINGS]`,
/// `[INTEGERS]` and `[WHITESPACE]`; a named type already written is replaced by its
/// full name, as the Java implementation does.
pub fn parsing_canonical_form(avsc: &str) -> Result<String, String> {
    let json: Json = serde_json::from_str(avsc).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = String::with_capacity(avsc.len() / 2);
    let mut defined = HashSet::new();
    pcf(&json, "", &mut defined, &mut out)?;
    Ok(out)
}

fn push_str(out: &mut String, s: &str) {
    // serde_json escapes only what JSON requires (`[STRINGS]`).
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

/// (full name, namespace for the type's children) of a named type.
fn full_name(name: &str, namespace: Option<&str>, enclosing: &str) -> (String, String) {
    if let Some(dot) = name.rfind('.') {
        return (name.to_owned(), name[..dot].to_owned());
    }
    let ns = namespace.unwrap_or(enclosing);
    if ns.is_empty() {
        (name.to_owned(), String::new())
    } else {
        (format!("{ns}.{name}"), ns.to_owned())
    }
}

fn pcf(
    json: &Json,
    enclosing: &str,
    defined: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), String> {
    match json {
        Json::String(s) if PRIMITIVES.contains(&s.as_str()) => push_str(out, s),
        Json::String(s) => push_str(out, &full_name(s, None, enclosing).0),
        Json::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pcf(b, enclosing, defined, out)?;
            }
            out.push(']');
        }
        Json::Object(obj) => {
            let ty = obj.get("type").ok_or("a schema object without \"type\"")?;
            let ty = match ty {
                Json::String(t) => t.as_str(),
                // {"type": {...}} or {"type": [...]}: the attribute is itself a schema.
                other => return pcf(other, enclosing, defined, out),
            };
            match ty {
                "record" | "error" | "enum" | "fixed" => {
                    let name = obj
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| format!("a {ty} without a name"))?;
                    let namespace = obj.get("namespace").and_then(Json::as_str);
                    let (full, ns) = full_name(name, namespace, enclosing);
                    if !defined.insert(full.clone()) {
                        push_str(out, &full);
                        return Ok(());
                    }
                    out.push_str("{\"name\":");
                    push_str(out, &full);
                    out.push_str(",\"type\":");
                    push_str(out, ty);
                    match ty {
                        "enum" => {
                            let symbols = obj
                                .get("symbols")
                                .and_then(Json::as_array)
                                .ok_or_else(|| format!("enum {full} without symbols"))?;
                            out.push_str(",\"symbols\":[");
                            for (i, s) in symbols.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                push_str(out, s.as_str().ok_or("a non-string enum symbol")?);
                            }
                            out.push(']');
                        }
                        "fixed" => {
                            let size = obj
                                .get("size")
                                .and_then(Json::as_u64)
                                .ok_or_else(|| format!("fixed {full} without a size"))?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            let fields = obj
                                .get("fields")
                                .and_then(Json::as_array)
                                .ok_or_else(|| format!("record {full} without fields"))?;
                            out.push_str(",\"fields\":[");
                            for (i, f) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let fname = f
                                    .get("name")
                                    .and_then(Json::as_str)
                                    .ok_or_else(|| format!("a field of {full} without a name"))?;
                                let ftype = f.get("type").ok_or_else(|| {
                                    format!("field {full}.{fname} without a type")
                                })?;
                                out.push_str("{\"name\":");
                                push_str(out, fname);
                                out.push_str(",\"type\":");
                                pcf(ftype, &ns, defined, out)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                }
                "array" => {
                    out.push_str("{\"type\":\"array\",\"items\":");
                    pcf(
                        obj.get("items").ok_or("an array without items")?,
                        enclosing,
                        defined,
                        out,
                    )?;
                    out.push('}');
                }
                "map" => {
                    out.push_str("{\"type\":\"map\",\"values\":");
                    pcf(
                        obj.get("values").ok_or("a map without values")?,
                        enclosing,
                        defined,
                        out,
                    )?;
                    out.push('}');
                }
                // A primitive with attributes (e.g. a logical type), or a reference to
                // a named type written as {"type": "Name"}.
                other => pcf(&Json::String(other.to_owned()), enclosing, defined, out)?,
            }
        }
        other => return Err(format!("not a schema: {other}")),
    }
    Ok(())
}

// ------------------------------------------------------------ evolution gate

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
                if existing.fingerprint == fp {
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
        for p in compatibility_problems(&existing.schema, &new) {
            problems.push(format!("against {}: {p}", existing.file_name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_schema_in_every_version_with_a_distinct_fingerprint() {
        let mut seen = HashSet::new();
        for t in EventType::ALL {
            for v in EventVersion::ALL {
                let s = get(t, v);
                assert_eq!(s.file_name, format!("{t}.{v}.avsc"));
                assert!(
                    seen.insert(s.fingerprint),
                    "{} shares a fingerprint",
                    s.file_name
                );
                assert_eq!(
                    by_fingerprint(&s.fingerprint).unwrap().file_name,
                    s.file_name
                );
            }
        }
        assert_eq!(all().len(), 8);
    }

    #[test]
    fn crc64_avro_matches_the_reference_value_of_the_empty_input() {
        assert_eq!(crc64_avro(b""), CRC64_AVRO_EMPTY);
    }
}
