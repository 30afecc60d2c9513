//! `EVENT_TRANSPORT=dapr`: the relay publishes through a real daprd, and the
//! records on Kafka are those of direct mode (raw payload), in order per task.

use std::time::Duration;

use serde_json::json;
use todo_backend::config::Transport;
use todo_backend::Config;
use todo_events::headers as h;
use todo_events::{ContentType, EventType, Payload};
use todo_testkit::dapr::Sidecar;
use todo_testkit::process::closed_port;
use todo_testkit::Stack;

use crate::helpers::*;

/// The backend on a port chosen first, behind its sidecar (which needs the
/// app's port, as the backend needs the sidecar's).
async fn behind_a_sidecar(adjust: impl FnOnce(&mut Config)) -> (TestApp, Sidecar) {
    let stack = Stack::from_env();
    let port = closed_port();
    let dapr = Sidecar::start("todo-backend", port, &stack.kafka_bootstrap).await;
    let database_url = stack.fresh_database().await.expect("fresh database");
    let prefix = stack.unique_topic_prefix();
    let mut config = test_config(&stack, &database_url, &prefix);
    config.http_addr = format!("127.0.0.1:{port}").parse().unwrap();
    config.event_transport = Transport::Dapr;
    config.dapr.dapr_http_port = dapr.http_port();
    adjust(&mut config);
    (start(stack, config).await, dapr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_the_sidecar_each_change_is_published_once_in_order_with_its_correlation_id() {
    // Arrange
    let (app, _dapr) = behind_a_sidecar(|_| {}).await;
    let correlation = uuid::Uuid::new_v4().to_string();

    // Act: create, update, complete and delete one task.
    let task: serde_json::Value = app
        .client
        .post(app.url("/tasks"))
        .header("x-correlation-id", &correlation)
        .json(&json!({"title": "via dapr"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = task["id"].as_i64().unwrap();
    let url = app.url(&format!("/tasks/{id}"));
    let with_id = |r: reqwest::RequestBuilder| r.header("x-correlation-id", &correlation).send();
    let renamed = with_id(app.client.put(&url).json(&json!({"title": "renamed"}))).await;
    assert_eq!(renamed.unwrap().status(), 200);
    let completed = with_id(app.client.post(format!("{url}/complete"))).await;
    assert_eq!(completed.unwrap().status(), 200);
    assert_eq!(
        with_id(app.client.delete(&url)).await.unwrap().status(),
        204
    );

    // Assert: four records, decoded with the contract, the task's versions in order.
    let events = app.expect_events(4).await;
    assert!(
        app.read_events(5, Duration::from_secs(3)).await.len() == 4,
        "each once"
    );
    let mut by_version: Vec<_> = events
        .iter()
        .map(|(r, e)| {
            (
                e.payload.task_version().unwrap(),
                r.topic.clone(),
                e.event_type(),
            )
        })
        .collect();
    by_version.sort();
    assert_eq!(
        by_version,
        [
            (1, app.topic(EventType::Created), EventType::Created),
            (2, app.topic(EventType::Updated), EventType::Updated),
            (3, app.topic(EventType::Completed), EventType::Completed),
            (4, app.topic(EventType::Deleted), EventType::Deleted),
        ]
    );
    for (record, event) in &events {
        assert_eq!(record.key.as_deref(), Some(id.to_string().as_str()));
        assert_eq!(
            record.header(h::EVENT_ID),
            Some(event.event_id.to_string().as_str())
        );
        assert_eq!(record.header(h::CONTENT_TYPE), Some("application/json"));
        assert_eq!(
            record.header(h::CE_ID),
            Some(event.event_id.to_string().as_str())
        );
        assert_eq!(event.correlation_id.to_string(), correlation);
        assert_eq!(event.task_id(), id);
    }
    assert_eq!(app.unpublished().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn avro_events_published_through_the_sidecar_decode_with_the_contract() {
    // Arrange
    let (app, _dapr) = behind_a_sidecar(|c| c.event_content_type = ContentType::Avro).await;

    // Act
    let task = app.create_task("avro via dapr").await;

    // Assert
    let events = app.expect_events(1).await;
    let (record, event) = &events[0];
    assert_eq!(
        record.header(h::CONTENT_TYPE),
        Some(ContentType::Avro.as_str())
    );
    let Payload::Created(p) = &event.payload else {
        panic!("expected task.created, got {:?}", event.payload)
    };
    assert_eq!(p.task_id, task["id"].as_i64().unwrap());
    assert_eq!(p.title, "avro via dapr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_sidecar_down_writes_succeed_and_the_outbox_drains_when_it_returns() {
    // Arrange
    let (app, mut dapr) = behind_a_sidecar(|_| {}).await;
    app.create_task("before").await;
    app.expect_events(1).await;

    // Act: the sidecar is killed; writes go on; it comes back.
    dapr.kill();
    for i in 0..5 {
        app.create_task(&format!("while the sidecar is down {i}"))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = app.unpublished().await;
    dapr.restart().await;

    // Assert
    assert!(
        waiting > 0,
        "rows wait in the outbox while the sidecar is down"
    );
    let events = app.read_events(6, Duration::from_secs(60)).await;
    assert_eq!(
        events.len(),
        6,
        "every write published once the sidecar is back"
    );
    assert_eq!(app.unpublished().await, 0);
}
