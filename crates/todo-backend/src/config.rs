//! The backend's configuration: flags and the environment variables of the
//! same meaning (see `.env.example`). Defaults run against `./dev up`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use todo_events::{ContentType, EventVersion};
use todo_kafka::{KafkaArgs, ProducerArgs, TopicSettings};
use todo_runtime::Secret;

use crate::outbox::relay::RelaySettings;

/// todo-backend: the task API with a transactional outbox relayed to Kafka.
#[derive(Parser, Clone, Debug)]
#[command(name = "todo-backend", version, about)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://todo:todo@127.0.0.1:5432/todo",
        hide_env_values = true
    )]
    pub database_url: Secret,
    /// Connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2_000)]
    pub database_acquire_timeout_ms: u64,
    /// Task ids each instance takes from the database at a time (new tasks
    /// need their id before the statement that writes them and their event).
    #[arg(long, env = "TASK_ID_BLOCK", default_value_t = 100)]
    pub task_id_block: i64,
    /// Writer tasks per kind of batched statement (create, change, delete,
    /// read): concurrent requests' items are run together, one statement and
    /// one commit per batch (group commit).
    #[arg(long, env = "BATCH_WRITERS", default_value_t = todo_outbox::write::DEFAULT_BATCH_WRITERS)]
    pub batch_writers: usize,
    /// Most writes in one statement.
    #[arg(long, env = "BATCH_MAX", default_value_t = todo_outbox::write::DEFAULT_BATCH_MAX)]
    pub batch_max: usize,
    /// Bytes of the tasks this instance wrote last that it keeps, so that a
    /// change to one of them need not read it first (every write still checks
    /// the task's version). 0: every change reads first.
    #[arg(long, env = "TASK_CACHE_BYTES", default_value_t = 32 << 20)]
    pub task_cache_bytes: u64,
    /// Write an outbox row (and so an event) for every change: the rollout flag.
    #[arg(long, env = "EVENTS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub events_enabled: bool,
    /// Event version producers write (v1 or v2).
    #[arg(long, env = "EVENT_VERSION", default_value = "v2")]
    pub event_version: EventVersion,
    /// Event encoding: application/json or application/avro.
    #[arg(long, env = "EVENT_CONTENT_TYPE", default_value = "application/json")]
    pub event_content_type: ContentType,
    /// HS256 secret; when set, task requests need a Bearer JWT whose `sub` is the user.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<Secret>,
    /// Request timeout.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Run the database migrations (waiting for the database if needed), then
    /// exit: the once-per-release step before a rollout (a Kubernetes Job).
    #[arg(long, env = "MIGRATE_ONLY")]
    pub migrate_only: bool,
    /// Do not migrate at start: wait until another process (a
    /// `--migrate-only` Job) has brought the schema to this binary's version.
    #[arg(long, env = "SKIP_MIGRATIONS")]
    pub skip_migrations: bool,
    /// Relay settings.
    #[command(flatten)]
    pub relay: RelayArgs,

    /// How the relay publishes: `kafka` (in process, the default) or `dapr`
    /// (through the sidecar's pub/sub API). One deployment uses one: the two
    /// hash keys to partitions differently.
    #[arg(
        long = "event-transport",
        env = "EVENT_TRANSPORT",
        value_enum,
        default_value = "kafka"
    )]
    pub event_transport: Transport,

    #[command(flatten)]
    pub dapr: todo_dapr::DaprArgs,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Kafka producer.
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Topic provisioning.
    #[command(flatten)]
    pub topics: TopicSettings,
}

/// Which transport the relay publishes with.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The Kafka producer, in process.
    Kafka,
    /// The Dapr sidecar's pub/sub API.
    Dapr,
}

/// The outbox relay.
#[derive(clap::Args, Clone, Debug)]
pub struct RelayArgs {
    /// Run the relay in this process (one relay is elected among all that run it).
    #[arg(long = "relay-enabled", env = "RELAY_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Outbox rows claimed per batch.
    #[arg(
        long = "relay-batch-size",
        env = "RELAY_BATCH_SIZE",
        default_value_t = 2_000
    )]
    pub batch_size: i64,
    /// Batches in flight at once: while Kafka acknowledges one, the next is
    /// read from the outbox and sent.
    #[arg(
        long = "relay-pipeline-depth",
        env = "RELAY_PIPELINE_DEPTH",
        default_value_t = 2
    )]
    pub pipeline_depth: usize,
    /// Kafka producers the relay spreads the topics over (`EVENT_TRANSPORT=kafka`).
    /// A topic's records all go through one producer, so their order per
    /// partition is kept. librdkafka sends one partition per produce request
    /// and the broker answers one connection's requests one at a time: with
    /// one producer, a batch over many partitions is acknowledged only after
    /// all of them in turn. Four: one per event topic.
    #[arg(
        long = "relay-kafka-producers",
        env = "RELAY_KAFKA_PRODUCERS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub kafka_producers: u16,
    /// Poll interval when no wake-up arrives (the fallback to LISTEN/NOTIFY).
    #[arg(
        long = "relay-poll-interval-ms",
        env = "RELAY_POLL_INTERVAL_MS",
        default_value_t = 500
    )]
    pub poll_interval_ms: u64,
    /// How often a standby relay tries to become the active one.
    #[arg(
        long = "relay-standby-interval-ms",
        env = "RELAY_STANDBY_INTERVAL_MS",
        default_value_t = 1_000
    )]
    pub standby_interval_ms: u64,
    /// First backoff after a failed batch; doubles up to the cap.
    #[arg(
        long = "relay-backoff-base-ms",
        env = "RELAY_BACKOFF_BASE_MS",
        default_value_t = 200
    )]
    pub backoff_base_ms: u64,
    /// Longest backoff between failed batches. Short enough that publishing
    /// resumes within a few seconds of Kafka's return.
    #[arg(
        long = "relay-backoff-cap-ms",
        env = "RELAY_BACKOFF_CAP_MS",
        default_value_t = 5_000
    )]
    pub backoff_cap_ms: u64,
    /// How long published rows are kept for replay (default 7 days, like the topics).
    #[arg(
        long = "outbox-retention-hours",
        env = "OUTBOX_RETENTION_HOURS",
        default_value_t = 168
    )]
    pub retention_hours: u64,
    /// How often published rows past retention are pruned.
    #[arg(
        long = "outbox-prune-interval-s",
        env = "OUTBOX_PRUNE_INTERVAL_S",
        default_value_t = 300
    )]
    pub prune_interval_s: u64,
}

impl RelayArgs {
    /// The relay's settings these flags describe.
    pub fn settings(&self) -> RelaySettings {
        RelaySettings {
            batch_size: self.batch_size,
            pipeline_depth: self.pipeline_depth,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            standby_interval: Duration::from_millis(self.standby_interval_ms),
            backoff: todo_runtime::retry::Backoff::new(
                Duration::from_millis(self.backoff_base_ms),
                2.0,
                Duration::from_millis(self.backoff_cap_ms),
            ),
            retention: Duration::from_secs(self.retention_hours * 3600),
            prune_interval: Duration::from_secs(self.prune_interval_s),
        }
    }
}

impl Config {
    /// The configuration from flags and environment, for tests: like running
    /// the binary with no flags.
    pub fn from_env() -> Self {
        Self::parse_from(["todo-backend"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct A {
        #[command(flatten)]
        r: RelayArgs,
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let a = A::parse_from(["x"]).r;
        let (base, cap) = (
            Duration::from_millis(a.backoff_base_ms),
            Duration::from_millis(a.backoff_cap_ms),
        );
        let b = a.settings().backoff;
        assert!(b.delay(1) <= base);
        for f in 1..40 {
            assert!(b.delay(f) <= cap);
        }
        assert!(b.delay(10) >= cap / 2);
    }
}
