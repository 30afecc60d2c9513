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
