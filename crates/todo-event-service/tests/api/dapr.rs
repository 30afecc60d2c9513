//! `EVENT_SOURCE=dapr`: the events reach the service through a real daprd
//! (its subscription, raw payloads, in bulk or one record per request) and go
//! through the same pipeline.

use std::time::Duration;

use todo_event_service::config::EventSource;
use todo_events::{headers, ContentType, EventType, TaskStatus};
use todo_testkit::dapr::Sidecar;
use todo_testkit::process::{closed_port, Forwarder};

use crate::helpers::*;

fn port_of(svc: &TestService) -> u16 {
    svc.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The sidecar of the service at `svc`, in the harness's consumer group.
async fn sidecar(h: &Harness, svc: &TestService) -> Sidecar {
    Sidecar::builder("todo-event-service", port_of(svc), &h.stack.kafka_bootstrap)
        .consumer_group(h.group.clone())
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_the_sidecar_each_event_is_applied_once_in_order_and_poison_is_dead_lettered() {
    applied_once_in_order_and_poison_dead_lettered(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivered_one_record_per_request_each_event_is_applied_once_in_order_too() {
    applied_once_in_order_and_poison_dead_lettered(false).await;
}

/// Through a real daprd, in bulk deliveries or one record per request.
async fn applied_once_in_order_and_poison_dead_lettered(bulk: bool) {
    // Arrange
    let h = Harness::new().await;
    let svc = h
        .spawn_with(|c| {
            c.event_source = EventSource::Dapr;
            c.dapr.dapr_bulk_subscribe = bulk;
        })
        .await;
    let _dapr = sidecar(&h, &svc).await;
    let events = [
        created(70, Some(1), 0, "via dapr"),
        updated(70, Some(2), 10, "via dapr, renamed", TaskStatus::Incomplete),
        completed(70, Some(3), 20),
        deleted(70, Some(4), 30),
    ];

    // Act: every event once, the creation twice, and a record that is not an
    // event. One record per request carries no content-type header: Avro
    // records must still be read as Avro.
    let ct = if bulk {
        ContentType::Json
    } else {
        ContentType::Avro
    };
    h.produce_as(&events, ct).await;
    h.produce_as(&events[..1], ct).await;
    let created_topic = h.topic(EventType::Created);
    h.produce_raw(
        &created_topic,
        "71",
        b"{\"not\": \"an event\"}",
        vec![("content-type", "application/json")],
    )
    .await;

    // Assert
    h.wait_for("SELECT count(*) FROM processed_events", 4).await;
    h.wait_for("SELECT count(*) FROM audit_log WHERE task_id = 70", 4)
        .await;
    let audit = svc.get_json("/audit/tasks/70").await;
    let entries = audit["events"].as_array().unwrap();
    for (entry, event) in entries.iter().zip(&events) {
        assert_eq!(entry["event_id"], event.event_id.to_string());
        assert_eq!(entry["correlation_id"], event.correlation_id.to_string());
        assert_eq!(entry["topic"], h.topic(event.event_type()));
        assert!(
            entry["offset"].as_i64().unwrap() >= 0,
            "the record's own offset: {entry}"
        );
    }
    let projection: (String, bool, i64) = sqlx::query_as(
        "SELECT title, deleted, task_version FROM task_projection WHERE task_id = 70",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(projection, ("via dapr, renamed".to_owned(), true, 4));
    let dlq = h.dlq(1, PATIENCE).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0].header(headers::DLQ_ERROR_CLASS),
        Some("malformed_json")
    );
    assert_eq!(
        dlq[0].header(headers::DLQ_ORIGINAL_TOPIC),
        Some(created_topic.as_str())
    );
    let offset: i64 = dlq[0]
        .header(headers::DLQ_ORIGINAL_OFFSET)
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset >= 0, "the record's own offset");
    assert_eq!(dlq[0].key.as_deref(), Some("71"));
    assert!(
        h.dlq(2, Duration::from_secs(3)).await.len() == 1,
        "nothing else dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_database_is_down_deliveries_are_answered_retry_and_nothing_is_dead_lettered() {
    // Arrange: the service reaches its database through a forwarder the
    // test can take away.
    let h = Harness::new().await;
    let pg_port = closed_port();
    let real = h
        .database_url
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .unwrap();
    let via_forwarder = h
        .database_url
        .replacen(&real, &format!("127.0.0.1:{pg_port}"), 1);
    let forwarder = Forwarder::start(pg_port, real.clone()).await.unwrap();
    let svc = h
        .spawn_with(|c| {
            c.event_source = EventSource::Dapr;
            c.database_url = todo_runtime::Secret::new(&via_forwarder);
            c.database_acquire_timeout_ms = 500;
        })
        .await;
    let dapr = sidecar(&h, &svc).await;
    h.produce(&[created(80, Some(1), 0, "before")]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;

    // Act: the database goes away for the service; an event arrives; it comes back.
    drop(forwarder);
    h.produce(&[created(81, Some(1), 0, "during")]).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = h.processed().await;
    let _back = Forwarder::start(pg_port, real).await.unwrap();

    // Assert
    assert_eq!(during, 1, "nothing applied while the database was away");
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    assert!(
        h.dlq(1, Duration::from_secs(3)).await.is_empty(),
        "an outage is never the event's fault"
    );
    let metrics = svc.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("dependency_outage_retries_total{dependency=\"postgres\"}"),
        "the delivery waited for the database:\n{}",
        dapr.log_tail(40)
    );
}
