//! The Parsing Canonical Form of a schema and its CRC-64-AVRO fingerprint,
//! built to the Avro specification (see the parent module for why not with
//! `apache-avro`'s own).

use std::collections::HashSet;

use serde_json::Value as Json;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_avro_matches_the_reference_value_of_the_empty_input() {
        assert_eq!(crc64_avro(b""), CRC64_AVRO_EMPTY);
    }
}
