//! The service killed with SIGKILL mid-backlog: after a restart nothing is
//! lost and nothing has a double effect.

use std::process::{Child, Command};

use todo_events::{Event, TaskStatus};

use crate::helpers::*;

fn start_process(h: &Harness) -> Child {
    h.start_process(&[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_killed_mid_backlog_loses_nothing_and_doubles_nothing_after_restart() {
    // Arrange: a backlog of 6000 events.
    let h = Harness::new().await;
    let events: Vec<Event> = (1..=2_000)
        .flat_map(|id| {
            [
                created(id, Some(1), 0, "t"),
                updated(id, Some(2), 5, "t2", TaskStatus::Incomplete),
                completed(id, Some(3), 9),
            ]
        })
        .collect();
    h.produce(&events).await;

    // Act: kill -9 once some, not all, of it is processed; then restart.
    let mut first = start_process(&h);
    let started = todo_testkit::eventually(PATIENCE, || async {
        let n = h.processed().await;
        (n >= 300).then_some(n)
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let at_kill = h.processed().await;
    assert!(
        started.is_some() && at_kill < 6_000,
        "killed mid-backlog ({at_kill} processed)"
    );
    let mut second = start_process(&h);

    // Assert
    h.wait_for("SELECT count(*) FROM processed_events", 6_000)
        .await;
    h.wait_all_committed(&h.group).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(h.scalar("SELECT count(*) FROM audit_log").await, 6_000);
    assert_eq!(
        h.scalar("SELECT sum(count)::int8 FROM event_counts_hourly")
            .await,
        6_000
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM task_completions").await,
        2_000
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM task_projection WHERE status = 'complete' AND title = 't2'")
            .await,
        2_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sigterm_the_service_drains_commits_its_offsets_and_exits_cleanly() {
    // Arrange: periodic commits off in effect (10 min), so only the shutdown
    // commit can move the group's offsets.
    let h = Harness::new().await;
    let events: Vec<Event> = (1..=300).map(|id| created(id, Some(1), 0, "t")).collect();
    h.produce(&events).await;
    let mut service = h.start_process(&[("KAFKA_AUTO_COMMIT_INTERVAL_MS", "600000")]);
    h.wait_for("SELECT count(*) FROM processed_events", 300)
        .await;
    let before: i64 = h
        .committed_and_high()
        .await
        .iter()
        .filter_map(|r| r.2)
        .sum();

    // Act
    let pid = service.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || service.wait())
        .await
        .unwrap()
        .unwrap();

    // Assert
    assert!(exit.success(), "a clean exit on SIGTERM: {exit:?}");
    assert_eq!(before, 0, "nothing was committed before the shutdown");
    let rows = h.committed_and_high().await;
    for (topic, partition, committed, high) in &rows {
        if *high > 0 {
            assert_eq!(
                committed,
                &Some(*high),
                "{topic}/{partition} committed on shutdown"
            );
        }
    }
}
