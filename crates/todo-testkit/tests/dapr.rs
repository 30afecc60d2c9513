//! The test sidecar is a real daprd on the local Kafka: what an app
//! publishes through it with the bulk API and `rawPayload` arrives at a
//! subscribed app as the same bytes, the record on Kafka is those bytes with
//! the partition key as its key, and a killed sidecar comes back on the same
//! port. NB: daprd 1.14.4's Kafka component has no `excludeHeaderMetaRegex`:
//! the record also gets the headers `partitionKey` and `rawPayload`.
//!
//! Needs `./dev up --infra` and the daprd that `./dev test` (or `bash
//! ops/dapr.sh`) builds; `eval "$(./dev env)"` gives the stack's addresses.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use todo_testkit::dapr::{Sidecar, PUBSUB_NAME};
use todo_testkit::{create_topics, read_records, Stack};
use tokio::sync::mpsc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One delivery as the probe app saw it: the value's base64 and the shape
/// it came in (for failure messages).
#[derive(Debug)]
struct Delivered {
    base64: String,
    body: Value,
}

/// A tiny subscriber: `GET /dapr/subscribe` names one topic (raw payload,
/// bulk), `POST /events` hands every entry's value to the test and answers
/// SUCCESS for each. Returns its port and what it receives.
async fn probe_app(topic: &str) -> (u16, mpsc::UnboundedReceiver<Delivered>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let subscription = json!([{
        "pubsubname": PUBSUB_NAME,
        "topic": topic,
        "route": "/events",
        "metadata": { "rawPayload": "true" },
        "bulkSubscribe": { "enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 50 },
    }]);
    let app = Router::new()
        .route(
            "/dapr/subscribe",
            get(move || async move { Json(subscription) }),
        )
        .route("/events", post(receive))
        .with_state(Arc::new(tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, rx)
}

/// Bulk deliveries carry `entries` whose `event` is the raw value in base64
/// (or a CloudEvent with `data_base64`); a single delivery is a CloudEvent.
async fn receive(
    State(tx): State<Arc<mpsc::UnboundedSender<Delivered>>>,
    body: axum::body::Bytes,
) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let value_of = |event: &Value| match event {
        Value::String(b64) => Some(b64.clone()),
        Value::Object(ce) => ce
            .get("data_base64")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    match body.get("entries").and_then(Value::as_array) {
        Some(entries) => {
            let mut statuses = Vec::new();
            for entry in entries {
                let _ = tx.send(Delivered {
                    base64: entry.get("event").and_then(value_of).unwrap_or_default(),
                    body: body.clone(),
                });
                statuses.push(json!({ "entryId": entry["entryId"], "status": "SUCCESS" }));
            }
            Json(json!({ "statuses": statuses }))
        }
        None => {
            let _ = tx.send(Delivered {
                base64: value_of(&body).unwrap_or_default(),
                body: body.clone(),
            });
            Json(json!({ "status": "SUCCESS" }))
        }
    }
}

/// Publishes `value` with key `key` through the sidecar's bulk API with a
/// raw payload; returns the HTTP status and body.
async fn bulk_publish(sidecar: &Sidecar, topic: &str, key: &str, value: &[u8]) -> (u16, String) {
    let url = format!(
        "{}/v1.0-alpha1/publish/bulk/{PUBSUB_NAME}/{topic}?metadata.rawPayload=true",
        sidecar.url()
    );
    let entries = json!([{
        "entryId": "1",
        "event": B64.encode(value),
        "contentType": "application/octet-stream",
        "metadata": { "partitionKey": key },
    }]);
    let response = reqwest::Client::new()
        .post(url)
        .json(&entries)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the sidecar answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Bytes that only survive untouched: not UTF-8, with a zero byte, unique.
fn raw_value() -> Vec<u8> {
    let mut value = vec![0x00, 0xff, 0xfe, 0x80, b'\n'];
    value.extend_from_slice(todo_testkit::short_id().as_bytes());
    value
}

#[tokio::test]
async fn a_raw_value_bulk_published_through_the_real_sidecar_reaches_a_bulk_subscriber_byte_for_byte(
) {
    // Arrange
    let stack = Stack::from_env();
    let topic = format!("{}probe", stack.unique_topic_prefix());
    create_topics(&stack, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let (app_port, mut delivered) = probe_app(&topic).await;
    let mut sidecar = Sidecar::start("testkit-probe", app_port, &stack.kafka_bootstrap).await;
    sidecar.wait_app_reachable(Duration::from_secs(30)).await;
    let value = raw_value();

    // Act
    let (status, body) = bulk_publish(&sidecar, &topic, "task-1", &value).await;
    let received = tokio::time::timeout(Duration::from_secs(60), delivered.recv()).await;

    // Assert
    assert!(
        (200..300).contains(&status) && !body.contains("failedEntries\":[{"),
        "bulk publish answered {status} {body}; sidecar log:\n{}",
        sidecar.log_tail(30)
    );
    let received = received
        .unwrap_or_else(|_| {
            panic!(
                "nothing delivered in 60 s; sidecar log:\n{}",
                sidecar.log_tail(40)
            )
        })
        .expect("the probe app runs");
    assert_eq!(
        received.base64,
        B64.encode(&value),
        "the delivery carries the published bytes: {:#}",
        received.body
    );
    assert_eq!(B64.decode(&received.base64).unwrap(), value);
    assert!(
        received.body.get("entries").is_some(),
        "delivered in bulk: {:#}",
        received.body
    );
    let records = read_records(
        &stack.kafka_bootstrap,
        std::slice::from_ref(&topic),
        1,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(records.len(), 1, "one record on Kafka");
    assert_eq!(
        records[0].value, value,
        "the record's value is the raw bytes"
    );
    assert_eq!(
        records[0].key.as_deref(),
        Some("task-1"),
        "the partition key is the record key"
    );
}

#[tokio::test]
async fn a_killed_sidecar_restarts_on_the_same_port_and_publishes_again() {
    // Arrange
    let stack = Stack::from_env();
    let topic = format!("{}probe", stack.unique_topic_prefix());
    create_topics(&stack, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let app_port = todo_testkit::process::closed_port();
    let mut sidecar = Sidecar::start("testkit-publisher", app_port, &stack.kafka_bootstrap).await;
    let port = sidecar.http_port();

    // Act
    sidecar.kill();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err();
    sidecar.restart().await;
    let (status, body) = bulk_publish(&sidecar, &topic, "k", b"after restart").await;

    // Assert
    assert!(
        refused,
        "nothing listens on {port} once the sidecar is killed"
    );
    assert!(sidecar.is_running());
    assert_eq!(sidecar.http_port(), port, "restart keeps the port");
    assert_eq!(
        status,
        204,
        "{body}; sidecar log:\n{}",
        sidecar.log_tail(30)
    );
    let records = read_records(
        &stack.kafka_bootstrap,
        std::slice::from_ref(&topic),
        1,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, b"after restart");
}

#[tokio::test]
async fn a_scoped_sidecar_publishes_its_apps_prefixed_topics_and_is_refused_the_others() {
    // Arrange
    let stack = Stack::from_env();
    let prefix = stack.unique_topic_prefix();
    let own = format!("{prefix}todo.tasks.created");
    let other = format!("{prefix}todo.tasks.dlq");
    create_topics(&stack, &[own.clone(), other.clone()])
        .await
        .unwrap();
    let sidecar = Sidecar::builder(
        "todo-backend",
        todo_testkit::process::closed_port(),
        &stack.kafka_bootstrap,
    )
    .scoped(&prefix)
    .start()
    .await;

    // Act
    let (own_status, own_body) = bulk_publish(&sidecar, &own, "k", b"v").await;
    let (other_status, _) = bulk_publish(&sidecar, &other, "k", b"v").await;

    // Assert
    assert_eq!(
        own_status,
        204,
        "{own_body}; sidecar log:\n{}",
        sidecar.log_tail(30)
    );
    assert_eq!(
        other_status, 403,
        "the backend may not publish the DLQ topic"
    );
}
