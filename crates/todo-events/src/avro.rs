//! The Avro codec: Avro binary in the single-object encoding, with the schemas of
//! [`crate::schema`].

use apache_avro::types::Value;
use apache_avro::{from_avro_datum_schemata, write_avro_datum_ref};
use serde::Serialize;

use crate::error::{truncate, DecodeError, EncodeError};
use crate::event::Event;
use crate::kinds::{EventType, EventVersion, TaskStatus};
use crate::payload::{Changes, Payload, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};
use crate::schema::{self, SchemaInfo, SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MARKER};
use crate::text;

/// Decodes a single-object record, reading it with the newest version of its event
/// type's schema (Avro schema resolution).
pub(crate) fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_with(bytes, EventVersion::LATEST)
}

/// Decodes a single-object Avro record as a consumer that knows only `reader`'s
/// schemas would: the writer schema is found by fingerprint among every known
/// version, and the body is resolved to `reader`'s schema of the same event type, so
/// fields `reader` lacks are dropped and fields the writer lacked take their
/// defaults. [`crate::decode`] reads with [`EventVersion::LATEST`]; this is the
/// compatibility gate's tool, and a way to see what an older consumer sees.
pub fn decode_avro_with_reader(bytes: &[u8], reader: EventVersion) -> Result<Event, DecodeError> {
    decode_with(bytes, reader)
}

fn decode_with(bytes: &[u8], reader: EventVersion) -> Result<Event, DecodeError> {
    if bytes.len() >= 2 && bytes[..2] != SINGLE_OBJECT_MARKER {
        return Err(DecodeError::BadMarker {
            found: bytes[..2].to_vec(),
        });
    }
    if bytes.len() < SINGLE_OBJECT_HEADER_LEN {
        if bytes.len() < 2 && !SINGLE_OBJECT_MARKER.starts_with(bytes) {
            return Err(DecodeError::BadMarker {
                found: bytes.to_vec(),
            });
        }
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(&bytes[2..SINGLE_OBJECT_HEADER_LEN]);
    let writer = schema::by_fingerprint(&fp).ok_or(DecodeError::UnknownFingerprint(fp))?;
    let reader = schema::get(writer.event_type, reader);
    let mut body = EofGuard {
        rest: &bytes[SINGLE_OBJECT_HEADER_LEN..],
        hit_eof: false,
    };
    let reader_schema = (reader.version != writer.version).then(|| reader.schema());
    // Our schemas define each named type inline, once, so the decoder needs no
    // table of names: an empty one spares walking the schema on every call.
    let value = from_avro_datum_schemata(writer.schema(), Vec::new(), &mut body, reader_schema)
        .map_err(|e| malformed(format!("{}: {e}", writer.file_name)))?;
    if body.hit_eof {
        return Err(malformed(format!(
            "{}: the body ends before the record does",
            writer.file_name
        )));
    }
    if !body.rest.is_empty() {
        return Err(malformed(format!(
            "{} trailing bytes after the record",
            body.rest.len()
        )));
    }
    event_from_value(value, writer)
}

/// The record body, remembering whether the decoder ever asked for more bytes than
/// were left.
///
/// NB: apache-avro (0.21) decodes a boolean, a string or a union index that meets
/// the end of its input as null instead of failing, so a truncated record whose cut
/// falls in an optional field decodes "successfully" with that field null. This
/// guard turns any read past the end into an error.
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl std::io::Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() > self.rest.len() {
            self.hit_eof = true;
        }
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

fn malformed(msg: String) -> DecodeError {
    DecodeError::MalformedAvro(truncate(&msg, 300))
}

// ------------------------------------------------------------------ encoding
//
// The body is written with apache-avro's schema-aware serde serializer, which goes
// straight from these borrowed structs to bytes (building a `Value` tree and
// validating it costs several times more).
//
// NB: that serializer writes fields in the order they are serialized, not in the
// schema's order, and does not check that every field was written. So each struct
// below lists exactly its schema's fields in the schema's order, and `TaskStatus`'s
// variants are in the order of the enum's symbols. The golden files, the round
// trips and fastavro's byte-for-byte re-encoding (tests/interop.rs) check this.

#[derive(Serialize)]
struct EnvelopeOut<'a, P> {
    event_id: &'a str,
    event_type: &'static str,
    event_version: &'static str,
    timestamp: &'a str,
    correlation_id: &'a str,
    source: &'a str,
    payload: P,
}

/// The envelope's fields but the payload.
#[derive(Clone, Copy)]
struct Head<'a> {
    event_id: &'a str,
    event_type: &'static str,
    event_version: &'static str,
    timestamp: &'a str,
    correlation_id: &'a str,
    source: &'a str,
}

impl<'a> Head<'a> {
    fn with<P>(self, payload: P) -> EnvelopeOut<'a, P> {
        EnvelopeOut {
            event_id: self.event_id,
            event_type: self.event_type,
            event_version: self.event_version,
            timestamp: self.timestamp,
            correlation_id: self.correlation_id,
            source: self.source,
            payload,
        }
    }
}

#[derive(Serialize)]
struct CreatedV1<'a> {
    task_id: i64,
    title: &'a str,
    description: Option<&'a str>,
    status: TaskStatus,
    created_at: &'a str,
    user_id: Option<&'a str>,
}

#[derive(Serialize)]
struct CreatedV2<'a> {
    task_id: i64,
    title: &'a str,
    description: Option<&'a str>,
    status: TaskStatus,
    created_at: &'a str,
    user_id: Option<&'a str>,
    task_version: Option<i64>,
}

#[derive(Serialize)]
struct UpdatedV1<'a> {
    task_id: i64,
    title: &'a str,
    description: Option<&'a str>,
    status: TaskStatus,
    updated_at: &'a str,
    changes: Changes,
}

#[derive(Serialize)]
struct UpdatedV2<'a> {
    task_id: i64,
    title: &'a str,
    description: Option<&'a str>,
    status: TaskStatus,
    updated_at: &'a str,
    changes: Changes,
    user_id: Option<&'a str>,
    task_version: Option<i64>,
}

#[derive(Serialize)]
struct DeletedV1<'a> {
    task_id: i64,
    deleted_at: &'a str,
}

#[derive(Serialize)]
struct CompletedV1<'a> {
    task_id: i64,
    completed_at: &'a str,
}

#[derive(Serialize)]
struct DeletedV2<'a> {
    task_id: i64,
    deleted_at: &'a str,
    user_id: Option<&'a str>,
    task_version: Option<i64>,
}

#[derive(Serialize)]
struct CompletedV2<'a> {
    task_id: i64,
    completed_at: &'a str,
    user_id: Option<&'a str>,
    task_version: Option<i64>,
}

/// Encodes `event` in its version's schema: marker, fingerprint, body.
pub(crate) fn encode(event: &Event) -> Result<Vec<u8>, EncodeError> {
    let info = schema::get(event.event_type(), event.event_version);
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(&info.single_object_header());

    let mut id_buf = [0u8; 36];
    let mut corr_buf = [0u8; 36];
    let timestamp = text::format(&event.timestamp);
    let head = Head {
        event_id: event.event_id.hyphenated().encode_lower(&mut id_buf),
        event_type: event.event_type().as_str(),
        event_version: event.event_version.as_str(),
        timestamp: &timestamp,
        correlation_id: event
            .correlation_id
            .hyphenated()
            .encode_lower(&mut corr_buf),
        source: &event.source,
    };
    let v2 = event.event_version == EventVersion::V2;
    let schema = info.schema();
    let written = match &event.payload {
        Payload::Created(c) => {
            let created_at = text::format(&c.created_at);
            if v2 {
                write_avro_datum_ref(
                    schema,
                    &head.with(CreatedV2 {
                        task_id: c.task_id,
                        title: &c.title,
                        description: c.description.as_deref(),
                        status: c.status,
                        created_at: &created_at,
                        user_id: c.user_id.as_deref(),
                        task_version: c.task_version,
                    }),
                    &mut out,
                )
            } else {
                write_avro_datum_ref(
                    schema,
                    &head.with(CreatedV1 {
                        task_id: c.task_id,
                        title: &c.title,
                        description: c.description.as_deref(),
                        status: c.status,
                        created_at: &created_at,
                        user_id: c.user_id.as_deref(),
                    }),
                    &mut out,
                )
            }
        }
        Payload::Updated(u) => {
            let updated_at = text::format(&u.updated_at);
            if v2 {
                write_avro_datum_ref(
                    schema,
                    &head.with(UpdatedV2 {
                        task_id: u.task_id,
                        title: &u.title,
                        description: u.description.as_deref(),
                        status: u.status,
                        updated_at: &updated_at,
                        changes: u.changes,
                        user_id: u.user_id.as_deref(),
                        task_version: u.task_version,
                    }),
                    &mut out,
                )
            } else {
                write_avro_datum_ref(
                    schema,
                    &head.with(UpdatedV1 {
                        task_id: u.task_id,
                        title: &u.title,
                        description: u.description.as_deref(),
                        status: u.status,
                        updated_at: &updated_at,
                        changes: u.changes,
                    }),
                    &mut out,
                )
            }
        }
        Payload::Deleted(d) => {
            let deleted_at = text::format(&d.deleted_at);
            if v2 {
                write_avro_datum_ref(
                    schema,
                    &head.with(DeletedV2 {
                        task_id: d.task_id,
                        deleted_at: &deleted_at,
                        user_id: d.user_id.as_deref(),
                        task_version: d.task_version,
                    }),
                    &mut out,
                )
            } else {
                write_avro_datum_ref(
                    schema,
                    &head.with(DeletedV1 {
                        task_id: d.task_id,
                        deleted_at: &deleted_at,
                    }),
                    &mut out,
                )
            }
        }
        Payload::Completed(c) => {
            let completed_at = text::format(&c.completed_at);
            if v2 {
                write_avro_datum_ref(
                    schema,
                    &head.with(CompletedV2 {
                        task_id: c.task_id,
                        completed_at: &completed_at,
                        user_id: c.user_id.as_deref(),
                        task_version: c.task_version,
                    }),
                    &mut out,
                )
            } else {
                write_avro_datum_ref(
                    schema,
                    &head.with(CompletedV1 {
                        task_id: c.task_id,
                        completed_at: &completed_at,
                    }),
                    &mut out,
                )
            }
        }
    };
    written.map_err(|e| EncodeError::Avro(truncate(&e.to_string(), 300)))?;
    Ok(out)
}

// ------------------------------------------------------------------ decoding

/// The fields of a decoded record, taken out one by one by name.
struct Fields {
    record: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn of(record: &'static str, v: Value) -> Result<Self, DecodeError> {
        match v {
            Value::Record(fields) => Ok(Fields { record, fields }),
            other => Err(malformed(format!(
                "{record}: expected a record, got {other:?}"
            ))),
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, DecodeError> {
        let i = self
            .fields
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| malformed(format!("{}: no field {name}", self.record)))?;
        Ok(self.fields.swap_remove(i).1)
    }

    /// A field the reader schema may lack (v2-only fields read with v1).
    fn take_opt(&mut self, name: &str) -> Option<Value> {
        let i = self.fields.iter().position(|(n, _)| n == name)?;
        Some(self.fields.swap_remove(i).1)
    }

    fn wrong(&self, name: &str, expected: &str, got: &Value) -> DecodeError {
        malformed(format!(
            "{}.{name}: expected {expected}, got {got:?}",
            self.record
        ))
    }

    fn string(&mut self, name: &str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(name, "a string", &other)),
        }
    }

    fn long(&mut self, name: &str) -> Result<i64, DecodeError> {
        match self.take(name)? {
            Value::Long(n) => Ok(n),
            Value::Int(n) => Ok(i64::from(n)),
            other => Err(self.wrong(name, "a long", &other)),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<bool, DecodeError> {
        match self.take(name)? {
            Value::Boolean(b) => Ok(b),
            other => Err(self.wrong(name, "a boolean", &other)),
        }
    }

    fn unwrap_union(v: Value) -> Value {
        match v {
            Value::Union(_, inner) => *inner,
            other => other,
        }
    }

    fn opt_string(&mut self, name: &str) -> Result<Option<String>, DecodeError> {
        match self.take_opt(name).map(Self::unwrap_union) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(name, "null or a string", &other)),
        }
    }

    fn opt_long(&mut self, name: &str) -> Result<Option<i64>, DecodeError> {
        match self.take_opt(name).map(Self::unwrap_union) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Long(n)) => Ok(Some(n)),
            Some(Value::Int(n)) => Ok(Some(i64::from(n))),
            Some(other) => Err(self.wrong(name, "null or a long", &other)),
        }
    }

    fn status(&mut self, name: &str) -> Result<TaskStatus, DecodeError> {
        match self.take(name)? {
            Value::Enum(_, symbol) | Value::String(symbol) => symbol
                .parse()
                .map_err(|e| malformed(format!("{}.{name}: {e}", self.record))),
            other => Err(self.wrong(name, "a TaskStatus symbol", &other)),
        }
    }

    fn timestamp(
        &mut self,
        name: &str,
        field: &'static str,
    ) -> Result<chrono::DateTime<chrono::Utc>, DecodeError> {
        Ok(text::parse(field, &self.string(name)?)?)
    }
}

fn event_from_value(value: Value, writer: &SchemaInfo) -> Result<Event, DecodeError> {
    let mut env = Fields::of("envelope", value)?;
    let event_type = env.string("event_type")?;
    let event_type: EventType = event_type
        .parse()
        .map_err(|_| DecodeError::UnknownEventType(truncate(&event_type, 100)))?;
    let event_version = env.string("event_version")?;
    let event_version: EventVersion = event_version
        .parse()
        .map_err(|_| DecodeError::UnknownEventVersion(truncate(&event_version, 100)))?;
    if event_type != writer.event_type || event_version != writer.version {
        return Err(malformed(format!(
            "the envelope says {event_type} {event_version} but was written with {}",
            writer.file_name
        )));
    }
    let event_id = text::parse_uuid("event_id", &env.string("event_id")?)?;
    let timestamp = text::parse("timestamp", &env.string("timestamp")?)?;
    let correlation_id = text::parse_uuid("correlation_id", &env.string("correlation_id")?)?;
    let source = env.string("source")?;
    let mut p = Fields::of("payload", env.take("payload")?)?;
    let payload = match event_type {
        EventType::Created => Payload::Created(TaskCreated {
            task_id: p.long("task_id")?,
            title: p.string("title")?,
            description: p.opt_string("description")?,
            status: p.status("status")?,
            created_at: p.timestamp("created_at", "payload.created_at")?,
            user_id: p.opt_string("user_id")?,
            task_version: p.opt_long("task_version")?,
        }),
        EventType::Updated => {
            let task_id = p.long("task_id")?;
            let title = p.string("title")?;
            let description = p.opt_string("description")?;
            let status = p.status("status")?;
            let updated_at = p.timestamp("updated_at", "payload.updated_at")?;
            let mut c = Fields::of("payload.changes", p.take("changes")?)?;
            let changes = Changes {
                title: c.boolean("title")?,
                description: c.boolean("description")?,
                status: c.boolean("status")?,
            };
            Payload::Updated(TaskUpdated {
                task_id,
                title,
                description,
                status,
                updated_at,
                changes,
                user_id: p.opt_string("user_id")?,
                task_version: p.opt_long("task_version")?,
            })
        }
        EventType::Deleted => Payload::Deleted(TaskDeleted {
            task_id: p.long("task_id")?,
            deleted_at: p.timestamp("deleted_at", "payload.deleted_at")?,
            user_id: p.opt_string("user_id")?,
            task_version: p.opt_long("task_version")?,
        }),
        EventType::Completed => Payload::Completed(TaskCompleted {
            task_id: p.long("task_id")?,
            completed_at: p.timestamp("completed_at", "payload.completed_at")?,
            user_id: p.opt_string("user_id")?,
            task_version: p.opt_long("task_version")?,
        }),
    };
    Ok(Event {
        event_id,
        event_version,
        timestamp,
        correlation_id,
        source,
        payload,
    })
}
