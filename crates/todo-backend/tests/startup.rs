//! Starting without the peers: the backend binds its port and takes writes
//! into the outbox with no broker reachable, publishes once one appears, says
//! what it tried and why it failed while its dependencies are away, and
//! stops with one readable line on what retrying cannot fix.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use serde_json::json;
use todo_testkit::process::{closed_port, Forwarder, ServiceProcess};
use todo_testkit::Stack;

const BINARY: &str = env!("CARGO_BIN_EXE_todo-backend");
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn with_no_broker_reachable_writes_succeed_and_their_events_arrive_once_a_broker_appears() {
    // Arrange: the backend's bootstrap address is a port where nothing listens.
    let stack = Stack::from_env();
    let broker_port = closed_port();
    let app =
        helpers::spawn_app_with(|c| c.kafka.bootstrap_servers = format!("127.0.0.1:{broker_port}"))
            .await;

    // Act: writes while no broker is reachable.
    let created = app
        .post_json("/tasks", &json!({ "title": "before any broker" }))
        .await;
    assert_eq!(created.status(), 201, "the API does not need Kafka");
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let ready: serde_json::Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(
        ready["status"], "ready",
        "readiness depends on PostgreSQL only: {ready}"
    );
    assert_eq!(ready["kafka"], "connecting", "{ready}");
    assert_eq!(app.unpublished().await, 1, "the event waits in the outbox");

    // ...then a broker appears at that address.
    let _broker = Forwarder::start(broker_port, stack.kafka_bootstrap.clone())
        .await
        .unwrap();

    // Assert: the backend reaches it and provisions its topics...
    let reached = todo_testkit::eventually(PATIENCE, || async {
        let body: serde_json::Value = app.get("/ready").await.json().await.ok()?;
        (body["kafka"] == "up").then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "the backend reaches the broker that appeared"
    );
    // ...and the event arrives, for the task written before.
    let events = app.expect_events(1).await;
    assert_eq!(events[0].1.task_id(), id);
    let drained = todo_testkit::eventually(PATIENCE, || async {
        (app.unpublished().await == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the row is marked published");
    app.stop().await;
}

#[tokio::test]
async fn with_neither_database_nor_broker_reachable_the_backend_serves_health_and_says_what_it_tried(
) {
    // Arrange: both addresses are ports where nothing listens.
    let (db_port, broker_port) = (closed_port(), closed_port());
    let mut backend = ServiceProcess::start(
        BINARY,
        &[
            (
                "DATABASE_URL",
                format!("postgres://todo:todo@127.0.0.1:{db_port}/todo"),
            ),
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                format!("127.0.0.1:{broker_port}"),
            ),
        ],
    );

    // Act
    let health = backend.wait_for_http("/health", PATIENCE).await;

    // Assert: alive, not ready, and the API answers 503 problem+json.
    assert_eq!(health, Some(200), "output: {:#?}", backend.output());
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/ready", backend.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let write = client
        .post(format!("{}/tasks", backend.url))
        .json(&json!({ "title": "no database" }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 503);
    assert_eq!(write.headers()["content-type"], "application/problem+json");
    // Each dependency's line names its address and the real cause.
    backend
        .assert_reports_refused("PostgreSQL", &format!("127.0.0.1:{db_port}/todo"))
        .await;
    backend
        .assert_reports_refused("Kafka", &format!("127.0.0.1:{broker_port}"))
        .await;
}

#[tokio::test]
async fn bad_database_credentials_stop_the_backend_with_one_readable_line() {
    // Arrange: the stack's database, with a wrong password.
    let stack = Stack::from_env();
    let url = stack.database_url.replacen("://todo:", "://todo:wrong-", 1);
    assert_ne!(
        url, stack.database_url,
        "DATABASE_URL has the form postgres://todo:..."
    );
    let mut backend = ServiceProcess::start(BINARY, &[("DATABASE_URL", url)]);

    // Act
    let last = backend.expect_fatal_line("todo-backend").await;

    // Assert: exit code 1, and one line that says what was tried and what failed.
    assert!(
        last.starts_with("todo-backend: PostgreSQL at 127.0.0.1:"),
        "{last}"
    );
    assert!(last.contains("password authentication failed"), "{last}");
}

#[tokio::test]
async fn a_topic_with_fewer_partitions_than_configured_stops_the_backend_with_one_readable_line() {
    // Arrange: the created topic exists with 1 partition; 3 are configured.
    let stack = Stack::from_env();
    let prefix = stack.unique_topic_prefix();
    let topic = format!("{prefix}todo.tasks.created");
    let cfg = stack.kafka_args("").client_config(&[]).unwrap();
    let one = todo_kafka::TopicSettings {
        partitions: 1,
        ..Default::default()
    };
    todo_kafka::provision_topics(&cfg, std::slice::from_ref(&topic), &one)
        .await
        .unwrap();
    let database_url = stack.fresh_database().await.unwrap();
    let mut backend = ServiceProcess::start(
        BINARY,
        &[
            ("DATABASE_URL", database_url),
            ("KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap.clone()),
            ("KAFKA_TOPIC_PREFIX", prefix),
            ("KAFKA_TOPIC_PARTITIONS", "3".into()),
        ],
    );

    // Act
    let last = backend.expect_fatal_line("todo-backend").await;

    // Assert: exit code 1, and one line that says what was tried and what failed.
    assert!(last.starts_with("todo-backend: Kafka at "), "{last}");
    assert!(
        last.contains(&format!(
            "topic {topic} has 1 partitions, fewer than the 3 configured"
        )),
        "{last}"
    );
}

#[tokio::test]
async fn with_skip_migrations_a_replica_waits_for_the_migrate_only_job_and_is_ready_after_it() {
    // Arrange: an empty database; a replica that must not migrate it.
    let stack = Stack::from_env();
    let database_url = stack.fresh_database().await.unwrap();
    let env = |extra: (&'static str, String)| {
        vec![
            ("DATABASE_URL", database_url.clone()),
            ("KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap.clone()),
            ("KAFKA_TOPIC_PREFIX", stack.unique_topic_prefix()),
            extra,
        ]
    };
    let replica = ServiceProcess::start(BINARY, &env(("SKIP_MIGRATIONS", "true".into())));
    assert_eq!(replica.wait_for_http("/health", PATIENCE).await, Some(200));
    let waiting = replica
        .wait_for_line(PATIENCE, |l| l.contains("waiting for migrations"))
        .await;
    assert!(waiting.is_some(), "output: {:#?}", replica.output());
    assert_eq!(replica.wait_for_http("/ready", PATIENCE).await, Some(503));

    // Act: the once-per-release step.
    let mut job = ServiceProcess::start(BINARY, &env(("MIGRATE_ONLY", "true".into())));
    let code = job.wait_exit(PATIENCE).await;

    // Assert: it migrated and exited 0; the replica is ready without migrating.
    assert_eq!(code, Some(0), "output: {:#?}", job.output());
    let ready = todo_testkit::eventually(PATIENCE, || async {
        let status = reqwest::get(format!("{}/ready", replica.url))
            .await
            .ok()?
            .status();
        (status == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "output: {:#?}", replica.output());
}

#[tokio::test]
async fn bad_kafka_credentials_stop_the_backend_with_one_readable_line() {
    // Arrange: the stack's SCRAM listener, with a wrong password.
    let stack = Stack::from_env();
    let database_url = stack.fresh_database().await.unwrap();
    let sasl = std::env::var("KAFKA_SASL_BOOTSTRAP_SERVERS").expect("KAFKA_SASL_BOOTSTRAP_SERVERS");
    let user = std::env::var("KAFKA_SASL_TEST_USERNAME").expect("KAFKA_SASL_TEST_USERNAME");
    let mut backend = ServiceProcess::start(
        BINARY,
        &[
            ("DATABASE_URL", database_url),
            ("KAFKA_BOOTSTRAP_SERVERS", sasl),
            ("KAFKA_SASL_USERNAME", user),
            ("KAFKA_SASL_PASSWORD", "not-the-password".into()),
            ("KAFKA_TOPIC_PREFIX", stack.unique_topic_prefix()),
        ],
    );

    // Act
    let last = backend.expect_fatal_line("todo-backend").await;

    // Assert
    assert!(last.starts_with("todo-backend: Kafka at "), "{last}");
    assert!(last.contains("authentication failed"), "{last}");
    assert!(!last.contains("not-the-password"), "{last}");
}
