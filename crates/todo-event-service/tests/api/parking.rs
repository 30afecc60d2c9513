//! Per-key parking: a failing key waits alone; the rest of its partition flows.
//!
//! The failure is made in the database itself: a trigger on `audit_log`
//! refuses the events listed in `test_poison` (a handler error, not an
//! outage), until the test deletes them from the list.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use todo_event_service::metrics::{OLDEST_PARKED_AGE_SECONDS, PARKED_KEYS};
use todo_events::{headers, Event, EventType, TaskStatus};
use uuid::Uuid;

use crate::helpers::*;

const A: i64 = 50;
const B: i64 = 51;

/// Installs the trigger that refuses the events listed in `test_poison`.
async fn install_poison(h: &Harness) {
    for sql in [
        "CREATE TABLE test_poison (event_id uuid PRIMARY KEY)",
        "CREATE FUNCTION test_poison_check() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT 1 FROM test_poison WHERE event_id = NEW.event_id) THEN
             RAISE EXCEPTION 'event % is poisoned for this test', NEW.event_id;
           END IF;
           RETURN NEW;
         END $$",
        "CREATE TRIGGER test_poison BEFORE INSERT ON audit_log
         FOR EACH ROW EXECUTE FUNCTION test_poison_check()",
    ] {
        sqlx::query(sql).execute(&h.pool).await.unwrap();
    }
}

async fn poison(h: &Harness, e: &Event) {
    sqlx::query("INSERT INTO test_poison VALUES ($1)")
        .bind(e.event_id)
        .execute(&h.pool)
        .await
        .unwrap();
}

async fn processed(h: &Harness, e: &Event) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1")
        .bind(e.event_id)
        .fetch_one(&h.pool)
        .await
        .unwrap();
    n == 1
}

/// Samples task A's projected version until dropped.
fn watch_version(h: &Harness) -> (Arc<Mutex<Vec<i64>>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let (pool, out) = (h.pool.clone(), seen.clone());
    let task = tokio::spawn(async move {
        loop {
            let v: Option<i64> =
                sqlx::query_scalar("SELECT task_version FROM task_projection WHERE task_id = $1")
                    .bind(A)
                    .fetch_optional(&pool)
                    .await
                    .ok()
                    .flatten()
                    .flatten();
            if let Some(v) = v {
                out.lock().unwrap().push(v);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_key_parks_alone_survives_a_kill_and_is_released_in_order() {
    // Arrange: A and B created; A1 will fail until its poison is cleared.
    let h = Harness::new().await;
    install_poison(&h).await;
    let env = [
        ("RETRY_ATTEMPTS", "1000"),
        ("RETRY_BASE_MS", "100"),
        ("RETRY_CAP_MS", "300"),
    ];
    let mut first = h.start_process(&env);
    h.produce(&[created(A, Some(1), 0, "a"), created(B, Some(1), 0, "b")])
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    let a1 = updated(A, Some(2), 10, "a1", TaskStatus::Incomplete);
    let a2 = updated(A, Some(3), 20, "a2", TaskStatus::Incomplete);
    let b1 = updated(B, Some(2), 10, "b1", TaskStatus::Incomplete);
    poison(&h, &a1).await;
    let (versions, watcher) = watch_version(&h);

    // Act 1: A1, A2 and B1 on the same partition, in that order.
    for e in [&a1, &a2, &b1] {
        h.produce_to_partition_0(e).await;
    }

    // Assert 1: B1 flows past the parked A1 and A2; the offsets move past all three.
    let b1_done = todo_testkit::eventually(PATIENCE, || async {
        processed(&h, &b1).await.then_some(())
    })
    .await;
    assert!(b1_done.is_some(), "B1 was not processed while A was parked");
    h.wait_for("SELECT count(*) FROM parked_events", 2).await;
    assert!(!processed(&h, &a1).await && !processed(&h, &a2).await);
    h.wait_all_committed(&h.group).await;

    // Act 2: SIGKILL while A1 is parked; restart; then A1 stops failing.
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let mut second = h.start_process(&env);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !processed(&h, &a2).await,
        "A2 waits behind A1 after the restart"
    );
    sqlx::query("DELETE FROM test_poison")
        .execute(&h.pool)
        .await
        .unwrap();

    // Assert 2: A1 then A2, once each; nothing lost, nothing left parked.
    h.wait_for("SELECT count(*) FROM processed_events", 5).await;
    h.wait_for("SELECT count(*) FROM parked_events", 0).await;
    second.kill().unwrap();
    second.wait().unwrap();
    watcher.abort();
    let order: Vec<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM audit_log WHERE task_id = $1 ORDER BY processed_at, id",
    )
    .bind(A)
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert_eq!(order.len(), 3, "A's three events, each applied once");
    assert_eq!(&order[1..], &[a1.event_id, a2.event_id], "A1 before A2");
    assert_eq!(h.scalar("SELECT count(*) FROM audit_log").await, 5);
    let title: String = sqlx::query_scalar("SELECT title FROM task_projection WHERE task_id = $1")
        .bind(A)
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(title, "a2");
    // (The watcher's last sample may predate the last change: the final
    // version is read once more.)
    let versions = versions.lock().unwrap().clone();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "A's projected version only rises: {versions:?}"
    );
    let last: i64 =
        sqlx::query_scalar("SELECT task_version FROM task_projection WHERE task_id = $1")
            .bind(A)
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!(last, 3);
    assert!(h.dlq(1, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parked_event_out_of_attempts_is_dead_lettered_and_its_keys_next_events_follow() {
    // Arrange: A1 always fails; 3 attempts.
    let h = Harness::new().await;
    install_poison(&h).await;
    let svc = h
        .spawn_with(|c| {
            c.retry.attempts = 3;
            c.retry.base_ms = 300;
            c.retry.cap_ms = 300;
        })
        .await;
    let a1 = updated(A, Some(2), 10, "a1", TaskStatus::Incomplete);
    let a2 = updated(A, Some(3), 20, "a2", TaskStatus::Incomplete);
    poison(&h, &a1).await;
    let topic = h.topic(EventType::Updated);

    // Act
    h.produce_to_partition_0(&a1).await;
    h.produce_to_partition_0(&a2).await;

    // Assert: while parked, the gauges show it...
    let parked = todo_testkit::eventually(PATIENCE, || async {
        svc.partition_gauge(PARKED_KEYS, &topic, 0)
            .await
            .filter(|n| *n == 1.0)
    })
    .await;
    assert!(
        parked.is_some(),
        "{PARKED_KEYS} never showed the parked key"
    );
    // ...then A1 is dead-lettered with its attempts and first failure...
    let dlq = h.dlq(1, PATIENCE).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0].header(headers::EVENT_ID),
        Some(a1.event_id.to_string().as_str())
    );
    assert_eq!(
        dlq[0].header(headers::DLQ_ERROR_CLASS),
        Some("handler_failed")
    );
    assert_eq!(dlq[0].header(headers::DLQ_ATTEMPTS), Some("3"));
    let first: i64 = dlq[0]
        .header(headers::DLQ_FIRST_FAILED_AT)
        .unwrap()
        .parse()
        .unwrap();
    let last: i64 = dlq[0]
        .header(headers::DLQ_LAST_FAILED_AT)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last - first >= 300,
        "first failure {first}, last {last}: two waits apart"
    );
    // ...and A2 follows it; the lot is empty again.
    let a2_done = todo_testkit::eventually(PATIENCE, || async {
        processed(&h, &a2).await.then_some(())
    })
    .await;
    assert!(a2_done.is_some());
    h.wait_for("SELECT count(*) FROM parked_events", 0).await;
    let cleared = todo_testkit::eventually(PATIENCE, || async {
        let keys = svc.partition_gauge(PARKED_KEYS, &topic, 0).await?;
        let age = svc
            .partition_gauge(OLDEST_PARKED_AGE_SECONDS, &topic, 0)
            .await?;
        (keys == 0.0 && age == 0.0).then_some(())
    })
    .await;
    assert!(cleared.is_some(), "the parking gauges return to 0");
    // (The recorder is shared by the tests of this binary: counts only grow.)
    let metrics = svc.get("/metrics").await.text().await.unwrap();
    for outcome in ["dead_lettered", "applied"] {
        let line = format!("events_unparked_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
}
