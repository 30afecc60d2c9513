//! Building and running the application: pool and migrations, topics, the
//! relay, the HTTP server; and stopping all of it gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::FutureProducer;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use todo_kafka::TopicNames;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::Config;
use crate::outbox::relay::Relay;
use crate::outbox::EventWriter;
use crate::routes;
use crate::store::batched_writes::{Changes, Creates, Deletes};
use crate::store::batcher::Batcher;
use crate::store::tasks::TaskIds;

/// Largest request body accepted (413 above).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Writes outbox rows.
    pub events: EventWriter,
    /// Ids for new tasks.
    pub task_ids: Arc<TaskIds>,
    /// Writes new tasks (group commit).
    pub creates: Batcher<Creates>,
    /// Writes changes to tasks (group commit).
    pub changes: Batcher<Changes>,
    /// Deletes tasks (group commit).
    pub deletes: Batcher<Deletes>,
    /// JWT verification when authentication is on.
    pub auth: Option<Arc<Auth>>,
    /// Metrics exposition.
    pub metrics: PrometheusHandle,
}

/// A built, not yet running, backend.
pub struct Application {
    listener: TcpListener,
    router: Router,
    relay: Option<Relay>,
    pool: PgPool,
}

impl Application {
    /// Connects, migrates, provisions topics and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = crate::metrics::install();
        let pool = PgPoolOptions::new()
            .max_connections(config.database_max_connections)
            .acquire_timeout(Duration::from_millis(config.database_acquire_timeout_ms))
            // NB: no ping before every checkout: it was one extra round trip per
            // request (seen in the profile, docs/performance.md). A connection
            // broken by a database restart fails its next query instead, which
            // answers 503 and is dropped from the pool.
            .test_before_acquire(false)
            .connect(config.database_url.expose())
            .await
            .context("connecting to DATABASE_URL")?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("running migrations")?;

        let topics = TopicNames::new(config.kafka.topic_prefix.clone());
        let events = EventWriter::new(
            config.events_enabled,
            config.event_version,
            config.event_content_type,
            topics.clone(),
        );
        let relay = if config.relay.enabled {
            let producer_cfg = config.kafka.producer_config(&config.producer)?;
            let admin_cfg = config.kafka.client_config(&[])?;
            let report = todo_kafka::provision_topics(&admin_cfg, &topics.all(), &config.topics)
                .await
                .context("provisioning Kafka topics")?;
            tracing::info!(created = ?report.created, existing = report.existing.len(), "topics provisioned");
            let producer: FutureProducer = producer_cfg
                .create()
                .context("creating the Kafka producer")?;
            Some(Relay::new(
                pool.clone(),
                producer,
                config.relay.clone(),
                events.wake_signal(),
            ))
        } else {
            None
        };

        let state = AppState {
            pool: pool.clone(),
            events,
            task_ids: Arc::new(TaskIds::new(config.task_id_block)),
            creates: Batcher::start(pool.clone(), config.batch_writers, config.batch_max),
            changes: Batcher::start(pool.clone(), config.batch_writers, config.batch_max),
            deletes: Batcher::start(pool.clone(), config.batch_writers, config.batch_max),
            auth: config
                .jwt_hs256_secret
                .as_ref()
                .map(|s| Arc::new(Auth::hs256(s.expose()))),
            metrics,
        };
        let router = Router::new()
            .merge(routes::tasks::router())
            .merge(routes::health::router())
            .merge(routes::openapi::router())
            .layer(axum::middleware::from_fn(
                crate::telemetry::correlation_layer,
            ))
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
            .with_state(state);
        let router = todo_runtime::http::with_common_layers(
            router,
            Duration::from_millis(config.request_timeout_ms),
        );
        let listener = todo_runtime::http::bind(config.http_addr).await?;
        Ok(Self {
            listener,
            router,
            relay,
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

    /// Serves until `cancel`, then drains requests and stops the relay.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let relay = self
            .relay
            .map(|r| tokio::spawn(r.run(cancel.child_token())));
        let sampler = tokio::spawn(crate::metrics::sample_outbox(
            self.pool.clone(),
            Duration::from_secs(2),
            cancel.child_token(),
        ));
        todo_runtime::http::serve(self.listener, self.router, cancel.clone()).await?;
        cancel.cancel();
        if let Some(relay) = relay {
            relay.await.context("relay task")?;
        }
        let _ = sampler.await;
        self.pool.close().await;
        Ok(())
    }
}
