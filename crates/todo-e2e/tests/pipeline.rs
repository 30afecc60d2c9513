//! End to end on the real stack: API → Postgres → outbox → Kafka → event
//! service, reconciled by `todoctl verify`, which also catches tampering.

use std::time::Duration;

use serde_json::json;
use todo_e2e::{Options, Pipeline};
use todoctl::verify::{reconcile, Report};

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
    let p = Pipeline::start(Options::default()).await;
    let http = &p.http;
    let url = |path: &str| format!("{}{}", p.api, path);

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
