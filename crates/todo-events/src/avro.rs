//! The Avro codec: Avro binary in the single-object encoding, with the schemas of
//! [`crate::schema`].

use apache_avro::types::Value;
use apache_avro::{from_avro_datum, to_avro_datum};
use uuid::Uuid;

use crate::error::{truncate, DecodeError, EncodeError};
use crate::event::Event;
use crate::kinds::{EventType, EventVersion, TaskStatus};
use crate::payload::{Changes, Payload, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};
use crate::schema::{self, SchemaInfo, SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MARKER};
use crate::text;

/// Encodes `event` in its version's schema: marker, fingerprint, body.
pub(crate) fn encode(event: &Event) -> Result<Vec<u8>, EncodeError> {
    let info = schema::get(event.event_type(), event.event_version);
    let body = to_avro_datum(info.schema(), envelope_value(event))
        .map_err(|e| EncodeError::Avro(truncate(&e.to_string(), 300)))?;
    let mut out = Vec::with_capacity(SINGLE_OBJECT_HEADER_LEN + body.len());
    out.extend_from_slice(&info.single_object_header());
    out.extend_from_slice(&body);
    Ok(out)
}

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
    let value = from_avro_datum(writer.schema(), &mut body, reader_schema)
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

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn uuid(v: &Uuid) -> Value {
    Value::String(v.hyphenated().to_string())
}

fn ts(v: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(text::format(v))
}

fn opt_string(v: &Option<String>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(Value::String(v.clone()))),
    }
}

fn opt_long(v: Option<i64>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(Value::Long(v))),
    }
}

fn status(v: TaskStatus) -> Value {
    let index = TaskStatus::ALL.iter().position(|s| *s == v).unwrap_or(0) as u32;
    Value::Enum(index, v.as_str().to_owned())
}

fn field(name: &str, v: Value) -> (String, Value) {
    (name.to_owned(), v)
}

fn envelope_value(e: &Event) -> Value {
    Value::Record(vec![
        field("event_id", uuid(&e.event_id)),
        field("event_type", s(e.event_type().as_str())),
        field("event_version", s(e.event_version.as_str())),
        field("timestamp", ts(&e.timestamp)),
        field("correlation_id", uuid(&e.correlation_id)),
        field("source", s(&e.source)),
        field("payload", payload_value(&e.payload, e.event_version)),
    ])
}

fn payload_value(p: &Payload, version: EventVersion) -> Value {
    let v2 = version == EventVersion::V2;
    let mut fields = Vec::with_capacity(8);
    match p {
        Payload::Created(c) => {
            fields.push(field("task_id", Value::Long(c.task_id)));
            fields.push(field("title", s(&c.title)));
            fields.push(field("description", opt_string(&c.description)));
            fields.push(field("status", status(c.status)));
            fields.push(field("created_at", ts(&c.created_at)));
            fields.push(field("user_id", opt_string(&c.user_id)));
            if v2 {
                fields.push(field("task_version", opt_long(c.task_version)));
            }
        }
        Payload::Updated(u) => {
            fields.push(field("task_id", Value::Long(u.task_id)));
            fields.push(field("title", s(&u.title)));
            fields.push(field("description", opt_string(&u.description)));
            fields.push(field("status", status(u.status)));
            fields.push(field("updated_at", ts(&u.updated_at)));
            fields.push(field(
                "changes",
                Value::Record(vec![
                    field("title", Value::Boolean(u.changes.title)),
                    field("description", Value::Boolean(u.changes.description)),
                    field("status", Value::Boolean(u.changes.status)),
                ]),
            ));
            if v2 {
                fields.push(field("user_id", opt_string(&u.user_id)));
                fields.push(field("task_version", opt_long(u.task_version)));
            }
        }
        Payload::Deleted(d) => {
            fields.push(field("task_id", Value::Long(d.task_id)));
            fields.push(field("deleted_at", ts(&d.deleted_at)));
            if v2 {
                fields.push(field("user_id", opt_string(&d.user_id)));
                fields.push(field("task_version", opt_long(d.task_version)));
            }
        }
        Payload::Completed(c) => {
            fields.push(field("task_id", Value::Long(c.task_id)));
            fields.push(field("completed_at", ts(&c.completed_at)));
            if v2 {
                fields.push(field("user_id", opt_string(&c.user_id)));
                fields.push(field("task_version", opt_long(c.task_version)));
            }
        }
    }
    Value::Record(fields)
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
