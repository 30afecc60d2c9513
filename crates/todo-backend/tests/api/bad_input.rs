//! Bad input gets a 4xx application/problem+json naming the field, and
//! nothing is written: no task, no outbox row, so no event.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn assert_problem(resp: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:todo:problem:"));
    if let Some(field) = field {
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected field {field} in {body}");
    }
    body
}

async fn assert_nothing_written(app: &TestApp) {
    assert_eq!(app.task_count().await, 0, "no task written");
    assert_eq!(app.outbox_count().await, 0, "no event written");
}

async fn post_raw(app: &TestApp, body: &'static str) -> reqwest::Response {
    app.client
        .post(app.url("/tasks"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem_document() {
    let app = spawn_app().await;
    assert_problem(app.get("/no/such/path").await, 404, None).await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    assert_problem(post_raw(&app, r#"{"title": "#).await, 400, None).await;
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn unknown_missing_and_mistyped_fields_are_422_naming_the_field() {
    let app = spawn_app().await;
    assert_problem(
        app.post_json("/tasks", &json!({"title": "a", "priority": 1}))
            .await,
        422,
        Some("priority"),
    )
    .await;
    assert_problem(
        app.post_json("/tasks", &json!({"description": "x"})).await,
        422,
        Some("title"),
    )
    .await;
    assert_problem(
        app.post_json("/tasks", &json!({"title": 5})).await,
        422,
        Some("title"),
    )
    .await;
    assert_problem(
        app.post_json("/tasks", &json!({"title": "a", "description": []}))
            .await,
        422,
        Some("description"),
    )
    .await;
    assert_problem(app.post_json("/tasks", &json!(["title"])).await, 422, None).await;
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn empty_and_over_long_titles_and_descriptions_are_422() {
    let app = spawn_app().await;
    assert_problem(
        app.post_json("/tasks", &json!({"title": "   "})).await,
        422,
        Some("title"),
    )
    .await;
    assert_problem(
        app.post_json("/tasks", &json!({"title": "x".repeat(256)}))
            .await,
        422,
        Some("title"),
    )
    .await;
    let both = app
        .post_json(
            "/tasks",
            &json!({"title": "", "description": "d".repeat(10_001)}),
        )
        .await;
    assert_problem(both, 422, Some("description")).await;
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn ids_that_are_not_positive_integers_are_400_naming_id() {
    let app = spawn_app().await;
    for id in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        assert_problem(app.get(&format!("/tasks/{id}")).await, 400, Some("id")).await;
        assert_problem(app.delete(&format!("/tasks/{id}")).await, 400, Some("id")).await;
        assert_problem(
            app.post_empty(&format!("/tasks/{id}/complete")).await,
            400,
            Some("id"),
        )
        .await;
    }
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn missing_tasks_are_404_and_publish_nothing() {
    let app = spawn_app().await;
    assert_problem(app.get("/tasks/424242").await, 404, None).await;
    assert_problem(
        app.put_json("/tasks/424242", &json!({"title": "x"})).await,
        404,
        None,
    )
    .await;
    assert_problem(app.delete("/tasks/424242").await, 404, None).await;
    assert_problem(app.post_empty("/tasks/424242/complete").await, 404, None).await;
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let huge = json!({ "title": "x", "description": "y".repeat(100 * 1024) });
    assert_problem(app.post_json("/tasks", &huge).await, 413, None).await;
    let text = app
        .client
        .post(app.url("/tasks"))
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_problem(text, 415, None).await;
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn bad_updates_are_rejected_without_a_write() {
    let app = spawn_app().await;
    let task = app.create_task("keep me").await;
    let path = format!("/tasks/{}", task["id"]);
    assert_problem(app.put_json(&path, &json!({})).await, 422, Some("body")).await;
    assert_problem(
        app.put_json(&path, &json!({"status": "done"})).await,
        422,
        Some("status"),
    )
    .await;
    assert_problem(
        app.put_json(&path, &json!({"title": ""})).await,
        422,
        Some("title"),
    )
    .await;
    // The document says title and status are strings: null is not one.
    for field in ["title", "status"] {
        let body = json!({ field: null, "description": "x" });
        assert_problem(app.put_json(&path, &body).await, 422, Some(field)).await;
    }
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(after["version"], 1);
    assert_eq!(app.outbox_count().await, 1, "only the create's event");
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_them() {
    let app = spawn_app().await;
    assert_problem(app.get("/tasks?limit=501").await, 400, Some("limit")).await;
    assert_problem(app.get("/tasks?limit=0").await, 400, Some("limit")).await;
    assert_problem(app.get("/tasks?status=done").await, 400, Some("status")).await;
    assert_problem(app.get("/tasks?cursor=x").await, 400, Some("cursor")).await;
    assert_problem(app.get("/tasks?sort=title").await, 400, Some("sort")).await;
    // Integers are plain digits, as the document's `integer` says.
    assert_problem(app.get("/tasks?limit=+5").await, 400, Some("limit")).await;
    assert_problem(app.get("/tasks?cursor=-1").await, 400, Some("cursor")).await;
    let too_long = "1".repeat(19);
    let resp = app.get(&format!("/tasks?cursor={too_long}")).await;
    assert_problem(resp, 400, Some("cursor")).await;
}

#[tokio::test]
async fn a_method_a_route_lacks_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let resp = app.delete("/tasks").await;
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_problem(resp, 405, None).await;
}

#[tokio::test]
async fn sql_metacharacters_are_stored_verbatim() {
    let app = spawn_app().await;
    let title = "Robert'); DROP TABLE tasks;-- \" \\ %_";
    let task = app.create_task(title).await;
    let fetched: Value = app
        .get(&format!("/tasks/{}", task["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["title"], title);
    assert_eq!(app.task_count().await, 1);
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,300}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("title".to_owned()),
                    Just("description".to_owned()),
                    Just("status".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn no_request_body_ever_gets_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let task = rt.block_on(app.create_task("target"));
    let id = task["id"].as_i64().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    });
    let strategy = (
        arbitrary_json(),
        prop::collection::vec(any::<u8>(), 0..200),
        0..4usize,
    );
    runner
        .run(&strategy, |(json_body, raw, target)| {
            rt.block_on(async {
                let (method, path) = match target {
                    0 => (reqwest::Method::POST, "/tasks".to_owned()),
                    1 => (reqwest::Method::PUT, format!("/tasks/{id}")),
                    2 => (reqwest::Method::POST, format!("/tasks/{id}/complete")),
                    _ => (reqwest::Method::PUT, "/tasks/1x".to_owned()),
                };
                for body in [serde_json::to_vec(&json_body).unwrap(), raw.clone()] {
                    let resp = app
                        .client
                        .request(method.clone(), app.url(&path))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    prop_assert!(
                        resp.status().as_u16() < 500,
                        "{} {} -> {}",
                        method,
                        path,
                        resp.status()
                    );
                }
                Ok(())
            })
        })
        .unwrap();
    // Whatever was accepted was written with its event; nothing half-written.
    let tasks = rt.block_on(app.task_count());
    assert!(tasks >= 1);
    let orphans: i64 = rt.block_on(
        sqlx::query_scalar("SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.task_id = t.id)")
            .fetch_one(&app.pool),
    )
    .unwrap();
    assert_eq!(orphans, 0, "every task has its task.created event");
    drop(app);
}
