//! Kafka down while the API takes writes: every request succeeds, the outbox
//! grows, and when Kafka is back every event arrives, in per-task order.
//!
//! This binary stops the stack's Kafka, so it holds only this test (cargo
//! runs test binaries one at a time).

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use todo_testkit::eventually;

fn dev(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev");
    let status = Command::new(script).args(args).status().expect("run ./dev");
    assert!(status.success(), "./dev {args:?} failed");
}

/// Starts Kafka again however the test ends.
struct KafkaBack;
impl Drop for KafkaBack {
    fn drop(&mut self) {
        dev(&["start", "kafka"]);
    }
}

#[tokio::test]
async fn with_kafka_down_requests_succeed_and_every_event_arrives_in_order_when_it_returns() {
    // Arrange
    let app = helpers::spawn_app().await;
    let guard = KafkaBack;
    dev(&["stop", "kafka"]);

    // Act: 15 tasks, each created, updated twice and completed, while Kafka is down.
    let mut ids = Vec::new();
    for i in 0..15 {
        let resp = app
            .post_json("/tasks", &json!({ "title": format!("offline {i}") }))
            .await;
        assert_eq!(resp.status(), 201, "the API does not need Kafka");
        let task: serde_json::Value = resp.json().await.unwrap();
        let id = task["id"].as_i64().unwrap();
        for rev in 0..2 {
            let resp = app
                .put_json(
                    &format!("/tasks/{id}"),
                    &json!({ "title": format!("offline {i} rev {rev}") }),
                )
                .await;
            assert_eq!(resp.status(), 200);
        }
        assert_eq!(
            app.post_empty(&format!("/tasks/{id}/complete"))
                .await
                .status(),
            200
        );
        ids.push(id);
    }
    let expected = ids.len() * 4;
    assert_eq!(
        app.unpublished().await,
        expected as i64,
        "the outbox holds every event while Kafka is down"
    );
    drop(guard); // Kafka starts again

    // Assert
    let drained = eventually(Duration::from_secs(150), || async {
        (app.unpublished().await == 0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "the relay drains the outbox once Kafka is back"
    );
    let records = app.read_events(expected, Duration::from_secs(60)).await;
    assert_eq!(records.len(), expected, "every event arrives");
    // Per task and topic, events are in the order they were committed.
    let mut last_version: HashMap<(String, String), i64> = HashMap::new();
    for r in &records {
        let canonical = app.topics.canonical(&r.topic).unwrap();
        let event = todo_events::decode_record(
            canonical,
            r.header(todo_events::headers::CONTENT_TYPE),
            &r.value,
        )
        .unwrap();
        let version = event.payload.task_version().unwrap();
        let key = (r.topic.clone(), r.key.clone().unwrap());
        if let Some(prev) = last_version.insert(key.clone(), version) {
            assert!(
                version > prev,
                "events of {key:?} out of order: {prev} then {version}"
            );
        }
    }
}
