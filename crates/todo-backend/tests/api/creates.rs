//! Group commit of new tasks: concurrent creates share statements and
//! commits, and each still gets its own task, its own event and its own
//! outcome.

use std::collections::HashSet;

use serde_json::json;
use todo_backend::domain::{now, Task, TaskTitle};
use todo_backend::outbox::{payloads, EventWriter};
use todo_backend::store::insert_batcher::write_all;
use todo_events::{ContentType, EventVersion, Payload};
use uuid::Uuid;

use crate::helpers::spawn_app;

#[tokio::test]
async fn concurrent_creates_each_get_their_task_and_exactly_one_event() {
    let app = spawn_app().await;

    let responses = futures::future::join_all((0..200).map(|i| {
        let app = &app;
        async move {
            let resp = app
                .post_json("/tasks", &json!({ "title": format!("task {i}") }))
                .await;
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        }
    }))
    .await;

    assert!(
        responses.iter().all(|(s, _)| *s == 201),
        "every create is 201"
    );
    let ids: HashSet<i64> = responses
        .iter()
        .map(|(_, b)| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 200, "200 distinct ids");
    for (_, body) in &responses {
        let stored: serde_json::Value = app
            .get(&format!("/tasks/{}", body["id"]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(&stored, body, "the response is what was stored");
    }
    let events = app.expect_events(200).await;
    let event_ids: HashSet<i64> = events
        .iter()
        .map(|(_, e)| match &e.payload {
            Payload::Created(p) => p.task_id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(event_ids, ids, "one task.created per task");
    assert_eq!(app.outbox_count().await, 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(
        value("task_create_batch_size_sum") > value("task_create_batch_size_count"),
        "some creates shared a statement"
    );
}

#[tokio::test]
async fn a_batch_with_a_bad_row_writes_the_others_and_fails_only_that_one() {
    // Arrange: three new tasks, the middle one reusing an existing id.
    let app = spawn_app().await;
    let existing = app.create_task("already here").await["id"]
        .as_i64()
        .unwrap();
    let writer = EventWriter::new(
        true,
        EventVersion::V2,
        ContentType::Json,
        app.topics.clone(),
    );
    let title = TaskTitle::parse("new").unwrap();
    let items: Vec<_> = [existing + 1_000, existing, existing + 1_001]
        .into_iter()
        .map(|id| {
            let task = Task::new(id, &title, None, None, now());
            let event = writer
                .prepare(payloads::created(&task), Uuid::new_v4())
                .unwrap();
            (task, event)
        })
        .collect();

    // Act
    let results = write_all(&app.pool, &items).await;

    // Assert
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "the duplicate id fails");
    assert_eq!(app.task_count().await, 3);
    assert_eq!(app.outbox_count().await, 3, "no event for the failed task");
}
