//! The console's live stream, against the service's own audit log.

use std::time::Duration;

use futures::StreamExt;

use crate::helpers::{created, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_live_stream_sends_each_processed_event_once_and_does_not_hold_up_a_graceful_stop() {
    // Arrange: one event processed before the stream opens.
    let h = Harness::new().await;
    let svc = h.spawn().await;
    h.produce(&[created(71, Some(1), 0, "before")]).await;
    h.wait_for("SELECT count(*) FROM audit_log", 1).await;
    let resp = svc.get("/console/stream").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();

    // Act: one more after it opened.
    h.produce(&[created(72, Some(1), 0, "after")]).await;

    // Assert: the backlog's event, then the new one, each once.
    let mut text = String::new();
    let read = async {
        while text.matches("event: task-event").count() < 2 {
            let chunk = body.next().await.expect("the stream ended").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("two events within 20 s");
    assert!(
        text.contains("\"task_id\":71") && text.contains("\"task_id\":72"),
        "{text}"
    );
    // A second's polls add nothing: no event is sent twice.
    let more = tokio::time::timeout(Duration::from_secs(1), body.next()).await;
    if let Ok(Some(Ok(chunk))) = more {
        assert!(
            !String::from_utf8_lossy(&chunk).contains("task-event"),
            "sent again"
        );
    }

    // The service stops although the stream is still open.
    tokio::time::timeout(Duration::from_secs(30), svc.stop())
        .await
        .expect("a graceful stop with an open live stream");
}
