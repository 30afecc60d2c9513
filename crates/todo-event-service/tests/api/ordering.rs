use todo_events::TaskStatus;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_that_overtake_each_other_across_topics_end_in_the_right_state() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;

    // Act: the update, then the completion, are read before the create.
    h.produce(&[updated(9, Some(2), 10, "renamed", TaskStatus::Incomplete)])
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    h.produce(&[completed(9, Some(3), 20)]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    h.produce(&[created(9, Some(1), 0, "original")]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 3).await;

    // Assert
    let audit = svc.get_json("/audit/tasks/9").await;
    let current = &audit["current"];
    assert_eq!(
        current["title"], "renamed",
        "the older create does not overwrite the update"
    );
    assert_eq!(current["status"], "complete");
    assert_eq!(current["task_version"], 3);
    assert!(current["created_at"].is_string());
    let types: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["task.created", "task.updated", "task.completed"],
        "history in the order things happened"
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM task_completions WHERE task_id = 9")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_events_without_a_task_version_are_ordered_by_their_time() {
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;

    // Act: a v1 completion at t=20 arrives before a v1 update from t=10 that
    // still says incomplete, and before the create.
    h.produce(&[v1(completed(4, None, 20))]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    h.produce(&[v1(updated(4, None, 10, "v1 title", TaskStatus::Incomplete))])
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    h.produce(&[v1(created(4, None, 0, "first"))]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 3).await;

    // Assert
    let current = svc.get_json("/audit/tasks/4").await["current"].clone();
    assert_eq!(current["status"], "complete");
    assert_eq!(current["title"], "v1 title");
    assert!(current["task_version"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_read_before_the_create_still_leaves_a_tombstone() {
    let h = Harness::new().await;
    let svc = h.spawn().await;

    h.produce(&[deleted(3, Some(2), 10)]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    h.produce(&[created(3, Some(1), 0, "gone")]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;

    let current = svc.get_json("/audit/tasks/3").await["current"].clone();
    assert_eq!(current["deleted"], true);
    assert_eq!(current["title"], "gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tasks_events_split_across_partitions_of_one_topic_still_end_in_the_right_state() {
    // Arrange: as when two publishers hash the task's key differently (direct
    // Kafka and Dapr): its newer update on partition 0, its older on partition 1.
    let h = Harness::new().await;
    let _svc = h.spawn().await;
    h.produce(&[created(90, Some(1), 0, "one")]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;

    // Act: the newer change is processed first.
    h.produce_to_partition(
        &updated(90, Some(3), 30, "three", TaskStatus::Incomplete),
        0,
    )
    .await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    h.produce_to_partition(&updated(90, Some(2), 20, "two", TaskStatus::Incomplete), 1)
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 3).await;

    // Assert
    let (title, version): (String, i64) =
        sqlx::query_as("SELECT title, task_version FROM task_projection WHERE task_id = 90")
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!((title.as_str(), version), ("three", 3));
    assert_eq!(
        h.scalar("SELECT count(DISTINCT kafka_partition) FROM audit_log WHERE task_id = 90 AND event_type = 'task.updated'")
            .await,
        2
    );
}
