//! Changes to tasks an instance wrote recently skip the read before the
//! write (`service::recent_tasks`). Two instances on one database make the
//! remembered state stale; every answer and event must still be the
//! database's.

use serde_json::{json, Value};
use todo_events::Payload;
use todo_testkit::Stack;

use crate::helpers::{start, test_config, TestApp};

/// Two backend instances on one database and one set of topics.
async fn two_instances() -> (TestApp, TestApp) {
    let stack = Stack::from_env();
    let db = stack.fresh_database().await.unwrap();
    let prefix = stack.unique_topic_prefix();
    let config = || {
        let mut c = test_config(&stack, &db, &prefix);
        c.task_cache_bytes = 32 << 20;
        c
    };
    let first = start(stack.clone(), config()).await;
    let second = start(stack.clone(), config()).await;
    (first, second)
}

/// `task_cache_lookups_total{result}` of `app`, 0 when not yet exported.
async fn lookups(app: &TestApp, result: &str) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let series = format!("task_cache_lookups_total{{result=\"{result}\"}}");
    todo_testkit::metric_value(&metrics, &series).unwrap_or(0.0)
}

#[tokio::test]
async fn a_change_to_a_task_just_written_starts_from_the_state_written_not_from_a_read() {
    let (first, _second) = two_instances().await;
    let id = first.create_task("draft").await["id"].as_i64().unwrap();
    // No writer changes a row without a new version; doing it here shows
    // which state the next change started from.
    sqlx::query("UPDATE tasks SET description = 'behind the version' WHERE id = $1")
        .bind(id)
        .execute(&first.pool)
        .await
        .unwrap();

    let resp = first.post_empty(&format!("/tasks/{id}/complete")).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["version"], 2);
    assert_eq!(
        body["description"],
        Value::Null,
        "the change started from the task as written, without reading it"
    );
    assert!(lookups(&first, "hit").await >= 1.0);
}

#[tokio::test]
async fn a_task_changed_by_another_instance_is_read_again_and_changed_from_its_real_state() {
    let (first, second) = two_instances().await;
    let id = first.create_task("v1").await["id"].as_i64().unwrap();
    let path = format!("/tasks/{id}");
    // `first` remembers version 1; `second` moves the row to version 2.
    let resp = second
        .put_json(
            &path,
            &json!({ "title": "v2 by second", "description": "kept" }),
        )
        .await;
    assert_eq!(resp.status(), 200);

    let resp = first.post_empty(&format!("{path}/complete")).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["version"], 3, "written on top of the second's change");
    assert_eq!(body["title"], "v2 by second", "not the remembered title");
    assert_eq!(body["description"], "kept");
    assert_eq!(body["status"], "complete");
    // The counters are the test process's, shared by every test in it.
    assert!(lookups(&first, "stale").await >= 1.0);
    let events = first.expect_events(3).await;
    // One topic per event type: sort, since topics interleave in any order.
    let mut versions: Vec<_> = events
        .iter()
        .map(|(_, e)| e.payload.task_version())
        .collect();
    versions.sort();
    assert_eq!(versions, [Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn an_update_that_looks_like_no_change_from_a_stale_task_is_checked_and_written() {
    let (first, second) = two_instances().await;
    let id = first.create_task("same").await["id"].as_i64().unwrap();
    let path = format!("/tasks/{id}");
    let resp = second.put_json(&path, &json!({ "title": "other" })).await;
    assert_eq!(resp.status(), 200);

    // Against the remembered version 1 this changes nothing; against the row
    // (version 2, "other") it is a change.
    let resp = first.put_json(&path, &json!({ "title": "same" })).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["title"].as_str(), body["version"].as_i64()),
        (Some("same"), Some(3))
    );
    let events = first.expect_events(3).await;
    let last = events
        .iter()
        .find_map(|(_, e)| match &e.payload {
            Payload::Updated(p) if p.task_version == Some(3) => Some(p),
            _ => None,
        })
        .expect("task.updated at version 3");
    assert_eq!(last.title, "same");
    assert!(last.changes.title);
    assert_eq!(first.outbox_count().await, 3);
}

#[tokio::test]
async fn a_task_deleted_by_another_instance_is_404_and_writes_nothing() {
    let (first, second) = two_instances().await;
    let id = first.create_task("doomed").await["id"].as_i64().unwrap();
    let path = format!("/tasks/{id}");
    assert_eq!(second.delete(&path).await.status(), 204);

    let resp = first.put_json(&path, &json!({ "title": "too late" })).await;

    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(first.outbox_count().await, 2, "created and deleted only");
    assert_eq!(first.task_count().await, 0);
}
