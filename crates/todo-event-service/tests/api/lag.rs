//! `consumer_lag_seconds`: the age of the oldest record not yet processed.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use todo_event_service::metrics::CONSUMER_LAG_SECONDS;
use todo_events::{ContentType, Event, EventType};

use crate::helpers::{created, Harness, TestService, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_in_seconds_shows_the_age_of_a_backlog_written_while_stopped_then_falls_to_zero() {
    // Arrange: the group commits one event of partition 0, and the service stops.
    let h = Harness::new().await;
    let topic = h.topic(EventType::Created);
    let svc = h.spawn().await;
    produce_to_partition_0(&h, &created(40, Some(1), 0, "before")).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    h.wait_all_committed(&h.group).await;
    svc.stop().await;
    // Written while it is stopped: a record Postgres refuses (a NUL in the
    // title), whose retries hold the partition for at least 3 s, then a good one.
    produce_to_partition_0(&h, &created(41, Some(1), 0, "nul \u{0} inside")).await;
    produce_to_partition_0(&h, &created(42, Some(1), 0, "after")).await;
    // The backlog is at least this old when the service starts again.
    let age = Duration::from_secs(3);
    tokio::time::sleep(age).await;

    // Act
    let svc = h
        .spawn_with(|c| {
            c.retry.attempts = 4;
            c.retry.base_ms = 2_000;
            c.retry.cap_ms = 2_000;
        })
        .await;

    // Assert: the backlog's age shows while the service works through it...
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
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    assert_eq!(h.dlq(1, PATIENCE).await.len(), 1, "the refused record");
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

async fn produce_to_partition_0(h: &Harness, event: &Event) {
    let value = event.encode(ContentType::Json).unwrap();
    let mut headers = OwnedHeaders::new();
    for (k, v) in &event.headers(ContentType::Json) {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let key = event.key();
    let topic = h.topic(event.event_type());
    let record = FutureRecord::to(&topic)
        .partition(0)
        .key(key.as_bytes())
        .payload(&value)
        .headers(headers);
    h.producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produced");
}

/// The service's `consumer_lag_seconds` of one partition, if it has a sample.
async fn lag_seconds(svc: &TestService, topic: &str, partition: i32) -> Option<f64> {
    let text = svc.get("/metrics").await.text().await.ok()?;
    let (topic, partition) = (
        format!("topic=\"{topic}\""),
        format!("partition=\"{partition}\""),
    );
    text.lines()
        .filter(|l| l.starts_with(&format!("{CONSUMER_LAG_SECONDS}{{")))
        .find(|l| l.contains(&topic) && l.contains(&partition))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
