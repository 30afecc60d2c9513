//! The scenarios: each drives load, samples the stack, waits for the events,
//! and turns what the databases recorded into its part of the report.

mod backlog;
mod ceiling;
mod harness;
mod max;
mod overhead;
mod plots;
mod probes;
mod ramp;
mod scale;
mod settle;
mod steady;
pub mod warmup;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlx::PgPool;

use crate::cli::Common;
use crate::error::{Error, Result};
use crate::instance::BackendSpec;
use crate::sampler::{LagProbe, Sources};

pub use backlog::backlog;
pub use ceiling::{
    best_step, ceiling, default_batch_sizes, lowest_ceiling, newest_ramp, pct_of, pipeline_rate,
};
pub use harness::{cpu_mean, measure, Hooks, Load, Measured};
pub use max::max;
pub use overhead::overhead;
pub use plots::plot_run;
pub use probes::{cpu_busy_over, cpu_busy_since, own_cpu_s, wait_quiet};
pub use ramp::{hold, ramp, step_verdict};
pub use scale::{absorption, scale};
pub use settle::{settle, settling};
pub use steady::steady;

/// What every scenario needs.
#[derive(Clone)]
pub struct Ctx {
    /// Options.
    pub common: Common,
    /// Backend database.
    pub backend_db: PgPool,
    /// Event service database.
    pub events_db: PgPool,
    /// Client for /metrics and health.
    pub http: reqwest::Client,
    /// Consumer lag from Kafka.
    pub lag: Option<Arc<LagProbe>>,
    /// Report directory.
    pub out: PathBuf,
    /// The backends the load goes to, round robin, and whose /metrics are
    /// summed: the stack's, and the extra ones of `scale`.
    pub backends: Vec<String>,
    /// The event services whose /metrics are summed (one consumer group).
    pub event_services: Vec<String>,
    /// Whether an open-loop run of this process has warmed the stack up
    /// (shared by the clones that scenarios make).
    warmed_up: Arc<AtomicBool>,
}

impl Ctx {
    /// Connects to both databases and Kafka.
    pub async fn connect(common: Common, out: PathBuf) -> Result<Self> {
        let opts = || {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
        };
        let backend_db = opts().connect(&common.database_url).await?;
        let events_db = opts().connect(&common.event_database_url).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let kafka = common.kafka.clone();
        let group = common.consumer_group.clone();
        let topics = todo_kafka::TopicNames::new(kafka.topic_prefix.clone()).task_topics();
        let lag = tokio::task::spawn_blocking(move || LagProbe::new(&kafka, &group, &topics))
            .await
            .map_err(|e| Error::Process(e.to_string()))?;
        let lag = match lag {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                eprintln!("consumer lag from Kafka unavailable ({e}); using /metrics only");
                None
            }
        };
        Ok(Self {
            backends: vec![common.backend_url.clone()],
            event_services: vec![common.event_service_url.clone()],
            common,
            backend_db,
            events_db,
            http,
            lag,
            out,
            warmed_up: Arc::new(AtomicBool::new(false)),
        })
    }

    fn sources(&self) -> Sources {
        Sources {
            backend_db: self.backend_db.clone(),
            backend_metrics: self.backend_metrics_urls(),
            events_metrics: self.events_metrics_urls(),
            http: self.http.clone(),
            lag: self.lag.clone(),
        }
    }

    /// An extra backend on the stack's database and brokers, events and relay
    /// on, logging to `log` in the report directory: scenarios change what
    /// differs.
    fn extra_backend(&self, log: &str) -> BackendSpec<'_> {
        BackendSpec {
            bin: &self.common.backend_bin,
            database_url: &self.common.database_url,
            kafka_bootstrap_servers: &self.common.kafka.bootstrap_servers,
            events_enabled: true,
            relay_enabled: true,
            log: self.out.join(log),
            env: Vec::new(),
        }
    }

    fn backend_metrics_urls(&self) -> Vec<String> {
        metrics_urls(&self.backends)
    }

    fn events_metrics_urls(&self) -> Vec<String> {
        metrics_urls(&self.event_services)
    }
}

fn metrics_urls(bases: &[String]) -> Vec<String> {
    bases
        .iter()
        .map(|b| format!("{}/metrics", b.trim_end_matches('/')))
        .collect()
}

/// `r`'s value, or `None` with its error printed and added to `errors`: one
/// part of a run that meets an outage, while the others still report.
pub fn keep<T>(name: &str, r: Result<T>, errors: &mut Vec<String>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("{name} failed: {e}");
            errors.push(format!("{name}: {e}"));
            None
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len_s: u64, prefix: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len_s), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos:>4}/{len}s {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_owned());
    pb
}
