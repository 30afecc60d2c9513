//! What every service process needs once. A process may run more than one of
//! our services (the end-to-end tests run the backend and the event service
//! together), so the global recorder and subscriber are installed here, once;
//! and both services serve HTTP, retry, reach their dependencies and stop the
//! same way.

pub mod db;
pub mod dependency;
pub mod http;
pub mod retry;
mod secret;
pub mod trace;

pub use secret::Secret;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Histogram buckets of every `*_seconds` metric: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram buckets of every `*_batch_size` metric: items per statement or
/// per batch, 1 to 5 000.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
/// Histograms named `*_seconds` or `*_batch_size` render as buckets (what
/// `histogram_quantile` needs); any other would render as a summary.
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are not empty")
                .set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), BATCH_SIZE_BUCKETS)
                .expect("buckets are not empty")
                .install_recorder()
                .expect("the recorder is installed only here")
        })
        .clone()
}

/// Installs the global tracing subscriber: `RUST_LOG` filter (default info),
/// `text` or `json` lines. Later calls do nothing.
pub fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The body of a service's `main`: turns span export on when configured
/// (see [`trace::init_export`]; `name` is the default service name), builds
/// the service, runs it until SIGTERM,
/// Ctrl-C or a condition retrying cannot fix, and turns a failure into one
/// readable line on stderr ("NAME: what was tried: what failed") and a
/// non-zero exit, with no backtrace.
pub async fn run_service<A, Fut>(
    name: &str,
    build: impl std::future::Future<Output = anyhow::Result<A>>,
    run: impl FnOnce(A, tokio_util::sync::CancellationToken) -> Fut,
) -> std::process::ExitCode
where
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let result = async {
        // Kept to the end: dropping it flushes the spans still queued.
        let _traces = trace::init_export(name)?;
        let app = build.await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        tokio::spawn(cancel_on_signal(cancel.clone()));
        run(app, cancel).await
    }
    .await;
    if result.is_ok() {
        tracing::info!("{name} stopped");
    }
    run_once(name, async { result }).await
}

/// The body of a one-shot command (`--migrate-only`): runs `task` and turns
/// a failure into one readable line on stderr and a non-zero exit.
pub async fn run_once(
    name: &str,
    task: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    match task.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Waits for SIGTERM or Ctrl-C, then cancels `cancel`.
pub async fn cancel_on_signal(cancel: tokio_util::sync::CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    #[test]
    fn installing_twice_returns_the_same_recorder() {
        let a = super::install_metrics();
        metrics::counter!("telemetry_test_total").increment(3);
        let b = super::install_metrics();
        assert!(
            b.render().contains("telemetry_test_total 3"),
            "{}",
            a.render()
        );
    }

    #[test]
    fn seconds_and_batch_sizes_render_as_buckets_and_other_histograms_as_summaries() {
        let handle = super::install_metrics();
        metrics::histogram!("telemetry_test_seconds").record(0.003);
        metrics::histogram!("telemetry_test_batch_size").record(7.0);
        metrics::histogram!("telemetry_test_other").record(7.0);
        let text = handle.render();
        for line in [
            "telemetry_test_seconds_bucket{le=\"0.005\"} 1",
            "telemetry_test_batch_size_bucket{le=\"5\"} 0",
            "telemetry_test_batch_size_bucket{le=\"10\"} 1",
            "# TYPE telemetry_test_other summary",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
