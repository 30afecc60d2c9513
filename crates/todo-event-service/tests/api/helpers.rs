//! `Harness`: one test's isolated world (fresh database, unique topic prefix,
//! unique consumer group) with a producer of real events; `spawn()` starts the
//! service in-process on port 0. Plus a webhook receiver that counts POSTs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::PgPool;
use todo_event_service::{Application, Config};
use todo_events::{
    Changes, ContentType, Event, EventType, EventVersion, Payload, TaskCompleted, TaskCreated,
    TaskDeleted, TaskStatus, TaskUpdated,
};
use todo_kafka::{ProducerArgs, TopicNames};
use todo_testkit::{read_records, short_id, Record, Stack};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Topic, key, value and headers of one record to produce.
type Encoded = (String, String, Vec<u8>, Vec<(&'static str, String)>);

/// Retries `f` for up to `PATIENCE`; fails the test with the last error.
pub async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("creating {what} failed ({e:#}); trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("creating {what} failed: {e:#}"),
        }
    }
}

pub struct Harness {
    pub stack: Stack,
    pub database_url: String,
    pub prefix: String,
    pub group: String,
    pub topics: TopicNames,
    pub producer: FutureProducer,
    pub pool: PgPool,
}

pub struct TestService {
    pub address: String,
    pub client: reqwest::Client,
    pub cancel: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TestService {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A gauge labelled by topic and partition, from `/metrics`.
    pub async fn partition_gauge(&self, name: &str, topic: &str, partition: i32) -> Option<f64> {
        let text = self.get("/metrics").await.text().await.ok()?;
        let (topic, partition) = (
            format!("topic=\"{topic}\""),
            format!("partition=\"{partition}\""),
        );
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| l.contains(&topic) && l.contains(&partition))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// Stops the service gracefully (drain, commit, leave the group).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

impl Harness {
    pub async fn new() -> Self {
        let stack = Stack::from_env();
        // The stack is shared: other tests may be restarting a piece of it.
        let database_url = retry("a fresh database", || stack.fresh_database()).await;
        let prefix = stack.unique_topic_prefix();
        let topics = TopicNames::new(prefix.clone());
        let all_topics = topics.all();
        retry("the topics", || {
            todo_testkit::create_topics(&stack, &all_topics)
        })
        .await;
        let producer = stack
            .kafka_args(&prefix)
            .producer_config(&ProducerArgs::default())
            .unwrap()
            .create()
            .unwrap();
        // The service creates its tables; the harness only reads them.
        todo_runtime::db::Database::parse(&database_url)
            .unwrap()
            .migrate_once(&todo_event_service::store::migrations::MIGRATOR, true)
            .await
            .unwrap();
        let pool = PgPool::connect(&database_url).await.unwrap();
        Self {
            stack,
            database_url,
            prefix,
            group: format!("test-group-{}", short_id()),
            topics,
            producer,
            pool,
        }
    }

    /// The configuration a test service starts from: fast retries and samples.
    pub fn config(&self) -> Config {
        let mut c = Config::from_env();
        c.http_addr = "127.0.0.1:0".parse().unwrap();
        c.database_url = todo_runtime::Secret::new(&self.database_url);
        c.database_max_connections = 8;
        c.kafka = self.stack.kafka_args(&self.prefix);
        c.consumer.client.group_id = self.group.clone();
        c.consumer.client.auto_commit_interval_ms = 200;
        c.consumer.lag_interval_ms = 300;
        c.consumer.client.session_timeout_ms = 6_000;
        c.consumer.outage_backoff_cap_ms = 500;
        c.retry.attempts = 3;
        c.retry.base_ms = 20;
        c.retry.cap_ms = 100;
        c.webhooks.urls = Vec::new();
        c.webhooks.redis_url = todo_runtime::Secret::new(&self.stack.redis_url);
        c.webhooks.claim_ttl_ms = 5_000;
        c
    }

    pub async fn spawn(&self) -> TestService {
        self.spawn_with(|_| {}).await
    }

    pub async fn spawn_with(&self, adjust: impl FnOnce(&mut Config)) -> TestService {
        let mut config = self.config();
        adjust(&mut config);
        let app = Application::build(config)
            .await
            .expect("the event service builds");
        let address = format!("http://{}", app.local_addr());
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(cancel.clone()));
        TestService {
            address,
            client: reqwest::Client::new(),
            cancel,
            handle: Some(handle),
        }
    }

    /// The settings of the service's process on this harness.
    pub fn process_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EVENT_DATABASE_URL", self.database_url.clone()),
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                self.stack.kafka_bootstrap.clone(),
            ),
            ("KAFKA_TOPIC_PREFIX", self.prefix.clone()),
            ("KAFKA_GROUP_ID", self.group.clone()),
            ("CONSUMER_BATCH_SIZE", "50".into()),
            ("KAFKA_AUTO_COMMIT_INTERVAL_MS", "200".into()),
            ("WEBHOOK_URLS", String::new()),
        ]
    }

    /// The service's binary started on this harness, with `env` on top of
    /// the harness's settings; its output is discarded.
    pub fn start_process(&self, env: &[(&str, &str)]) -> std::process::Child {
        use std::process::{Command, Stdio};
        Command::new(env!("CARGO_BIN_EXE_todo-event-service"))
            .env("HTTP_ADDR", "127.0.0.1:0")
            .envs(self.process_env())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the service binary starts")
    }

    /// Produces one event to partition 0 of its topic.
    pub async fn produce_to_partition_0(&self, event: &Event) {
        self.produce_to_partition(event, 0).await
    }

    /// Produces one event to `partition` of its topic, whatever its key.
    pub async fn produce_to_partition(&self, event: &Event, partition: i32) {
        let value = event.encode(ContentType::Json).unwrap();
        let mut headers = OwnedHeaders::new();
        for (k, v) in &event.headers(ContentType::Json) {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let key = event.key();
        let topic = self.topic(event.event_type());
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key(key.as_bytes())
            .payload(&value)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }

    pub fn topic(&self, t: EventType) -> String {
        self.topics.for_event(t)
    }

    /// Produces events (JSON) to their topics, all in flight at once.
    pub async fn produce(&self, events: &[Event]) {
        self.produce_as(events, ContentType::Json).await
    }

    pub async fn produce_as(&self, events: &[Event], ct: ContentType) {
        let encoded: Vec<Encoded> = events
            .iter()
            .map(|e| {
                (
                    self.topic(e.event_type()),
                    e.key(),
                    e.encode(ct).unwrap(),
                    e.headers(ct),
                )
            })
            .collect();
        let sends = encoded.iter().map(|(topic, key, value, headers)| {
            self.send_raw(
                topic,
                Some(key.as_bytes()),
                value,
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            )
        });
        for r in futures::future::join_all(sends).await {
            r.expect("produced");
        }
    }

    /// Produces one record with exactly these bytes.
    pub async fn produce_raw(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        headers: Vec<(&str, &str)>,
    ) {
        self.send_raw(topic, Some(key.as_bytes()), value, headers)
            .await
            .expect("produced");
    }

    async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Vec<(&str, &str)>,
    ) -> Result<(), String> {
        let mut h = OwnedHeaders::new();
        for (k, v) in &headers {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(value).headers(h);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        self.producer
            .send(rec, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until `sql` returns `expected`; fails the test otherwise.
    pub async fn wait_for(&self, sql: &str, expected: i64) {
        let got = todo_testkit::eventually(PATIENCE, || async {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await.ok()?;
            (n == expected).then_some(n)
        })
        .await;
        if got.is_none() {
            panic!(
                "`{sql}` never returned {expected} (last: {})",
                self.scalar(sql).await
            );
        }
    }

    pub async fn processed(&self) -> i64 {
        self.scalar("SELECT count(*) FROM processed_events").await
    }

    /// Records on the DLQ (reads for at most `timeout` or until `n` arrived).
    /// A consumer error (the broker briefly unavailable, say) restarts the read.
    pub async fn dlq(&self, n: usize, timeout: Duration) -> Vec<Record> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match read_records(&self.stack.kafka_bootstrap, &[self.topics.dlq()], n, left).await {
                Ok(records) => return records,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("reading the DLQ failed ({e}); reading again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("reading the DLQ failed: {e}"),
            }
        }
    }

    /// The group's committed offset of every task topic partition, and the high watermark.
    pub async fn committed_and_high(&self) -> Vec<(String, i32, Option<i64>, i64)> {
        self.committed_and_high_of(&self.group).await
    }

    /// Waits until `group` has committed every task partition up to its high watermark.
    pub async fn wait_all_committed(&self, group: &str) {
        let done = todo_testkit::eventually(PATIENCE, || async {
            let rows = self.committed_and_high_of(group).await;
            rows.iter()
                .all(|(_, _, c, high)| *high == 0 || *c == Some(*high))
                .then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "group {group} never committed everything: {:?}",
            self.committed_and_high_of(group).await
        );
    }

    pub async fn committed_and_high_of(&self, group: &str) -> Vec<(String, i32, Option<i64>, i64)> {
        let bootstrap = self.stack.kafka_bootstrap.clone();
        let group = group.to_owned();
        let topics = self.topics.task_topics();
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &group)
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            for t in &topics {
                for p in 0..3 {
                    tpl.add_partition(t, p);
                }
            }
            let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
            committed
                .elements()
                .iter()
                .map(|e| {
                    let (_, high) = c
                        .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
                        .unwrap();
                    let off = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (e.topic().to_owned(), e.partition(), off, high)
                })
                .collect()
        })
        .await
        .unwrap()
    }
}

/// `seconds` after the start of the hour three hours before the tests started.
pub fn at(seconds: i64) -> DateTime<Utc> {
    use chrono::DurationRound;
    static BASE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        (Utc::now() - TimeDelta::hours(3))
            .duration_trunc(TimeDelta::hours(1))
            .unwrap()
    });
    base + TimeDelta::seconds(seconds)
}

pub fn created(task_id: i64, version: Option<i64>, at_s: i64, title: &str) -> Event {
    let p = TaskCreated {
        task_id,
        title: title.into(),
        description: None,
        status: TaskStatus::Incomplete,
        created_at: at(at_s),
        user_id: Some("alice".into()),
        task_version: version,
    };
    Event::new(Payload::Created(p), EventVersion::V2, Uuid::new_v4())
}

pub fn updated(
    task_id: i64,
    version: Option<i64>,
    at_s: i64,
    title: &str,
    status: TaskStatus,
) -> Event {
    let p = TaskUpdated {
        task_id,
        title: title.into(),
        description: Some("details".into()),
        status,
        updated_at: at(at_s),
        changes: Changes {
            title: true,
            description: true,
            status: false,
        },
        user_id: None,
        task_version: version,
    };
    Event::new(Payload::Updated(p), EventVersion::V2, Uuid::new_v4())
}

pub fn completed(task_id: i64, version: Option<i64>, at_s: i64) -> Event {
    let p = TaskCompleted {
        task_id,
        completed_at: at(at_s),
        user_id: None,
        task_version: version,
    };
    Event::new(Payload::Completed(p), EventVersion::V2, Uuid::new_v4())
}

pub fn deleted(task_id: i64, version: Option<i64>, at_s: i64) -> Event {
    let p = TaskDeleted {
        task_id,
        deleted_at: at(at_s),
        user_id: None,
        task_version: version,
    };
    Event::new(Payload::Deleted(p), EventVersion::V2, Uuid::new_v4())
}

/// The same event as v1 (no task_version).
pub fn v1(e: Event) -> Event {
    let mut e = e;
    e.event_version = EventVersion::V1;
    e.payload = e.payload.as_in_version(EventVersion::V1);
    e
}

/// A webhook receiver on port 0: counts POSTs per `X-Event-Id`; answers 500 to
/// the first `fail_first` requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = requests.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, _body: String| {
                let seen = seen.clone();
                async move {
                    let id = headers
                        .get("x-event-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut all = seen.lock().unwrap();
                    all.push(id);
                    if all.len() <= fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, requests }
    }

    /// Successful deliveries per event id (requests after the failing ones).
    pub fn total(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn per_event(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for id in self.requests.lock().unwrap().iter() {
            *m.entry(id.clone()).or_default() += 1;
        }
        m
    }
}
