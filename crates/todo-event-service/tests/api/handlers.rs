use serde_json::Value;
use todo_events::{EventType, TaskStatus};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_in_the_audit_log_with_where_it_was_read_from() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;
    let events = vec![
        created(11, Some(1), 0, "write tests"),
        updated(11, Some(2), 10, "write more tests", TaskStatus::Incomplete),
        completed(11, Some(3), 20),
        deleted(11, Some(4), 30),
    ];

    // Act
    for e in &events {
        h.produce(std::slice::from_ref(e)).await;
    }
    h.wait_for("SELECT count(*) FROM audit_log WHERE task_id = 11", 4)
        .await;

    // Assert
    let audit = svc.get_json("/audit/tasks/11").await;
    let entries = audit["events"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "task.created",
            "task.updated",
            "task.completed",
            "task.deleted"
        ]
    );
    for (entry, event) in entries.iter().zip(&events) {
        assert_eq!(entry["event_id"], event.event_id.to_string());
        assert_eq!(entry["correlation_id"], event.correlation_id.to_string());
        assert_eq!(entry["topic"], h.topic(event.event_type()));
        assert!(entry["partition"].as_i64().unwrap() >= 0);
        assert_eq!(
            entry["offset"], 0,
            "one record per topic, so each is at offset 0"
        );
        let ts: chrono::DateTime<chrono::Utc> =
            entry["event_timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(ts, event.timestamp);
        assert!(entry["processed_at"].is_string());
        assert_eq!(entry["event"]["payload"]["task_id"], 11);
    }
    let recent: Vec<Value> = svc
        .get_json("/events?limit=2")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(recent.len(), 2);
    assert_eq!(svc.get("/audit/tasks/999").await.status(), 404);
    assert_eq!(svc.get("/events?limit=0").await.status(), 400);
    let bad = svc.get("/audit/tasks/abc").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_projection_holds_each_tasks_latest_state_and_a_tombstone_after_delete() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;

    // Act
    h.produce(&[created(1, Some(1), 0, "one"), created(2, Some(1), 0, "two")])
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    h.produce(&[
        updated(1, Some(2), 5, "one, renamed", TaskStatus::Incomplete),
        completed(2, Some(2), 6),
    ])
    .await;
    h.wait_for("SELECT count(*) FROM processed_events", 4).await;
    h.produce(&[deleted(2, Some(3), 7)]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 5).await;

    // Assert
    let one = svc.get_json("/audit/tasks/1").await["current"].clone();
    assert_eq!(one["title"], "one, renamed");
    assert_eq!(one["description"], "details");
    assert_eq!(one["status"], "incomplete");
    assert_eq!(one["user_id"], "alice");
    assert_eq!(one["deleted"], false);
    assert_eq!(one["task_version"], 2);
    let two = svc.get_json("/audit/tasks/2").await["current"].clone();
    assert_eq!(two["status"], "complete");
    assert_eq!(two["deleted"], true, "a delete leaves a tombstone");
    assert_eq!(two["title"], "two");
    assert!(two["deleted_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_count_events_per_type_and_hour_and_time_to_completion() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;

    // Act: two tasks created at t=0, completed after 60 s and 180 s; one more
    // created an hour later.
    h.produce(&[
        created(1, Some(1), 0, "a"),
        created(2, Some(1), 0, "b"),
        completed(1, Some(2), 60),
        completed(2, Some(2), 180),
        created(3, Some(1), 3_600, "c"),
    ])
    .await;
    h.wait_for("SELECT count(*) FROM processed_events", 5).await;

    // Assert
    let s = svc.get_json("/analytics/summary?hours=24").await;
    assert_eq!(s["totals"]["task.created"], 3);
    assert_eq!(s["totals"]["task.completed"], 2);
    let hourly = s["hourly"].as_array().unwrap();
    let created_per_hour: Vec<i64> = hourly
        .iter()
        .filter(|r| r["event_type"] == "task.created")
        .map(|r| r["count"].as_i64().unwrap())
        .collect();
    assert_eq!(created_per_hour, [1, 2], "newest hour first: 1 then 2");
    assert_eq!(s["completion"]["completed_tasks"], 2);
    assert_eq!(s["completion"]["mean_seconds"], 120.0);
    assert_eq!(s["completion"]["max_seconds"], 180.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_are_committed_after_processing_up_to_the_last_record() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;
    let events: Vec<_> = (1..=30).map(|id| created(id, Some(1), 0, "t")).collect();

    // Act
    h.produce(&events).await;
    h.wait_for("SELECT count(*) FROM processed_events", 30)
        .await;

    // Assert: every partition's committed offset reaches its high watermark
    // (the next offset to read: last processed + 1).
    let created_topic = h.topic(EventType::Created);
    let ok = todo_testkit::eventually(PATIENCE, || async {
        let rows = h.committed_and_high().await;
        let mine: Vec<_> = rows.into_iter().filter(|r| r.0 == created_topic).collect();
        mine.iter()
            .all(|(_, _, committed, high)| *high == 0 || *committed == Some(*high))
            .then_some(mine)
    })
    .await;
    let rows = ok.expect("committed offsets reach the high watermarks");
    assert_eq!(rows.iter().map(|r| r.3).sum::<i64>(), 30);

    let metrics = svc.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("events_consumed_total{event_type=\"task.created\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("event_processing_duration_seconds_bucket"));
    assert!(metrics.contains("event_delivery_duration_seconds_bucket"));
    let lag_line = format!("consumer_lag{{topic=\"{created_topic}\",partition=\"0\"}} 0");
    let lag_zero = todo_testkit::eventually(PATIENCE, || async {
        let m = svc.get("/metrics").await.text().await.ok()?;
        m.contains(&lag_line).then_some(())
    })
    .await;
    assert!(
        lag_zero.is_some(),
        "consumer lag of a drained partition is sampled as 0"
    );
    let ready = svc.get("/ready").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_path_is_a_404_problem_document() {
    let h = Harness::new().await;
    let svc = h.spawn().await;

    let resp = svc.get("/no/such/path").await;

    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "urn:todo:problem:not-found");
    svc.stop().await;
}
