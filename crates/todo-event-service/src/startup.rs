//! Building and running the service: store and migrations, topics, the
//! dead-letter producer, the notifier, the consumer and the read API; and
//! stopping all of it gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use todo_kafka::TopicNames;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::dlq::DeadLetters;
use crate::consumer::{ConsumerSettings, EventConsumer, KafkaProbe};
use crate::handlers::dedup::DedupStore;
use crate::handlers::notifier::{Notifier, NotifierSettings};
use crate::handlers::Processor;
use crate::routes;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The event store.
    pub pool: PgPool,
    /// Kafka readiness.
    pub kafka: KafkaProbe,
    /// Metrics exposition.
    pub metrics: PrometheusHandle,
}

/// A built service: consuming already, serving once run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    consumer: EventConsumer,
    pool: PgPool,
}

impl Application {
    /// Connects, migrates, provisions topics, starts the consumer and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = crate::metrics::install();
        let pool = crate::store::connect(
            config.database_url.expose(),
            config.database_max_connections,
            Duration::from_millis(config.database_acquire_timeout_ms),
        )
        .await
        .context("connecting to EVENT_DATABASE_URL")?;

        let topics = TopicNames::new(config.kafka.topic_prefix.clone());
        let admin_cfg = config.kafka.client_config(&[])?;
        let report = todo_kafka::provision_topics(&admin_cfg, &topics.all(), &config.topics)
            .await
            .context("provisioning Kafka topics")?;
        tracing::info!(created = ?report.created, existing = report.existing.len(), "topics provisioned");

        let outage_cap = Duration::from_millis(config.consumer.outage_backoff_cap_ms);
        let producer: FutureProducer = config
            .kafka
            .producer_config(&config.producer)?
            .create()
            .context("creating the dead-letter producer")?;
        let dead_letters = DeadLetters::new(
            producer,
            topics.dlq(),
            config.consumer.group_id.clone(),
            outage_cap,
        );
        let notifier = if config.webhooks.enabled() {
            let settings = NotifierSettings {
                urls: config.webhooks.urls.clone(),
                timeout: Duration::from_millis(config.webhooks.timeout_ms),
                store: if config.webhooks.dedup_store == "postgres" {
                    DedupStore::Postgres(pool.clone())
                } else {
                    DedupStore::redis(config.webhooks.redis_url.expose())?
                },
                dedup_ttl_s: config.webhooks.dedup_ttl_s,
                claim_ttl_ms: config.webhooks.claim_ttl_ms,
                retry: config.retry.backoff(),
                attempts: config.retry.attempts,
                outage_cap,
            };
            tracing::info!(urls = config.webhooks.urls.len(), store = %config.webhooks.dedup_store, "webhook notifier on");
            Some(Arc::new(Notifier::new(settings, dead_letters.clone())?))
        } else {
            None
        };
        let processor = Arc::new(Processor::new(
            pool.clone(),
            topics.clone(),
            dead_letters,
            config.retry.backoff(),
            config.retry.attempts,
            outage_cap,
            notifier,
        ));
        let consumer = EventConsumer::start(
            ConsumerSettings {
                client: config.kafka.client_config(&config.consumer.typed())?,
                topics: topics.task_topics(),
                batch_size: config.consumer.batch_size,
                drain_timeout: config.consumer.drain_timeout(),
                lag_interval: Duration::from_millis(config.consumer.lag_interval_ms),
            },
            processor,
        )
        .context("starting the Kafka consumer")?;
        tracing::info!(group = %config.consumer.group_id, topics = ?topics.task_topics(), "consumer subscribed");

        let state = AppState {
            pool: pool.clone(),
            kafka: consumer.probe(),
            metrics,
        };
        let router = Router::new()
            .merge(routes::audit::router())
            .merge(routes::events::router())
            .merge(routes::analytics::router())
            .merge(routes::health::router())
            .with_state(state);
        let router = todo_runtime::http::with_common_layers(
            router,
            Duration::from_millis(config.request_timeout_ms),
        );
        let listener = todo_runtime::http::bind(config.http_addr).await?;
        Ok(Self {
            listener,
            router,
            consumer,
            pool,
        })
    }

    /// The bound address (port 0 in tests becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `cancel`; then stops the read API, drains and commits the
    /// consumer, and closes the pool. Reports how each part ended.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let consumer = tokio::spawn(self.consumer.run_until_stopped(cancel.child_token()));
        let served = todo_runtime::http::serve(self.listener, self.router, cancel.clone()).await;
        cancel.cancel();
        let consumed = consumer.await.context("consumer task")?;
        tracing::info!(ok = consumed.is_ok(), "consumer stopped");
        self.pool.close().await;
        served.and(consumed)
    }
}
