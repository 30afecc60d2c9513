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

mod canonical;
mod evolution;
mod registry;

pub use canonical::{crc64_avro, fingerprint, parsing_canonical_form};
pub use evolution::{check_compatible, check_new_schema};
pub use registry::{all, by_fingerprint, get, versions_of, SchemaInfo};

/// The namespace of every named type in the event schemas.
pub const NAMESPACE: &str = "todo.events";

/// The two bytes that start every Avro single-object encoded record.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];

/// Length of the single-object header: the marker and the 8-byte fingerprint.
pub const SINGLE_OBJECT_HEADER_LEN: usize = 10;
