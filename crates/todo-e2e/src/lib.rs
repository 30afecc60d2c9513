//! The whole pipeline in one test process, on the real local stack: the
//! backend and the event service, each on a fresh database, sharing fresh
//! topics. Used by this crate's end-to-end tests (`tests/`).

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use todo_kafka::TopicNames;
use todo_testkit::Stack;
use tokio_util::sync::CancellationToken;

/// How a pipeline differs from the defaults.
#[derive(Default)]
pub struct Options {
    /// The console's admin token (None: read-only).
    pub console_admin_token: Option<String>,
}

/// A running backend and event service; both stop when dropped.
pub struct Pipeline {
    /// The backend's address.
    pub api: String,
    /// The event service's address.
    pub events: String,
    /// The backend's database.
    pub backend_db: PgPool,
    /// The event service's database.
    pub events_db: PgPool,
    /// The topics, with this pipeline's prefix.
    pub topics: TopicNames,
    /// The stack.
    pub stack: Stack,
    /// A client for both.
    pub http: reqwest::Client,
    cancel: CancellationToken,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Pipeline {
    /// Starts both services with `options`.
    pub async fn start(options: Options) -> Self {
        let stack = Stack::from_env();
        let prefix = stack.unique_topic_prefix();
        let topics = TopicNames::new(prefix.clone());
        todo_testkit::create_topics(&stack, &topics.all())
            .await
            .unwrap();
        let backend_db = stack.fresh_database().await.unwrap();
        let events_db = stack.fresh_database().await.unwrap();
        let cancel = CancellationToken::new();

        let mut b = todo_backend::Config::from_env();
        b.http_addr = "127.0.0.1:0".parse().unwrap();
        b.database_url = todo_runtime::Secret::new(&backend_db);
        b.kafka = stack.kafka_args(&prefix);
        b.relay.poll_interval_ms = 50;
        let backend = todo_backend::Application::build(b).await.unwrap();
        let api = format!("http://{}", backend.local_addr());
        tokio::spawn(backend.run_until_stopped(cancel.clone()));

        let mut e = todo_event_service::Config::from_env();
        e.http_addr = "127.0.0.1:0".parse().unwrap();
        e.database_url = todo_runtime::Secret::new(&events_db);
        e.kafka = stack.kafka_args(&prefix);
        e.consumer.client.group_id = format!("test-group-{}", todo_testkit::short_id());
        e.retry.attempts = 2;
        e.retry.base_ms = 20;
        e.retry.cap_ms = 50;
        e.webhooks.urls = Vec::new();
        e.console.console_admin_token = options.console_admin_token.map(todo_runtime::Secret::new);
        let service = todo_event_service::Application::build(e).await.unwrap();
        let events = format!("http://{}", service.local_addr());
        tokio::spawn(service.run_until_stopped(cancel.clone()));

        Self {
            api,
            events,
            backend_db: PgPool::connect(&backend_db).await.unwrap(),
            events_db: PgPool::connect(&events_db).await.unwrap(),
            topics,
            stack,
            http: reqwest::Client::new(),
            cancel,
        }
    }

    /// Calls the backend's API and returns its JSON answer (Null when none);
    /// panics unless it succeeded.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Self::call`] with request headers.
    pub async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.api));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }

    /// Creates a task titled `title` and returns its id.
    pub async fn create(&self, title: &str) -> i64 {
        self.create_with(title, &[]).await
    }

    /// Creates a task titled `title` with request `headers`; returns its id.
    pub async fn create_with(&self, title: &str, headers: &[(&str, &str)]) -> i64 {
        let body = serde_json::json!({ "title": title });
        let t = self
            .call_with(reqwest::Method::POST, "/tasks", Some(body), headers)
            .await;
        t["id"].as_i64().unwrap()
    }

    /// Waits (up to 15 s) until the event service has processed `n` events
    /// of `task_id`.
    pub async fn processed(&self, task_id: i64, n: i64) {
        for _ in 0..300 {
            let have: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE task_id = $1")
                .bind(task_id)
                .fetch_one(&self.events_db)
                .await
                .unwrap();
            if have >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("task {task_id}: {n} events not processed in 15 s");
    }

    /// A URL of the event service.
    pub fn events_url(&self, path: &str) -> String {
        format!("{}{path}", self.events)
    }
}
