//! Starting without the peers: the event service serves its read API from
//! PostgreSQL with no broker reachable, consumes once one appears, says what
//! it tried and why it failed while its dependencies are away, and stops with
//! one readable line on what retrying cannot fix.

#[path = "api/helpers.rs"]
mod helpers;

use helpers::*;
use todo_testkit::process::{closed_port, Forwarder, ServiceProcess};

const BINARY: &str = env!("CARGO_BIN_EXE_todo-event-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_broker_reachable_the_read_api_serves_from_postgres_and_consuming_starts_when_one_appears(
) {
    // Arrange: one event processed while Kafka was reachable.
    let h = Harness::new().await;
    let svc = h.spawn().await;
    h.produce(&[created(7, Some(1), 0, "stored before")]).await;
    h.wait_for("SELECT count(*) FROM processed_events", 1).await;
    svc.stop().await;

    // Act: the service starts again, its broker address a port where nothing listens.
    let broker_port = closed_port();
    let svc = h
        .spawn_with(|c| c.kafka.bootstrap_servers = format!("127.0.0.1:{broker_port}"))
        .await;

    // Assert: the read API answers from PostgreSQL, and readiness says what is true.
    let audit = svc.get_json("/audit/tasks/7").await;
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
    let ready = svc.get("/ready").await;
    assert_eq!(ready.status(), 200, "the read API can serve");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"], "up", "{body}");
    assert_eq!(body["kafka"], "connecting", "{body}");
    assert!(
        body["kafka_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "the cause is in the body: {body}"
    );

    // ...and once a broker appears there, events flow again.
    let _broker = Forwarder::start(broker_port, h.stack.kafka_bootstrap.clone())
        .await
        .unwrap();
    h.produce(&[created(8, Some(1), 0, "after the broker appeared")])
        .await;
    h.wait_for("SELECT count(*) FROM processed_events", 2).await;
    let ready = todo_testkit::eventually(PATIENCE, || async {
        let body: serde_json::Value = svc.get("/ready").await.json().await.ok()?;
        (body["status"] == "ready").then_some(body)
    })
    .await;
    assert!(ready.is_some(), "ready once Kafka is reached");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_neither_database_nor_broker_reachable_the_service_serves_health_and_says_what_it_tried(
) {
    // Arrange: both addresses are ports where nothing listens.
    let (db_port, broker_port) = (closed_port(), closed_port());
    let mut svc = ServiceProcess::start(
        BINARY,
        &[
            (
                "EVENT_DATABASE_URL",
                format!("postgres://todo:todo@127.0.0.1:{db_port}/todo_events"),
            ),
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                format!("127.0.0.1:{broker_port}"),
            ),
        ],
    );

    // Act
    let health = svc.wait_for_http("/health", PATIENCE).await;

    // Assert: alive; the read API answers 503 problem+json; not ready.
    assert_eq!(health, Some(200), "output: {:#?}", svc.output());
    let client = reqwest::Client::new();
    let audit = client
        .get(format!("{}/audit/tasks/1", svc.url))
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 503);
    assert_eq!(audit.headers()["content-type"], "application/problem+json");
    let ready = client
        .get(format!("{}/ready", svc.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        (body["database"].as_str(), body["kafka"].as_str()),
        (Some("down"), Some("connecting")),
        "{body}"
    );
    // Each dependency's line names its address and the real cause.
    svc.assert_reports_refused("PostgreSQL", &format!("127.0.0.1:{db_port}/todo_events"))
        .await;
    svc.assert_reports_refused("Kafka", &format!("127.0.0.1:{broker_port}"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_database_credentials_stop_the_service_with_one_readable_line() {
    // Arrange: the stack's database, with a wrong password.
    let h = Harness::new().await;
    let url = h.database_url.replacen("://todo:", "://todo:wrong-", 1);
    assert_ne!(url, h.database_url);
    let mut svc = ServiceProcess::start(
        BINARY,
        &[
            ("EVENT_DATABASE_URL", url),
            ("KAFKA_BOOTSTRAP_SERVERS", h.stack.kafka_bootstrap.clone()),
            ("KAFKA_TOPIC_PREFIX", h.prefix.clone()),
        ],
    );

    // Act
    let last = svc.expect_fatal_line("todo-event-service").await;

    // Assert: exit code 1, and one line that says what was tried and what failed.
    assert!(
        last.starts_with("todo-event-service: PostgreSQL at 127.0.0.1:"),
        "{last}"
    );
    assert!(last.contains("password authentication failed"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_stopped_by_a_fatal_condition_reports_it_through_run_until_stopped() {
    // Arrange: topics of this harness exist with 3 partitions; 6 are configured.
    let h = Harness::new().await;

    // Act
    let result = tokio::time::timeout(PATIENCE, async {
        let mut config = h.config();
        config.topics.partitions = 6;
        let app = todo_event_service::Application::build(config).await?;
        app.run_until_stopped(tokio_util::sync::CancellationToken::new())
            .await
    })
    .await
    .expect("the service stops by itself");

    // Assert
    let why = format!("{:#}", result.unwrap_err());
    assert!(why.starts_with("Kafka at "), "{why}");
    assert!(
        why.contains("has 3 partitions, fewer than the 6 configured"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_otlp_protocol_that_is_not_built_in_stops_the_service_with_one_line_naming_it() {
    // Arrange
    let h = Harness::new().await;
    let mut env = h.process_env();
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://127.0.0.1:4317".into(),
    ));
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()));

    // Act
    let mut svc = ServiceProcess::start(BINARY, &env);
    let line = svc.expect_fatal_line("todo-event-service").await;

    // Assert
    assert!(
        line.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && line.contains("grpc"),
        "{line}"
    );
}
