//! End to end on the real stack: API → Postgres → outbox → Kafka → event
//! service, reconciled by `todoctl verify`, which also catches tampering.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use todo_testkit::Stack;
use todoctl::verify::{reconcile, Report};
use tokio_util::sync::CancellationToken;

struct Pipeline {
    backend_url: String,
    backend_db: PgPool,
    events_db: PgPool,
    cancel: CancellationToken,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn spawn_pipeline() -> Pipeline {
    let stack = Stack::from_env();
    let prefix = stack.unique_topic_prefix();
    let backend_db = stack.fresh_database().await.unwrap();
    let events_db = stack.fresh_database().await.unwrap();
    let cancel = CancellationToken::new();

    let mut b = todo_backend::Config::from_env();
    b.http_addr = "127.0.0.1:0".parse().unwrap();
    b.database_url = todo_kafka::Secret::new(&backend_db);
    b.kafka = stack.kafka_args(&prefix);
    b.relay.poll_interval_ms = 100;
    let backend = todo_backend::Application::build(b).await.unwrap();
    let backend_url = format!("http://{}", backend.local_addr());
    tokio::spawn(backend.run_until_stopped(cancel.clone()));

    let mut e = todo_event_service::Config::from_env();
    e.http_addr = "127.0.0.1:0".parse().unwrap();
    e.database_url = todo_kafka::Secret::new(&events_db);
    e.kafka = stack.kafka_args(&prefix);
    e.consumer.group_id = format!("test-group-{}", todo_testkit::short_id());
    e.webhooks.urls = Vec::new();
    let service = todo_event_service::Application::build(e).await.unwrap();
    tokio::spawn(service.run_until_stopped(cancel.clone()));

    Pipeline {
        backend_url,
        backend_db: PgPool::connect(&backend_db).await.unwrap(),
        events_db: PgPool::connect(&events_db).await.unwrap(),
        cancel,
    }
}

async fn settle(p: &Pipeline) -> Report {
    let mut last = Report::default();
    for _ in 0..120 {
        last = reconcile(&p.backend_db, &p.events_db).await.unwrap();
        if last.is_clean() && last.expected > 0 {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

#[tokio::test]
async fn every_api_change_reaches_the_event_service_once_and_verify_catches_tampering() {
    // Arrange
    let p = spawn_pipeline().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{}", p.backend_url, path);

    // Act: 20 tasks; every other one updated, every third completed, every fifth deleted.
    for i in 0..20 {
        let t: serde_json::Value = http
            .post(url("/tasks"))
            .json(&json!({"title": format!("e2e {i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = t["id"].as_i64().unwrap();
        if i % 2 == 0 {
            http.put(url(&format!("/tasks/{id}")))
                .json(&json!({"title": format!("e2e {i} edited")}))
                .send()
                .await
                .unwrap();
        }
        if i % 3 == 0 {
            http.post(url(&format!("/tasks/{id}/complete")))
                .send()
                .await
                .unwrap();
        }
        if i % 5 == 0 {
            http.delete(url(&format!("/tasks/{id}")))
                .send()
                .await
                .unwrap();
        }
    }

    // Assert: everything delivered once, projection equal to the tasks table.
    let report = settle(&p).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.expected, 20 + 10 + 7 + 4);
    assert_eq!(report.delivered, report.expected);

    // Tampering is caught: a lost audit row and a wrong projection.
    sqlx::query("DELETE FROM audit_log WHERE id = (SELECT min(id) FROM audit_log)")
        .execute(&p.events_db)
        .await
        .unwrap();
    sqlx::query("UPDATE task_projection SET title = 'tampered' WHERE task_id = (SELECT min(task_id) FROM task_projection WHERE NOT deleted)")
        .execute(&p.events_db)
        .await
        .unwrap();
    let tampered = reconcile(&p.backend_db, &p.events_db).await.unwrap();
    assert_eq!(tampered.missing.len(), 1, "{tampered:?}");
    assert_eq!(tampered.mismatched.len(), 1, "{tampered:?}");
    assert!(tampered.mismatched[0].1.contains("tampered"));
}
