//! Each endpoint: status, body, and the event a real Kafka consumer reads.

use serde_json::{json, Value};
use todo_events::{headers as h, ContentType, EventType, Payload, TaskStatus};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn creating_a_task_returns_201_with_location_and_publishes_task_created() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let resp = app
        .post_json(
            "/tasks",
            &json!({ "title": "  buy milk ", "description": "2 litres" }),
        )
        .await;

    // Assert
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/tasks/{}", task["id"]));
    assert_eq!(task["title"], "buy milk");
    assert_eq!(task["status"], "incomplete");
    assert_eq!(task["version"], 1);

    let events = app.expect_events(1).await;
    let (record, event) = &events[0];
    assert_eq!(record.topic, app.topic(EventType::Created));
    assert_eq!(record.key.as_deref(), Some(task["id"].to_string().as_str()));
    assert_eq!(record.header(h::CONTENT_TYPE), Some("application/json"));
    assert_eq!(record.header(h::EVENT_TYPE), Some("task.created"));
    assert_eq!(record.header(h::EVENT_VERSION), Some("v2"));
    assert_eq!(
        record.header(h::EVENT_ID),
        Some(event.event_id.to_string().as_str())
    );
    assert_eq!(
        record.header(h::CORRELATION_ID),
        Some(event.correlation_id.to_string().as_str())
    );
    assert_eq!(event.source, "todo-backend");
    // CloudEvents binary mode.
    assert_eq!(record.header(h::CE_SPECVERSION), Some("1.0"));
    assert_eq!(
        record.header(h::CE_ID),
        Some(event.event_id.to_string().as_str())
    );
    assert_eq!(record.header(h::CE_TYPE), Some("task.created"));
    assert_eq!(record.header(h::CE_SOURCE), Some("todo-backend"));
    let ce_time = chrono::DateTime::parse_from_rfc3339(record.header(h::CE_TIME).unwrap()).unwrap();
    assert_eq!(ce_time, event.timestamp);
    let Payload::Created(p) = &event.payload else {
        panic!("expected task.created, got {:?}", event.payload)
    };
    assert_eq!(p.task_id, task["id"].as_i64().unwrap());
    assert_eq!(p.title, "buy milk");
    assert_eq!(p.description.as_deref(), Some("2 litres"));
    assert_eq!(p.status, TaskStatus::Incomplete);
    assert_eq!(p.task_version, Some(1));
    assert_eq!(p.user_id, None);
}

#[tokio::test]
async fn the_json_envelope_has_exactly_the_spec_fields() {
    let app = spawn_app().await;
    app.create_task("envelope").await;
    let events = app.expect_events(1).await;
    let v: Value = serde_json::from_slice(&events[0].0.value).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "correlation_id",
            "event_id",
            "event_type",
            "event_version",
            "payload",
            "source",
            "timestamp"
        ]
    );
    assert_eq!(v["event_type"], "task.created");
}

#[tokio::test]
async fn updating_a_task_publishes_task_updated_with_the_changed_fields() {
    let app = spawn_app().await;
    let task = app.create_task("draft").await;
    let id = task["id"].as_i64().unwrap();

    let resp = app
        .put_json(
            &format!("/tasks/{id}"),
            &json!({ "title": "final", "description": null }),
        )
        .await;

    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["title"], "final");
    assert_eq!(updated["version"], 2);
    let events = app.expect_events(2).await;
    let (record, event) = events
        .iter()
        .find(|(_, e)| e.event_type() == EventType::Updated)
        .expect("task.updated");
    assert_eq!(record.topic, app.topic(EventType::Updated));
    assert_eq!(record.key.as_deref(), Some(id.to_string().as_str()));
    let Payload::Updated(p) = &event.payload else {
        unreachable!()
    };
    assert_eq!(p.title, "final");
    assert!(p.changes.title, "title changed");
    assert!(
        !p.changes.description,
        "description was null and stays null"
    );
    assert!(!p.changes.status);
    assert_eq!(p.task_version, Some(2));
}

#[tokio::test]
async fn concurrent_changes_to_one_task_get_consecutive_versions_and_ordered_events() {
    let app = spawn_app().await;
    let task = app.create_task("v1").await;
    let path = format!("/tasks/{}", task["id"]);

    let statuses = futures::future::join_all((0..16).map(|i| {
        let (app, path) = (&app, &path);
        async move {
            app.put_json(path, &json!({ "title": format!("writer {i}") }))
                .await
                .status()
                .as_u16()
        }
    }))
    .await;

    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "every racing change applies or is told to retry: {statuses:?}"
    );
    let applied = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(applied >= 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("task_read_batch_size_bucket{op=\"read\",le=\"+Inf\"}"),
        "the reads that changes make first are counted as reads"
    );
    let now: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        now["version"],
        1 + applied,
        "one version per applied change"
    );
    let events = app.expect_events(1 + applied as usize).await;
    let updates: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Payload::Updated(p) => Some(p),
            _ => None,
        })
        .collect();
    let versions: Vec<i64> = updates.iter().map(|p| p.task_version.unwrap()).collect();
    assert_eq!(
        versions,
        (2..=1 + applied).collect::<Vec<_>>(),
        "the partition holds the changes in version order, none twice, none missing"
    );
    assert_eq!(
        updates.last().unwrap().title,
        now["title"].as_str().unwrap()
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_publishes_nothing() {
    let app = spawn_app().await;
    let task = app.create_task("same").await;
    let resp = app
        .put_json(
            &format!("/tasks/{}", task["id"]),
            &json!({ "title": "same" }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(app.outbox_count().await, 1, "only task.created");
}

#[tokio::test]
async fn deleting_a_task_returns_204_publishes_task_deleted_and_then_404() {
    let app = spawn_app().await;
    let task = app.create_task("temporary").await;
    let id = task["id"].as_i64().unwrap();

    let resp = app.delete(&format!("/tasks/{id}")).await;

    assert_eq!(resp.status(), 204);
    assert_eq!(app.get(&format!("/tasks/{id}")).await.status(), 404);
    let events = app.expect_events(2).await;
    let (record, event) = events
        .iter()
        .find(|(_, e)| e.event_type() == EventType::Deleted)
        .expect("task.deleted");
    assert_eq!(record.topic, app.topic(EventType::Deleted));
    let Payload::Deleted(p) = &event.payload else {
        unreachable!()
    };
    assert_eq!(p.task_id, id);
    assert_eq!(p.task_version, Some(2));
}

#[tokio::test]
async fn completing_a_task_publishes_task_completed_once() {
    let app = spawn_app().await;
    let task = app.create_task("finish me").await;
    let path = format!("/tasks/{}/complete", task["id"]);

    let first = app.post_empty(&path).await;
    let second = app.post_empty(&path).await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    let done: Value = second.json().await.unwrap();
    assert_eq!(done["status"], "complete");
    assert!(done["completed_at"].is_string());
    assert_eq!(done["version"], 2, "the second call changed nothing");
    let events = app.expect_events(2).await;
    let completed: Vec<_> = events
        .iter()
        .filter(|(_, e)| e.event_type() == EventType::Completed)
        .collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].0.topic, app.topic(EventType::Completed));
    assert_eq!(
        app.outbox_count().await,
        2,
        "no second task.completed in the outbox"
    );
}

#[tokio::test]
async fn events_can_be_published_in_avro_and_decode_with_the_contract() {
    let app = spawn_app_with(|c| c.event_content_type = ContentType::Avro).await;
    let task = app.create_task("avro please").await;
    app.post_empty(&format!("/tasks/{}/complete", task["id"]))
        .await;

    let events = app.expect_events(2).await;

    for (record, _) in &events {
        assert_eq!(record.header(h::CONTENT_TYPE), Some("application/avro"));
        assert_eq!(
            &record.value[..2],
            &[0xC3, 0x01],
            "single-object encoding marker"
        );
    }
    assert!(events
        .iter()
        .any(|(_, e)| matches!(&e.payload, Payload::Created(p) if p.title == "avro please")));
}

#[tokio::test]
async fn v1_events_can_be_configured_and_carry_no_task_version() {
    let app = spawn_app_with(|c| c.event_version = todo_events::EventVersion::V1).await;
    app.create_task("old reader").await;
    let events = app.expect_events(1).await;
    assert_eq!(events[0].0.header(h::EVENT_VERSION), Some("v1"));
    let v: Value = serde_json::from_slice(&events[0].0.value).unwrap();
    assert_eq!(v["event_version"], "v1");
    assert!(v["payload"].get("task_version").is_none());
}

#[tokio::test]
async fn a_uuid_correlation_id_is_echoed_and_carried_in_the_event() {
    let app = spawn_app().await;
    let given = uuid::Uuid::new_v4().to_string();

    let resp = app
        .client
        .post(app.url("/tasks"))
        .header("X-Correlation-ID", &given)
        .json(&json!({"title": "t"}))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.headers()["x-correlation-id"], given.as_str());
    let events = app.expect_events(1).await;
    assert_eq!(events[0].1.correlation_id.to_string(), given);
    assert_eq!(events[0].0.header(h::CORRELATION_ID), Some(given.as_str()));
}

#[tokio::test]
async fn a_correlation_id_that_is_not_a_uuid_is_replaced_by_a_new_one() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/health"))
        .header("X-Correlation-ID", "hello")
        .send()
        .await
        .unwrap();
    let echoed = resp.headers()["x-correlation-id"].to_str().unwrap();
    assert_ne!(echoed, "hello");
    assert_eq!(uuid::Uuid::parse_str(echoed).unwrap().get_version_num(), 4);
}

#[tokio::test]
async fn listing_filters_by_status_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        let t = app.create_task(&format!("task {i}")).await;
        if i % 2 == 0 {
            app.post_empty(&format!("/tasks/{}/complete", t["id"]))
                .await;
        }
    }

    let page1: Value = app
        .get("/tasks?status=complete&limit=2")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let page2: Value = app
        .get(&format!("/tasks?status=complete&limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2.get("next_cursor").is_none());
    let all: Vec<_> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .collect();
    assert!(all.iter().all(|t| t["status"] == "complete"));
    let incomplete: Value = app
        .get("/tasks?status=incomplete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(incomplete["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn with_events_disabled_the_api_works_and_writes_no_outbox_rows() {
    let app = spawn_app_with(|c| c.events_enabled = false).await;
    let task = app.create_task("quiet").await;
    assert_eq!(
        app.post_empty(&format!("/tasks/{}/complete", task["id"]))
            .await
            .status(),
        200
    );
    assert_eq!(app.task_count().await, 1);
    assert_eq!(app.outbox_count().await, 0);
}

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let app = spawn_app().await;
    app.create_task("metered").await;
    app.expect_events(1).await;

    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("events_published_total"), "{metrics}");
    assert!(metrics.contains("event_publish_duration_seconds"));
    assert!(
        metrics.contains("outbox_relay_pickup_seconds_count"),
        "{metrics}"
    );
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/tasks",
        "/tasks/{id}",
        "/tasks/{id}/complete",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
}

mod auth {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "test-secret-for-hs256";

    fn token(sub: &str) -> String {
        let claims = json!({ "sub": sub, "exp": chrono::Utc::now().timestamp() + 600 });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn with_a_jwt_secret_tasks_belong_to_the_token_subject_and_others_get_404() {
        let app =
            spawn_app_with(|c| c.jwt_hs256_secret = Some(todo_runtime::Secret::new(SECRET))).await;
        let alice = token("alice");
        let bob = token("bob");
        let (as_alice, as_bob) = (app.as_user(&alice), app.as_user(&bob));

        let created: Value = as_alice
            .post_json("/tasks", &json!({"title": "alice's"}))
            .await
            .json()
            .await
            .unwrap();
        let id = created["id"].as_i64().unwrap();
        let bob_reads = as_bob.get(&format!("/tasks/{id}")).await;
        let bob_completes = as_bob.post_empty(&format!("/tasks/{id}/complete")).await;
        let anonymous = app.get(&format!("/tasks/{id}")).await;
        let alice_reads = as_alice.get(&format!("/tasks/{id}")).await;

        assert_eq!(created["user_id"], "alice");
        assert_eq!(bob_reads.status(), 404);
        assert_eq!(bob_completes.status(), 404);
        assert_eq!(anonymous.status(), 401);
        assert_eq!(
            anonymous.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(alice_reads.status(), 200);
        let events = app.expect_events(1).await;
        assert_eq!(events[0].1.payload.user_id(), Some("alice"));
        let raw = String::from_utf8_lossy(&events[0].0.value).into_owned();
        assert!(!raw.contains(&alice), "the token never appears in an event");
    }

    #[tokio::test]
    async fn a_list_holds_only_the_token_subjects_tasks_with_and_without_a_status_filter() {
        let app =
            spawn_app_with(|c| c.jwt_hs256_secret = Some(todo_runtime::Secret::new(SECRET))).await;
        let (alice, bob) = (token("alice"), token("bob"));
        for (who, title) in [(&alice, "a1"), (&bob, "b1"), (&alice, "a2"), (&bob, "b2")] {
            let user = app.as_user(who);
            let created: Value = user
                .post_json("/tasks", &json!({ "title": title }))
                .await
                .json()
                .await
                .unwrap();
            if title == "a2" {
                let completed = user
                    .post_empty(&format!("/tasks/{}/complete", created["id"]))
                    .await;
                assert_eq!(completed.status(), 200);
            }
        }
        let titles = |path: &'static str, who: String| {
            let app = &app;
            async move {
                let page: Value = app.as_user(&who).get(path).await.json().await.unwrap();
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["title"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };

        assert_eq!(titles("/tasks", alice.clone()).await, ["a1", "a2"]);
        assert_eq!(titles("/tasks", bob.clone()).await, ["b1", "b2"]);
        assert_eq!(
            titles("/tasks?status=complete", alice.clone()).await,
            ["a2"]
        );
        assert_eq!(
            titles("/tasks?status=complete", bob.clone()).await,
            Vec::<String>::new()
        );
        assert_eq!(
            titles("/tasks?status=incomplete&limit=1", bob).await,
            ["b1"]
        );
    }
}
