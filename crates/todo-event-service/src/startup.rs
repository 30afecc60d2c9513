//! Building and running the service: store and migrations, topics, the
//! dead-letter producer, the notifier, the consumer and the read API; and
//! stopping all of it gracefully. PostgreSQL and Kafka are reached in the
//! background: the process starts and serves whatever else is down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use sqlx::PgPool;
use todo_kafka::TopicNames;
use todo_runtime::dependency::{
    wait_first_attempts, Dependency, Foundation, FoundationSettings, Shutdown,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EventSource};
use crate::intake::dapr::{DaprIntake, DaprIntakeSettings};
use crate::intake::kafka::{ConsumerSettings, EventConsumer, KafkaProbe, RunningConsumer};
use crate::pipeline::dead_letter::DeadLetters;
use crate::pipeline::dedup::DedupStore;
use crate::pipeline::notifier::{Notifier, NotifierSettings};
use crate::pipeline::Processor;
use crate::routes;
use crate::state::AppState;
use todo_dapr::subscribe::Delivery;

/// A built service: serving once run, consuming once PostgreSQL and Kafka
/// are both reached.
pub struct Application {
    listener: TcpListener,
    router: Router,
    consumer: ConsumerStart,
    pool: PgPool,
    shutdown: Shutdown,
}

/// What the consumer needs to start, once its dependencies are up.
struct ConsumerStart {
    /// Events come from the Dapr sidecar: no Kafka consumer.
    dapr: bool,
    settings: ConsumerSettings,
    processor: Arc<Processor>,
    database: Dependency,
    kafka: Dependency,
    running: RunningConsumer,
}

impl Application {
    /// Binds the listener and starts connecting to PostgreSQL (creating the
    /// store and migrating it) and Kafka (topics) in the background. The read
    /// API serves as soon as PostgreSQL is reached; the consumer starts once
    /// both are. Fails only on what retrying cannot fix: a malformed setting,
    /// a port in use, bad credentials, a failed migration, a topic with fewer
    /// partitions than configured.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = crate::metrics::install();
        let Foundation {
            shutdown,
            listener,
            pool,
            database,
            kafka,
        } = Foundation::lay(FoundationSettings {
            database_url: config.database_url.expose(),
            max_connections: config.database_max_connections,
            acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
            migrations: &crate::store::migrations::MIGRATIONS,
            skip_migrations: config.skip_migrations,
            kafka_bootstrap: &config.kafka.bootstrap_servers,
            http_addr: config.http_addr,
        })
        .await?;
        let topics = TopicNames::new(config.kafka.topic_prefix.clone());
        todo_kafka::provision_in_background(
            config.kafka.client_config(&[])?,
            topics.all(),
            config.topics.clone(),
            &kafka,
            &shutdown,
        );

        let outage_cap = Duration::from_millis(config.consumer.outage_backoff_cap_ms);
        let producer = todo_kafka::producer(&config.kafka.producer_config(&config.producer)?)
            .context("creating the dead-letter producer")?;
        let dead_letters = DeadLetters::new(
            producer,
            topics.dlq(),
            config.consumer.client.group_id.clone(),
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
                outage_cap,
            };
            tracing::info!(urls = config.webhooks.urls.len(), store = %config.webhooks.dedup_store, "webhook notifier on");
            Some(Arc::new(Notifier::new(settings)?))
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
        let running = RunningConsumer::default();
        let dapr = (config.event_source == EventSource::Dapr).then(|| {
            DaprIntake::new(
                processor.clone(),
                DaprIntakeSettings {
                    pubsub: config.dapr.dapr_pubsub.clone(),
                    topics: topics.task_topics(),
                    dead_letter_topic: topics.dlq(),
                    delivery: if config.dapr.dapr_bulk_subscribe {
                        Delivery::Bulk {
                            max_messages: config.consumer.batch_size,
                            max_await_ms: config.dapr.dapr_bulk_max_await_ms,
                        }
                    } else {
                        Delivery::Single
                    },
                    outage_answer_after: Duration::from_secs(5),
                },
                shutdown.token(),
            )
        });
        let consumer = ConsumerStart {
            dapr: dapr.is_some(),
            settings: ConsumerSettings {
                client: config.kafka.consumer_config(&config.consumer.client)?,
                topics: topics.task_topics(),
                group_id: config.consumer.client.group_id.clone(),
                batch_size: config.consumer.batch_size,
                drain_timeout: config.consumer.drain_timeout(),
                lag_interval: Duration::from_millis(config.consumer.lag_interval_ms),
            },
            processor,
            database: database.clone(),
            kafka: kafka.clone(),
            running: running.clone(),
        };

        // Finish starting at once when the dependencies are there; never wait
        // long for one that is not.
        wait_first_attempts(&[&database, &kafka]).await?;

        let state = AppState {
            pool: pool.clone(),
            database: database.clone(),
            kafka: KafkaProbe::new(kafka, running, dapr.is_some()),
            console: crate::console::Console::start(
                &config.console,
                config.kafka.clone(),
                metrics.clone(),
                shutdown.token(),
            ),
            metrics,
        };
        let router = routes::router(
            state,
            dapr.as_ref().map(|intake| intake.router()),
            Duration::from_millis(config.request_timeout_ms),
        );
        Ok(Self {
            listener,
            router,
            consumer,
            pool,
            shutdown,
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

    /// Serves until `cancel` (or until a background task meets a condition
    /// retrying cannot fix: then `Err` with that reason); then stops the read
    /// API, drains and commits the consumer, and closes the pool. Reports how
    /// each part ended.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "todo-event-service listening");
        self.shutdown.follow(cancel);
        let stop = self.shutdown.token();
        let consumer = tokio::spawn(self.consumer.run(self.shutdown.clone()));
        let served = todo_runtime::http::serve(self.listener, self.router, stop.clone()).await;
        stop.cancel();
        let consumed = consumer.await.context("consumer task")?;
        tracing::info!(ok = consumed.is_ok(), "consumer stopped");
        self.pool.close().await;
        served.and(consumed).and(self.shutdown.outcome())
    }
}

impl ConsumerStart {
    /// Waits for PostgreSQL and Kafka, then consumes until the service stops.
    async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let stop = shutdown.token();
        let deps = async {
            self.database
                .wait_up()
                .await
                .and(self.kafka.wait_up().await)
        };
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ready = deps => if ready.is_err() { return Ok(()) },
        }
        if self.dapr {
            tracing::info!(
                "events come from the Dapr sidecar (EVENT_SOURCE=dapr); no Kafka consumer"
            );
            stop.cancelled().await;
            return Ok(());
        }
        let group = self.settings.group_id.clone();
        let topics = self.settings.topics.clone();
        let consumer = match EventConsumer::start(self.settings, self.processor) {
            Ok(c) => c,
            Err(e) => {
                shutdown.fatal(format!("starting the Kafka consumer failed: {e:#}"));
                return Ok(());
            }
        };
        tracing::info!(%group, ?topics, "consumer subscribed");
        self.running.set(&consumer);
        consumer.run_until_stopped(stop.child_token()).await
    }
}
