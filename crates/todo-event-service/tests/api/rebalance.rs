use todo_events::{Event, TaskStatus};

use crate::helpers::*;

fn wave(ids: std::ops::Range<i64>) -> Vec<Event> {
    ids.flat_map(|id| {
        [
            created(id, Some(1), 0, "t"),
            updated(id, Some(2), 5, "t2", TaskStatus::Incomplete),
        ]
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_in_one_group_share_the_partitions_and_a_leaving_one_loses_nothing() {
    // Arrange: one instance, then a second joins the group.
    let h = Harness::new().await;
    let a = h.spawn().await;
    h.produce(&wave(1..101)).await;
    let b = h.spawn().await;

    // Act: events keep coming while the group rebalances, then `a` leaves.
    h.produce(&wave(101..201)).await;
    h.wait_for("SELECT count(*) FROM processed_events", 400)
        .await;
    h.produce(&wave(201..301)).await;
    a.stop().await;
    h.produce(&wave(301..401)).await;

    // Assert: all 800 events processed exactly once, every offset committed.
    h.wait_for("SELECT count(*) FROM processed_events", 800)
        .await;
    h.wait_all_committed(&h.group).await;
    assert_eq!(h.scalar("SELECT count(*) FROM audit_log").await, 800);
    assert_eq!(
        h.scalar("SELECT sum(count)::int8 FROM event_counts_hourly")
            .await,
        800
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM task_projection WHERE title = 't2'")
            .await,
        400
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_revoked_in_a_rebalance_are_committed_before_they_move() {
    // Arrange: periodic commits off in effect (10 min), so only a revoke (or a
    // shutdown) can move the group's offsets.
    let h = Harness::new().await;
    let no_periodic_commits =
        |c: &mut todo_event_service::Config| c.consumer.client.auto_commit_interval_ms = 600_000;
    let a = h.spawn_with(no_periodic_commits).await;
    h.produce(&wave(1..151)).await;
    h.wait_for("SELECT count(*) FROM processed_events", 300)
        .await;
    let committed =
        |rows: Vec<(String, i32, Option<i64>, i64)>| rows.iter().filter_map(|r| r.2).sum::<i64>();
    assert_eq!(
        committed(h.committed_and_high().await),
        0,
        "nothing committed yet"
    );

    // Act: a second instance joins; some of `a`'s partitions move to it.
    let b = h.spawn_with(no_periodic_commits).await;

    // Assert: `a` committed what it had processed before giving partitions up.
    let moved = todo_testkit::eventually(PATIENCE, || async {
        let n = committed(h.committed_and_high().await);
        (n > 0).then_some(n)
    })
    .await;
    assert!(moved.is_some(), "offsets committed on revoke");
    // And nothing is processed twice when work continues on both.
    h.produce(&wave(151..201)).await;
    h.wait_for("SELECT count(*) FROM processed_events", 400)
        .await;
    assert_eq!(
        h.scalar("SELECT sum(count)::int8 FROM event_counts_hourly")
            .await,
        400
    );
    b.stop().await;
    a.stop().await;
    h.wait_all_committed(&h.group).await;
}
