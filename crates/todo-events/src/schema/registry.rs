//! The registry: every embedded schema, parsed and fingerprinted once, found
//! by event type and version or by fingerprint.

use std::sync::LazyLock;

use apache_avro::schema::Schema;

use super::canonical::{crc64_avro, parsing_canonical_form};
use super::{SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MARKER};
use crate::kinds::{EventType, EventVersion};

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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
}
