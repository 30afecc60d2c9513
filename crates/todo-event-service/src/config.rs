//! The event service's configuration: flags and the environment variables of
//! the same meaning (see `.env.example`). Defaults run against `./dev up`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use todo_kafka::{KafkaArgs, ProducerArgs, TopicSettings};
use todo_runtime::Secret;

use crate::retry::Backoff;

/// todo-event-service: consumes the task events (audit, projection, analytics, webhooks).
#[derive(Parser, Clone, Debug)]
#[command(name = "todo-event-service", version, about)]
pub struct Config {
    /// Address the read API listens on.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,
    /// PostgreSQL URL of the service's own store (created if missing).
    #[arg(
        long,
        env = "EVENT_DATABASE_URL",
        default_value = "postgres://todo:todo@127.0.0.1:5432/todo_events",
        hide_env_values = true
    )]
    pub database_url: Secret,
    /// Connections in the pool (one per partition in flight, plus the API).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// How long a query waits for a connection before counting as an outage.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2_000)]
    pub database_acquire_timeout_ms: u64,
    /// Request timeout of the read API.
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
    /// Where events come from: `kafka` (the service's own consumer, the
    /// default) or `dapr` (deliveries from the Dapr sidecar's subscription).
    #[arg(
        long = "event-source",
        env = "EVENT_SOURCE",
        value_enum,
        default_value = "kafka"
    )]
    pub event_source: EventSource,
    /// The Dapr sidecar, with `EVENT_SOURCE=dapr`.
    #[command(flatten)]
    pub dapr: todo_dapr::DaprArgs,
    /// Consumer settings.
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    /// Retries of failing handlers.
    #[command(flatten)]
    pub retry: RetryArgs,
    /// Webhook notifier.
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Producer of dead letters.
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Topic provisioning.
    #[command(flatten)]
    pub topics: TopicSettings,
    /// The web console.
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// The web console (`/console`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConsoleArgs {
    /// The token that allows replaying dead letters from the console (sent as
    /// `Authorization: Bearer`); without it the console is read-only.
    #[arg(long, env = "CONSOLE_ADMIN_TOKEN", hide_env_values = true)]
    pub console_admin_token: Option<Secret>,
    /// The backend's `/metrics`, scraped for the publish-failure alert on the
    /// health page; without it that alert shows as unknown.
    #[arg(long, env = "CONSOLE_BACKEND_METRICS_URL")]
    pub console_backend_metrics_url: Option<String>,
}

/// Where events come from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventSource {
    /// The service's own Kafka consumer.
    Kafka,
    /// The Dapr sidecar's deliveries.
    Dapr,
}

/// The Kafka consumer.
#[derive(clap::Args, Clone, Debug)]
pub struct ConsumerArgs {
    /// The group's client settings (group id, commits, assignment).
    #[command(flatten)]
    pub client: todo_kafka::ConsumerArgs,
    /// Most events handled in one database transaction.
    #[arg(
        long = "consumer-batch-size",
        env = "CONSUMER_BATCH_SIZE",
        default_value_t = 500
    )]
    pub batch_size: usize,
    /// Longest wait for in-flight work on revoke and on shutdown.
    #[arg(
        long = "consumer-drain-timeout-ms",
        env = "CONSUMER_DRAIN_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub drain_timeout_ms: u64,
    /// How often consumer lag is sampled.
    #[arg(
        long = "consumer-lag-interval-ms",
        env = "CONSUMER_LAG_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub lag_interval_ms: u64,
    /// Longest pause between attempts while a dependency (Postgres, Redis, Kafka) is down.
    #[arg(
        long = "outage-backoff-cap-ms",
        env = "OUTAGE_BACKOFF_CAP_MS",
        default_value_t = 5_000
    )]
    pub outage_backoff_cap_ms: u64,
}

impl ConsumerArgs {
    /// Drain bound.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// Retries of a failing handler: exponential backoff with jitter, then the DLQ.
#[derive(clap::Args, Clone, Debug)]
pub struct RetryArgs {
    /// Attempts before an event goes to the DLQ (the first try counts).
    #[arg(long = "retry-attempts", env = "RETRY_ATTEMPTS", default_value_t = 5)]
    pub attempts: u32,
    /// First backoff.
    #[arg(long = "retry-base-ms", env = "RETRY_BASE_MS", default_value_t = 200)]
    pub base_ms: u64,
    /// Growth factor per attempt.
    #[arg(long = "retry-factor", env = "RETRY_FACTOR", default_value_t = 2.0)]
    pub factor: f64,
    /// Longest backoff.
    #[arg(long = "retry-cap-ms", env = "RETRY_CAP_MS", default_value_t = 10_000)]
    pub cap_ms: u64,
}

impl RetryArgs {
    /// The backoff policy.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.base_ms),
            self.factor,
            Duration::from_millis(self.cap_ms),
        )
    }
}

/// Webhook notifications on `task.completed`.
#[derive(clap::Args, Clone, Debug)]
pub struct WebhookArgs {
    /// URLs to POST completed events to, comma-separated; empty turns the notifier off.
    #[arg(long = "webhook-urls", env = "WEBHOOK_URLS", value_delimiter = ',')]
    pub urls: Vec<String>,
    /// Timeout of one POST.
    #[arg(
        long = "webhook-timeout-ms",
        env = "WEBHOOK_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub timeout_ms: u64,
    /// Redis for the notifier's deduplication.
    #[arg(
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/",
        hide_env_values = true
    )]
    pub redis_url: Secret,
    /// Where sent notifications are remembered: `redis` (the spec's choice) or
    /// `postgres` (the service's own database).
    #[arg(long = "webhook-dedup-store", env = "WEBHOOK_DEDUP_STORE", default_value = "redis", value_parser = ["redis", "postgres"])]
    pub dedup_store: String,
    /// How long a sent notification is remembered (redelivery within it sends nothing).
    #[arg(long = "webhook-dedup-ttl-s", env = "WEBHOOK_DEDUP_TTL_S", default_value_t = 7 * 24 * 3600)]
    pub dedup_ttl_s: u64,
    /// How long a claim on a notification in progress lasts (a crashed sender's
    /// claim expires after it, and redelivery sends).
    #[arg(
        long = "webhook-claim-ttl-ms",
        env = "WEBHOOK_CLAIM_TTL_MS",
        default_value_t = 120_000
    )]
    pub claim_ttl_ms: u64,
}

impl WebhookArgs {
    /// True when at least one URL is configured.
    pub fn enabled(&self) -> bool {
        self.urls.iter().any(|u| !u.trim().is_empty())
    }
}

impl Config {
    /// The configuration from flags and environment, for tests: like running
    /// the binary with no flags.
    pub fn from_env() -> Self {
        Self::parse_from(["todo-event-service"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stored_by_the_service_and_never_automatically() {
        let cfg = Config::parse_from(["todo-event-service"]);
        let typed = cfg.consumer.client.typed();
        assert!(typed.contains(&("enable.auto.offset.store", "false".into())));
        assert!(typed.contains(&("group.id", "todo-event-service".into())));
    }

    #[test]
    fn the_notifier_is_off_without_urls() {
        let cfg = Config::parse_from(["todo-event-service"]);
        assert!(!cfg.webhooks.enabled());
        let cfg = Config::parse_from([
            "todo-event-service",
            "--webhook-urls",
            "http://a/x,http://b/y",
        ]);
        assert_eq!(cfg.webhooks.urls.len(), 2);
        assert!(cfg.webhooks.enabled());
    }
}
