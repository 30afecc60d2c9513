//! Encode and decode of a typical `task.created` (v2), in JSON and in Avro.
//! Run: `cargo bench -p todo-events --bench codec`.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use todo_events::{decode, ContentType, Event, EventVersion, Payload, TaskCreated, TaskStatus};
use uuid::Uuid;

fn typical_created() -> Event {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    Event {
        event_id: Uuid::parse_str("5b7e8a52-3c1d-4f6e-9a0b-1c2d3e4f5a6b").unwrap(),
        event_version: EventVersion::V2,
        timestamp: at("2026-02-07T10:20:30.654321Z"),
        correlation_id: Uuid::parse_str("7c2e8f40-1d3b-4a5c-9e6f-0a1b2c3d4e5f").unwrap(),
        source: todo_events::SOURCE.to_owned(),
        payload: Payload::Created(TaskCreated {
            task_id: 123_456,
            title: "Prepare the quarterly report".to_owned(),
            description: Some("Collect figures from finance and draft the summary".to_owned()),
            status: TaskStatus::Incomplete,
            created_at: at("2026-02-07T10:20:30.651234Z"),
            user_id: Some("auth0|5f1c2d3e4a5b6c7d8e9f0a1b".to_owned()),
            task_version: Some(1),
        }),
    }
}

fn codec(c: &mut Criterion) {
    let event = typical_created();
    for ct in ContentType::ALL {
        let name = match ct {
            ContentType::Json => "json",
            ContentType::Avro => "avro",
        };
        let bytes = event.encode(ct).unwrap();
        println!("task.created v2 as {ct}: {} bytes", bytes.len());
        let mut group = c.benchmark_group(format!("task.created/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("encode", |b| {
            b.iter(|| black_box(&event).encode(ct).unwrap())
        });
        group.bench_function("decode", |b| {
            b.iter(|| decode(black_box(&bytes), ct).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
