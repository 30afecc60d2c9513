//! `spawn_app()`: the backend in-process on port 0, with a fresh database and
//! topics of its own, plus request helpers and a real Kafka reader.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::Value;
use sqlx::PgPool;
use todo_backend::{Application, Config};
use todo_events::{Event, EventType};
use todo_kafka::TopicNames;
use todo_testkit::{read_records, Record, Stack};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub topics: TopicNames,
    pub stack: Stack,
    pub cancel: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The configuration a test app starts from.
pub fn test_config(stack: &Stack, database_url: &str, topic_prefix: &str) -> Config {
    let mut config = Config::from_env();
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.database_url = todo_runtime::Secret::new(database_url);
    config.database_max_connections = 8;
    config.kafka = stack.kafka_args(topic_prefix);
    config.relay.poll_interval_ms = 100;
    config.relay.standby_interval_ms = 200;
    config.relay.backoff_base_ms = 50;
    config.relay.backoff_cap_ms = 1_000;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let stack = Stack::from_env();
    let database_url = stack.fresh_database().await.expect("fresh database");
    let prefix = stack.unique_topic_prefix();
    let mut config = test_config(&stack, &database_url, &prefix);
    adjust(&mut config);
    start(stack, config).await
}

/// Starts the backend with `config` (for a second instance on the same database).
pub async fn start(stack: Stack, config: Config) -> TestApp {
    let database_url = config.database_url.expose().to_owned();
    let topics = TopicNames::new(config.kafka.topic_prefix.clone());
    let app = Application::build(config)
        .await
        .expect("the backend builds");
    let address = format!("http://{}", app.local_addr());
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(cancel.clone()));
    let pool = PgPool::connect(&database_url).await.unwrap();
    TestApp {
        address,
        client: reqwest::Client::new(),
        pool,
        topics,
        stack,
        cancel,
        handle: Some(handle),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends `method path`, with `body` as JSON if any, as `token`'s subject
    /// if any (`Authorization: Bearer`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Requests as the subject of `token`.
    pub fn as_user<'a>(&'a self, token: &'a str) -> AsUser<'a> {
        AsUser { app: self, token }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(body), None).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.send(Method::PUT, path, Some(body), None).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None, None).await
    }

    pub async fn post_empty(&self, path: &str) -> Response {
        self.send(Method::POST, path, None, None).await
    }

    /// Creates a task and returns its JSON.
    pub async fn create_task(&self, title: &str) -> Value {
        let resp = self
            .post_json("/tasks", &serde_json::json!({ "title": title }))
            .await;
        assert_eq!(resp.status(), 201, "create should succeed");
        resp.json().await.unwrap()
    }

    /// Reads up to `n` records from this app's four task topics.
    pub async fn read_events(&self, n: usize, timeout: Duration) -> Vec<Record> {
        read_records(
            &self.stack.kafka_bootstrap,
            &self.topics.task_topics(),
            n,
            timeout,
        )
        .await
        .unwrap()
    }

    /// Reads exactly `n` records (fails the test if fewer arrive in 30 s).
    pub async fn expect_events(&self, n: usize) -> Vec<(Record, Event)> {
        let records = self.read_events(n, Duration::from_secs(30)).await;
        assert_eq!(
            records.len(),
            n,
            "expected {n} events on Kafka, read {}",
            records.len()
        );
        records
            .into_iter()
            .map(|r| {
                let canonical = self.topics.canonical(&r.topic).unwrap().to_owned();
                let event = todo_events::decode_record(
                    &canonical,
                    r.header(todo_events::headers::CONTENT_TYPE),
                    &r.value,
                )
                .expect("every published event decodes and validates");
                (r, event)
            })
            .collect()
    }

    pub fn topic(&self, t: EventType) -> String {
        self.topics.for_event(t)
    }

    pub async fn outbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn task_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tasks")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn unpublished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Stops the app and waits for it to finish.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// A [`TestApp`]'s requests under one bearer token.
pub struct AsUser<'a> {
    app: &'a TestApp,
    token: &'a str,
}

impl AsUser<'_> {
    pub async fn get(&self, path: &str) -> Response {
        self.app
            .send(Method::GET, path, None, Some(self.token))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.app
            .send(Method::POST, path, Some(body), Some(self.token))
            .await
    }

    pub async fn post_empty(&self, path: &str) -> Response {
        self.app
            .send(Method::POST, path, None, Some(self.token))
            .await
    }
}
