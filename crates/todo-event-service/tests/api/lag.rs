//! `consumer_lag_seconds`: the age of the oldest record not yet processed.

use std::time::Duration;

use todo_event_service::metrics::CONSUMER_LAG_SECONDS;
use todo_events::EventType;

use crate::helpers::{created, Harness, TestService, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_in_seconds_shows_the_age_of_a_backlog_written_while_stopped_then_falls_to_zero() {
    // Arrange: the group commits one event of partition 0, and the service stops.
    let h = Harness::new().await;
    let topic = h.topic(EventType::Created);
    let svc = h.spawn().await;
    h.produce_to_partition_0(&created(40, Some(1), 0, "before"))
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    h.wait_all_committed(&h.group).await;
    svc.stop().await;
    // Written while it is stopped; a lock held on the idempotency table keeps
    // the restarted service from applying them until it is released.
    h.produce_to_partition_0(&created(41, Some(1), 0, "first"))
        .await;
    h.produce_to_partition_0(&created(42, Some(1), 0, "after"))
        .await;
    let mut lock = h.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    // The backlog is at least this old when the service starts again.
    let age = Duration::from_secs(3);
    tokio::time::sleep(age).await;

    // Act
    let svc = h.spawn().await;

    // Assert: the backlog's age shows while the service is held...
    let behind = todo_testkit::eventually(PATIENCE, || async {
        lag_seconds(&svc, &topic, 0)
            .await
            .filter(|s| *s >= age.as_secs_f64() - 0.1)
    })
    .await;
    assert!(
        behind.is_some(),
        "{CONSUMER_LAG_SECONDS} of partition 0 never showed the backlog's age (last: {:?})",
        lag_seconds(&svc, &topic, 0).await
    );
    // ...and falls to about 0 once it has caught up.
    lock.rollback().await.unwrap();
    h.wait_for("SELECT count(*) FROM processed_events", 3).await;
    let caught_up = todo_testkit::eventually(PATIENCE, || async {
        lag_seconds(&svc, &topic, 0).await.filter(|s| *s < 0.5)
    })
    .await;
    assert!(
        caught_up.is_some(),
        "{CONSUMER_LAG_SECONDS} of partition 0 stayed at {:?} after catching up",
        lag_seconds(&svc, &topic, 0).await
    );
}

/// The service's `consumer_lag_seconds` of one partition, if it has a sample.
async fn lag_seconds(svc: &TestService, topic: &str, partition: i32) -> Option<f64> {
    svc.partition_gauge(CONSUMER_LAG_SECONDS, topic, partition)
        .await
}
