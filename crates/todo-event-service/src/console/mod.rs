//! The web console at `/console`: live events, a task's timeline, the dead
//! letters (replayable with the admin token) and the pipeline's health.
//!
//! Server-rendered HTML (maud escapes every value it inserts) with one small
//! script and one stylesheet of our own, served under a strict
//! Content-Security-Policy: nothing inline runs, nothing loads from elsewhere.

mod dead_letters;
mod health;
mod live;
mod pages;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

pub use health::{Alert, AlertState, Health, Sample};

use crate::config::ConsoleArgs;
use crate::state::AppState;

/// What the console needs besides the read API's state.
#[derive(Clone)]
pub struct Console {
    admin_token: Option<Arc<todo_runtime::Secret>>,
    kafka: Arc<todo_kafka::KafkaArgs>,
    health: Health,
    /// Ends the live streams when the service stops (a graceful shutdown
    /// waits for open connections).
    stop: tokio_util::sync::CancellationToken,
}

impl Console {
    /// The console of a service reading Kafka through `kafka`; its health
    /// sampler runs until `cancel`.
    pub fn start(
        args: &ConsoleArgs,
        kafka: todo_kafka::KafkaArgs,
        metrics: metrics_exporter_prometheus::PrometheusHandle,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            admin_token: args
                .console_admin_token
                .clone()
                .filter(|t| !t.expose().is_empty())
                .map(Arc::new),
            kafka: Arc::new(kafka),
            health: Health::start(
                metrics,
                args.console_backend_metrics_url.clone(),
                cancel.clone(),
            ),
            stop: cancel,
        }
    }

    /// Whether replays are allowed at all (an admin token is configured).
    fn writable(&self) -> bool {
        self.admin_token.is_some()
    }
}

/// The page's policy: our own script, style and images, nothing inline,
/// no frames, forms and fetches only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's routes, under `/console`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(live::page))
        .route("/console/stream", get(live::stream))
        .route("/console/tasks", get(pages::find_task))
        .route("/console/tasks/{id}", get(pages::timeline))
        .route("/console/dead-letters", get(dead_letters::page))
        .route("/console/dead-letters/replay", post(dead_letters::replay))
        .route("/console/health", get(pages::health))
        .route("/console/health/alerts", get(pages::alerts_fragment))
        .route("/console/health/chart.svg", get(pages::chart))
        .route(
            "/console/assets/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
                    .into_response()
            }),
        )
        .route(
            "/console/assets/console.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
            }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}
