//! Building and running the application: pool and migrations, topics, the
//! relay, the HTTP server; and stopping all of it gracefully. PostgreSQL and
//! Kafka are reached in the background: the process starts and serves
//! whatever else is down.

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

use crate::auth::Auth;
use crate::config::Config;
use crate::config::Transport;
use crate::outbox::publish::dapr::DaprPublisher;
use crate::outbox::publish::kafka::KafkaPublisher;
use crate::outbox::relay::{Relay, RunRelay};
use crate::outbox::EventWriter;
use crate::routes;
use crate::service::tasks::{Tasks, WriteSettings};
use crate::state::{AppState, Shared};
use crate::store::migrations;

/// A built, not yet running, backend.
pub struct Application {
    listener: TcpListener,
    router: Router,
    relay: Option<RunRelay>,
    pool: PgPool,
    database: Dependency,
    kafka: Dependency,
    shutdown: Shutdown,
}

impl Application {
    /// Binds the listener and starts connecting to PostgreSQL (migrations)
    /// and Kafka (topics) in the background. Neither needs to be up: the API
    /// answers 503 until the database is, and the outbox keeps every write
    /// until Kafka is. Fails only on what retrying cannot fix: a malformed
    /// setting, a port in use, bad credentials, a failed migration.
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
            migrations: &migrations::MIGRATIONS,
            skip_migrations: config.skip_migrations,
            kafka_bootstrap: &config.kafka.bootstrap_servers,
            http_addr: config.http_addr,
        })
        .await?;

        let topics = TopicNames::new(config.kafka.topic_prefix.clone());
        let events = EventWriter::new(
            config.events_enabled,
            config.event_version,
            config.event_content_type,
            topics.clone(),
        );
        let relay = if config.relay.enabled {
            let (settings, wake) = (config.relay.settings(), events.wake_signal());
            let relay: RunRelay = match config.event_transport {
                Transport::Kafka => {
                    let producers = todo_kafka::producers(
                        &config.kafka.producer_config(&config.producer)?,
                        config.relay.kafka_producers.into(),
                    )
                    .context("creating the Kafka producers")?;
                    let publisher = KafkaPublisher::new(producers, &topics.task_topics());
                    Relay::new(pool.clone(), publisher, settings, wake).boxed()
                }
                Transport::Dapr => {
                    let sidecar = config.dapr.sidecar();
                    tracing::warn!(sidecar = %sidecar.base_url, pubsub = %sidecar.pubsub,
                        "publishing through the Dapr sidecar: every publisher of these topics must use Dapr too \
                         (Dapr's producer hashes keys to partitions differently from the Kafka client's)");
                    let dapr = todo_dapr::publish::Publisher::new(
                        sidecar,
                        Duration::from_millis(config.dapr.dapr_timeout_ms),
                    )
                    .context("creating the Dapr client")?;
                    Relay::new(pool.clone(), DaprPublisher(dapr), settings, wake).boxed()
                }
            };
            todo_kafka::provision_in_background(
                config.kafka.client_config(&[])?,
                topics.all(),
                config.topics.clone(),
                &kafka,
                &shutdown,
            );
            Some(relay)
        } else {
            kafka.disable();
            None
        };

        // Finish starting at once when the dependencies are there; never wait
        // long for one that is not.
        wait_first_attempts(&[&database, &kafka]).await?;

        let state = AppState::new(Shared {
            pool: pool.clone(),
            tasks: Tasks::new(
                pool.clone(),
                events,
                WriteSettings {
                    id_block: config.task_id_block,
                    writers: config.batch_writers,
                    max_batch: config.batch_max,
                    cache_bytes: config.task_cache_bytes,
                },
            ),
            auth: config
                .jwt_hs256_secret
                .as_ref()
                .map(|s| Arc::new(Auth::hs256(s.expose()))),
            metrics,
            database: database.clone(),
            kafka: kafka.clone(),
        });
        let router = routes::router(state, Duration::from_millis(config.request_timeout_ms));
        Ok(Self {
            listener,
            router,
            relay,
            pool,
            database,
            kafka,
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
    /// retrying cannot fix: then `Err` with that reason), then drains
    /// requests and stops the relay. The relay starts once the database is
    /// migrated and the topics exist.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "todo-backend listening");
        self.shutdown.follow(cancel);
        let stop = self.shutdown.token();
        let relay = self.relay.map(|r| {
            let (database, kafka, stop) = (self.database.clone(), self.kafka.clone(), stop.clone());
            tokio::spawn(async move {
                let deps = async { database.wait_up().await.and(kafka.wait_up().await) };
                tokio::select! {
                    _ = stop.cancelled() => {}
                    ready = deps => if ready.is_ok() { r(stop.child_token()).await },
                }
            })
        });
        let sampler = tokio::spawn(crate::metrics::sample_outbox(
            self.pool.clone(),
            Duration::from_secs(2),
            stop.child_token(),
        ));
        let served = todo_runtime::http::serve(self.listener, self.router, stop.clone()).await;
        stop.cancel();
        if let Some(relay) = relay {
            relay.await.context("relay task")?;
        }
        let _ = sampler.await;
        self.pool.close().await;
        served.and(self.shutdown.outcome())
    }
}
