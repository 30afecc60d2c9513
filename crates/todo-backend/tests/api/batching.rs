//! Group commit: concurrent writes share statements and commits, and each
//! still gets its own task, its own event and its own outcome.

use std::collections::HashSet;

use serde_json::json;
use todo_backend::domain::{now, Task, TaskTitle};
use todo_backend::outbox::{payloads, EventWriter, Origin};
use todo_backend::store::batched_reads::Reads;
use todo_backend::store::batched_writes::{Changes, Creates, Deletes};
use todo_backend::store::batcher::run_batch;
use todo_events::{ContentType, EventVersion, Payload};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

/// Encodes events the way the app does (v2, JSON, its topics).
fn event_writer(app: &TestApp) -> EventWriter {
    EventWriter::new(
        true,
        EventVersion::V2,
        ContentType::Json,
        app.topics.clone(),
    )
}

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
        todo_testkit::metric_value(&metrics, name).unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(
        value("task_write_batch_size_sum{op=\"create\"}")
            > value("task_write_batch_size_count{op=\"create\"}"),
        "some creates shared a statement"
    );
    assert!(
        metrics.contains("task_write_batch_size_bucket{op=\"create\",le=\"1\"}"),
        "batch sizes have buckets, as the dashboard's histogram_quantile needs"
    );
}

#[tokio::test]
async fn a_batch_with_a_bad_row_writes_the_others_and_fails_only_that_one() {
    // Arrange: three new tasks, the middle one reusing an existing id.
    let app = spawn_app().await;
    let existing = app.create_task("already here").await["id"]
        .as_i64()
        .unwrap();
    let writer = event_writer(&app);
    let title = TaskTitle::parse("new").unwrap();
    let items: Vec<_> = [existing + 1_000, existing, existing + 1_001]
        .into_iter()
        .map(|id| {
            let task = Task::new(id, &title, None, None, now());
            let event = writer
                .prepare(payloads::created(&task), Origin::untraced(Uuid::new_v4()))
                .unwrap();
            (task, event)
        })
        .collect();

    // Act
    let results = run_batch::<Creates>(&app.pool, &items).await;

    // Assert
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "the duplicate id fails");
    assert_eq!(app.task_count().await, 3);
    assert_eq!(app.outbox_count().await, 3, "no event for the failed task");
}

#[tokio::test]
async fn two_changes_to_one_task_in_one_batch_apply_the_first_and_report_the_second() {
    // Arrange: two changes computed from the same version of one task, and
    // one change to another task, in one batch.
    let app = spawn_app().await;
    let writer = event_writer(&app);
    let read = |id: i64| {
        let app = &app;
        async move {
            let v: serde_json::Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
            serde_json::from_value::<TaskJson>(v).unwrap().into_task()
        }
    };
    let a = app.create_task("a").await["id"].as_i64().unwrap();
    let b = app.create_task("b").await["id"].as_i64().unwrap();
    let (task_a, task_b) = (read(a).await, read(b).await);
    let change = |task: &Task, title: &str| {
        let after = task.changed(title, None, todo_events::TaskStatus::Incomplete, now());
        let event = writer
            .prepare(
                payloads::updated(task, &after),
                Origin::untraced(Uuid::new_v4()),
            )
            .unwrap();
        (after, event)
    };
    let items = vec![
        change(&task_a, "a, first"),
        change(&task_a, "a, second"),
        change(&task_b, "b, changed"),
    ];

    // Act
    let results: Vec<bool> = run_batch::<Changes>(&app.pool, &items)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // Assert
    assert_eq!(results, [true, false, true]);
    assert_eq!(read(a).await.title, "a, first");
    assert_eq!(read(a).await.version, 2);
    assert_eq!(read(b).await.title, "b, changed");
    assert_eq!(
        app.outbox_count().await,
        4,
        "two creates and two applied changes"
    );
}

#[tokio::test]
async fn a_delete_batch_deletes_the_tasks_still_at_their_version_only() {
    let app = spawn_app().await;
    let writer = event_writer(&app);
    let fresh = app.create_task("fresh").await["id"].as_i64().unwrap();
    let stale = app.create_task("stale").await["id"].as_i64().unwrap();
    app.put_json(&format!("/tasks/{stale}"), &json!({ "title": "moved on" }))
        .await;
    let delete = |id: i64, version: i64| {
        let task = Task::new(id, &TaskTitle::parse("x").unwrap(), None, None, now());
        let event = writer
            .prepare(
                payloads::deleted(&Task { version, ..task }, now()),
                Origin::untraced(Uuid::new_v4()),
            )
            .unwrap();
        (id, version, event)
    };

    let results: Vec<bool> = run_batch::<Deletes>(&app.pool, &[delete(fresh, 1), delete(stale, 1)])
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    assert_eq!(results, [true, false], "the stale version is not deleted");
    assert_eq!(app.get(&format!("/tasks/{fresh}")).await.status(), 404);
    assert_eq!(app.get(&format!("/tasks/{stale}")).await.status(), 200);
    assert_eq!(
        app.outbox_count().await,
        4,
        "two creates, one update, one delete"
    );
}

/// A task as the API returns it, back into the domain type.
#[derive(serde::Deserialize)]
struct TaskJson {
    id: i64,
    title: String,
    description: Option<String>,
    status: todo_events::TaskStatus,
    user_id: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    version: i64,
}

impl TaskJson {
    fn into_task(self) -> Task {
        let title = TaskTitle::parse(&self.title).unwrap();
        let mut task = Task::new(
            self.id,
            &title,
            None,
            self.user_id.as_deref(),
            self.created_at,
        );
        let changed = task.changed(
            &self.title,
            self.description.as_deref(),
            self.status,
            self.updated_at,
        );
        task = Task {
            completed_at: self.completed_at,
            version: self.version,
            ..changed
        };
        task
    }
}

#[tokio::test]
async fn a_read_batch_answers_each_request_in_order_and_within_its_users_scope() {
    // Arrange: a task without an owner and one of alice's.
    let app = spawn_app().await;
    let writer = event_writer(&app);
    let anyones = app.create_task("anyone's").await["id"].as_i64().unwrap();
    let alices = anyones + 1_000;
    let task = Task::new(
        alices,
        &TaskTitle::parse("alice's").unwrap(),
        None,
        Some("alice"),
        now(),
    );
    let event = writer
        .prepare(payloads::created(&task), Origin::untraced(Uuid::new_v4()))
        .unwrap();
    run_batch::<Creates>(&app.pool, &[(task, event)])
        .await
        .pop()
        .unwrap()
        .unwrap();
    let asks = [
        (alices, Some("bob".to_owned())),
        (alices, Some("alice".to_owned())),
        (anyones + 2_000, None),
        (anyones, None),
        (alices, None),
    ];

    // Act: one statement for all five.
    let found: Vec<Option<String>> = run_batch::<Reads>(&app.pool, &asks)
        .await
        .into_iter()
        .map(|r| r.unwrap().map(|t| t.title))
        .collect();

    // Assert
    let title = |t: &str| Some(t.to_owned());
    assert_eq!(
        found,
        [
            None,
            title("alice's"),
            None,
            title("anyone's"),
            title("alice's")
        ],
        "bob may not see alice's task; a missing id is None; no user sees all"
    );
}
