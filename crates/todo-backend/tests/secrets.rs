//! The backend binary, authenticated to Kafka with SCRAM and with JWT auth
//! on, never writes a secret or a token into a log line or an event.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use todo_testkit::{eventually, read_records, Stack};

const JWT_SECRET: &str = "jwt-secret-that-must-not-leak-7f3a";

#[tokio::test]
async fn no_secret_or_token_appears_in_logs_or_events() {
    // Arrange: the real binary, debug logs, SASL to Kafka, JWT on.
    let stack = Stack::from_env();
    let db = stack.fresh_database().await.unwrap();
    let prefix = stack.unique_topic_prefix();
    let sasl_bootstrap =
        std::env::var("KAFKA_SASL_BOOTSTRAP_SERVERS").expect("KAFKA_SASL_BOOTSTRAP_SERVERS");
    let sasl_password =
        std::env::var("KAFKA_SASL_TEST_PASSWORD").expect("KAFKA_SASL_TEST_PASSWORD");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_todo-backend"))
        .env("RUST_LOG", "debug")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db)
        .env("KAFKA_BOOTSTRAP_SERVERS", &sasl_bootstrap)
        .env(
            "KAFKA_SASL_USERNAME",
            std::env::var("KAFKA_SASL_TEST_USERNAME").unwrap(),
        )
        .env("KAFKA_SASL_PASSWORD", &sasl_password)
        .env("KAFKA_TOPIC_PREFIX", &prefix)
        .env("JWT_HS256_SECRET", JWT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = eventually(Duration::from_secs(30), || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    assert!(up.is_some(), "the backend starts");
    let claims = json!({ "sub": "carol", "exp": chrono::Utc::now().timestamp() + 600 });
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();

    // Act: writes with the token, one with a bad token, and the events published through SASL.
    for i in 0..3 {
        let r = http
            .post(format!("{base}/tasks"))
            .bearer_auth(&token)
            .json(&json!({"title": format!("t{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let bad = http
        .get(format!("{base}/tasks"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let topics = todo_kafka::TopicNames::new(prefix).task_topics();
    let events = read_records(&stack.kafka_bootstrap, &topics, 3, Duration::from_secs(30))
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();

    // Assert
    assert_eq!(
        events.len(),
        3,
        "events reached Kafka through the SASL listener"
    );
    assert!(logs.lines().count() > 5, "debug logging was on: {logs}");
    let db_password = "todo:todo@";
    for secret in [
        JWT_SECRET,
        sasl_password.as_str(),
        token.as_str(),
        db_password,
    ] {
        assert!(
            !logs.contains(secret),
            "a secret leaked into the logs: {secret}"
        );
        for e in &events {
            let value = String::from_utf8_lossy(&e.value);
            assert!(!value.contains(secret), "a secret leaked into an event");
            assert!(e.headers.iter().all(|(_, v)| !v.contains(secret)));
        }
    }
}
