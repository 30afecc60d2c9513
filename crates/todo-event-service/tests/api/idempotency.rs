use todo_events::TaskStatus;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_delivered_three_times_once_across_a_restart_has_one_effect() {
    // Arrange: the notifier is on, so the effect outside Postgres is counted too.
    let h = Harness::new().await;
    let hook = Receiver::start(0).await;
    let url = hook.url.clone();
    let with_hook = move |c: &mut todo_event_service::Config| c.webhooks.urls = vec![url.clone()];
    let svc = h.spawn_with(with_hook.clone()).await;
    let create = created(5, Some(1), 0, "once");
    let complete = completed(5, Some(2), 30);

    // Act: delivered twice to the running service (a producer retry)...
    h.produce(&[create.clone(), complete.clone()]).await;
    h.produce(&[create.clone(), complete.clone()]).await;
    h.wait_for("SELECT count(*) FROM audit_log", 2).await;
    let first =
        todo_testkit::eventually(PATIENCE, || async { (hook.total() >= 1).then_some(()) }).await;
    assert!(first.is_some(), "the webhook is sent");
    svc.stop().await;

    // ...and a third time to a restarted service that has lost its offsets
    // (new group: it reads every record again), then a marker event.
    let restarted = h
        .spawn_with(move |c| {
            with_hook(c);
            c.consumer.client.group_id = format!("{}-again", c.consumer.client.group_id);
        })
        .await;
    h.produce(&[updated(6, Some(1), 40, "marker", TaskStatus::Incomplete)])
        .await;
    h.wait_for("SELECT count(*) FROM audit_log WHERE task_id = 6", 1)
        .await;
    // Every copy was read again and processed.
    h.wait_all_committed(&format!("{}-again", h.group)).await;
    let _ = &restarted;

    // Assert: one effect each.
    assert_eq!(
        h.scalar("SELECT count(*) FROM audit_log WHERE task_id = 5")
            .await,
        2
    );
    assert_eq!(h.scalar("SELECT count(*) FROM processed_events").await, 3);
    assert_eq!(
        h.scalar(
            "SELECT sum(count)::int8 FROM event_counts_hourly WHERE event_type = 'task.created'"
        )
        .await,
        1
    );
    assert_eq!(
        h.scalar(
            "SELECT sum(count)::int8 FROM event_counts_hourly WHERE event_type = 'task.completed'"
        )
        .await,
        1
    );
    assert_eq!(h.scalar("SELECT count(*) FROM task_completions").await, 1);
    let per_event = hook.per_event();
    assert_eq!(
        per_event.get(&complete.event_id.to_string()),
        Some(&1),
        "one webhook: {per_event:?}"
    );
    assert_eq!(hook.total(), 1);
}
