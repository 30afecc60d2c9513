use std::time::Duration;

use todo_events::{headers, ContentType, EventType, TaskStatus};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unprocessable_records_go_to_the_dlq_at_once_with_headers_while_other_events_keep_flowing()
{
    // Arrange: everything keyed "21", so it all shares one partition of the
    // created topic, poison between good events.
    let h = Harness::new().await;
    let _svc = h.spawn().await;
    let topic = h.topic(EventType::Created);
    let json = [(headers::CONTENT_TYPE, ContentType::Json.as_str())];
    let wrong_schema =
        br#"{"event_id":"0b0e8a52-3a4e-4c55-8f0a-2a0d1d7b9e11","event_type":"task.created"}"#
            .to_vec();
    let mut unknown_version = serde_json::to_value(created(21, Some(1), 0, "v9")).unwrap();
    unknown_version["event_version"] = "v9".into();
    let unknown_version = serde_json::to_vec(&unknown_version).unwrap();
    let wrong_topic = completed(21, Some(2), 5).encode(ContentType::Json).unwrap();

    // Act
    h.produce(&[created(21, Some(1), 0, "good one")]).await;
    h.produce_raw(&topic, "21", b"\x00\xffnot json at all", json.to_vec())
        .await;
    h.produce(&[updated(21, Some(2), 1, "good two", TaskStatus::Incomplete)])
        .await;
    h.produce_raw(&topic, "21", &wrong_schema, json.to_vec())
        .await;
    h.produce_raw(&topic, "21", &unknown_version, json.to_vec())
        .await;
    h.produce_raw(&topic, "21", &wrong_topic, json.to_vec())
        .await;
    h.produce_raw(
        &topic,
        "21",
        b"\xc3\x01short",
        vec![(headers::CONTENT_TYPE, "application/avro")],
    )
    .await;
    h.produce(&[created(22, Some(1), 2, "good three")]).await;

    // Assert: the good ones are processed...
    h.wait_for("SELECT count(*) FROM processed_events", 3).await;
    // ...and the five bad ones are on the DLQ, unchanged, with the headers.
    let dlq = h.dlq(5, PATIENCE).await;
    assert_eq!(dlq.len(), 5, "five dead letters");
    let classes: Vec<&str> = dlq
        .iter()
        .map(|r| r.header(headers::DLQ_ERROR_CLASS).unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "malformed_json",
            "malformed_json",
            "unknown_event_version",
            "topic_mismatch",
            "truncated"
        ]
    );
    let originals: Vec<Vec<u8>> = vec![
        b"\x00\xffnot json at all".to_vec(),
        wrong_schema.clone(),
        unknown_version.clone(),
        wrong_topic.clone(),
        b"\xc3\x01short".to_vec(),
    ];
    let mut offsets = Vec::new();
    for (r, original) in dlq.iter().zip(&originals) {
        assert_eq!(&r.value, original, "the original bytes, unchanged");
        assert_eq!(r.key.as_deref(), Some("21"), "the original key");
        assert_eq!(r.header(headers::DLQ_ORIGINAL_TOPIC), Some(topic.as_str()));
        assert!(r
            .header(headers::DLQ_ORIGINAL_PARTITION)
            .unwrap()
            .parse::<i32>()
            .is_ok());
        offsets.push(
            r.header(headers::DLQ_ORIGINAL_OFFSET)
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
        assert!(
            r.header(headers::DLQ_ORIGINAL_TIMESTAMP)
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
        assert_eq!(
            r.header(headers::DLQ_CONSUMER_GROUP),
            Some(h.group.as_str())
        );
        assert!(!r.header(headers::DLQ_ERROR_MESSAGE).unwrap().is_empty());
        assert_eq!(
            r.header(headers::DLQ_ATTEMPTS),
            Some("1"),
            "unprocessable: no retries"
        );
        assert!(
            r.header(headers::CONTENT_TYPE).is_some(),
            "the original headers are kept"
        );
    }
    assert_eq!(
        offsets,
        [1, 2, 3, 4, 5],
        "the offsets the poison had on its partition (the update is on another topic)"
    );
    // The partition moved past the poison: everything is committed.
    h.wait_all_committed(&h.group).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_error_is_retried_with_backoff_then_dead_lettered_and_the_partition_moves_on() {
    // Arrange: Postgres refuses a NUL character in text; the event is valid.
    let h = Harness::new().await;
    let svc = h.spawn_with(|c| c.retry.attempts = 3).await;
    let poison = created(31, Some(1), 0, "nul \u{0} inside");

    // Act
    h.produce(&[created(30, Some(1), 0, "before")]).await;
    h.produce(std::slice::from_ref(&poison)).await;
    h.produce(&[created(32, Some(1), 0, "after")]).await;

    // Assert
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    let dlq = h.dlq(1, PATIENCE).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0].header(headers::DLQ_ERROR_CLASS),
        Some("handler_failed")
    );
    assert_eq!(dlq[0].header(headers::DLQ_ATTEMPTS), Some("3"));
    assert_eq!(
        dlq[0].header(headers::EVENT_ID),
        Some(poison.event_id.to_string().as_str())
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM audit_log WHERE task_id = 31")
            .await,
        0
    );
    h.wait_all_committed(&h.group).await;
    let metrics = svc.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("event_handler_retries_total{handler=\"postgres\"}"),
        "retries are counted"
    );
    assert!(metrics.contains("events_dead_lettered_total{error_class=\"handler_failed\"}"));
    // Nothing else reached the DLQ.
    assert_eq!(h.dlq(2, Duration::from_secs(3)).await.len(), 1);
}
