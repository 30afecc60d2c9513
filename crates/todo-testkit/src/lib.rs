//! Test helpers for integration tests against the real local stack.
//!
//! The stack's addresses come from the environment that `./dev test` sets
//! (`eval "$(./dev env)"` does the same in a shell). A missing variable is a
//! loud failure, never a skipped test.

pub mod browser;
pub mod dapr;
pub mod process;

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use sqlx::{Connection, PgConnection};

/// Where the local stack's services are.
#[derive(Clone, Debug)]
pub struct Stack {
    /// `KAFKA_BOOTSTRAP_SERVERS`.
    pub kafka_bootstrap: String,
    /// `DATABASE_URL` of the stack's main database.
    pub database_url: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `KAFKA_BROKERS`: how many brokers the cluster has.
    pub brokers: i32,
}

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `./dev test`, or `eval \"$(./dev env)\"` after `./dev up --infra`")
    })
}

impl Stack {
    /// Reads the stack's addresses from the environment.
    pub fn from_env() -> Self {
        Self {
            kafka_bootstrap: required("KAFKA_BOOTSTRAP_SERVERS"),
            database_url: required("DATABASE_URL"),
            redis_url: required("REDIS_URL"),
            brokers: std::env::var("KAFKA_BROKERS")
                .ok()
                .and_then(|b| b.parse().ok())
                .unwrap_or(1),
        }
    }

    /// Creates an empty database for one test and returns its URL.
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        let name = format!("test_{}", short_id());
        let mut conn = PgConnection::connect(&self.database_url)
            .await
            .context("connect to DATABASE_URL")?;
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut conn)
            .await?;
        let base = self
            .database_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .context("DATABASE_URL has no database")?;
        Ok(format!("{base}/{name}"))
    }

    /// A topic prefix no other test uses (topics named `t-<id>.todo.tasks.*`).
    pub fn unique_topic_prefix(&self) -> String {
        format!("t-{}.", short_id())
    }

    /// Kafka settings for this stack with the given topic prefix.
    pub fn kafka_args(&self, topic_prefix: &str) -> todo_kafka::KafkaArgs {
        let mut args = todo_kafka::KafkaArgs::local(&self.kafka_bootstrap);
        args.topic_prefix = topic_prefix.to_owned();
        args
    }
}

/// Twelve hex characters of a fresh UUID: unique enough for one test run.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// One record as a real consumer read it.
#[derive(Clone, Debug)]
pub struct Record {
    /// Topic it was read from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as UTF-8.
    pub key: Option<String>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers, values as UTF-8.
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `topics` from the beginning with a fresh consumer group until `n`
/// records arrived or `timeout` passed; returns what it read.
pub async fn read_records(
    bootstrap: &str,
    topics: &[String],
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-reader-{}", short_id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = consumer.stream();
    while out.len() < n {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(Some(msg)) = next else { break };
        let msg = match msg {
            Ok(msg) => msg,
            // A topic that only its first publish creates (through a Dapr
            // sidecar, say) is reported unknown until then; it comes.
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let headers = todo_kafka::headers_as_strings(&msg);
        out.push(Record {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: msg.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    Ok(out)
}

/// Creates `topics` with the services' provisioning (3 partitions).
pub async fn create_topics(stack: &Stack, topics: &[String]) -> anyhow::Result<()> {
    let cfg = todo_kafka::KafkaArgs::local(&stack.kafka_bootstrap).client_config(&[])?;
    todo_kafka::provision_topics(&cfg, topics, &todo_kafka::TopicSettings::default()).await?;
    Ok(())
}

/// A Redis connection to the stack's Redis.
pub async fn redis(stack: &Stack) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(stack.redis_url.as_str())?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// The value of one series in a Prometheus text exposition (a service's
/// `/metrics`): `series` is the name with its labels exactly as exported,
/// e.g. `task_write_batch_size_count{op="create"}`.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
