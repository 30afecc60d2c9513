//! Processes the scenarios start or stop: an extra backend instance (events
//! off, or relay off) and the stack's own backend through `./dev`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::error::{Error, Result};

/// A backend this run started.
pub struct Instance {
    child: tokio::process::Child,
    /// Its base URL.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
}

/// A free local port (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Settings of an extra backend.
pub struct BackendSpec<'a> {
    /// The binary.
    pub bin: &'a Path,
    /// Backend database.
    pub database_url: &'a str,
    /// Brokers.
    pub kafka_bootstrap_servers: &'a str,
    /// EVENTS_ENABLED.
    pub events_enabled: bool,
    /// RELAY_ENABLED.
    pub relay_enabled: bool,
    /// Log file.
    pub log: PathBuf,
    /// Further settings.
    pub env: Vec<(&'static str, String)>,
}

/// Starts a backend on a free port and waits until `/health` answers.
pub async fn spawn_backend(spec: BackendSpec<'_>, http: &reqwest::Client) -> Result<Instance> {
    if !spec.bin.exists() {
        return Err(Error::Process(format!(
            "{} not found: build it with `cargo build --release -p todo-backend`",
            spec.bin.display()
        )));
    }
    let port = free_port()?;
    let log = std::fs::File::create(&spec.log)?;
    let child = tokio::process::Command::new(spec.bin)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", spec.database_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", spec.kafka_bootstrap_servers)
        .env("EVENTS_ENABLED", spec.events_enabled.to_string())
        .env("RELAY_ENABLED", spec.relay_enabled.to_string())
        .envs(spec.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let mut inst = Instance {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log: spec.log,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{}/health", inst.url)).send().await {
            if r.status().is_success() {
                return Ok(inst);
            }
        }
        if let Ok(Some(status)) = inst.child.try_wait() {
            return Err(Error::Process(format!(
                "backend exited ({status}); see {}",
                inst.log.display()
            )));
        }
        if std::time::Instant::now() > deadline {
            inst.stop().await;
            return Err(Error::Process("backend not healthy after 60 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Instance {
    /// SIGTERM, then SIGKILL after 15 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// An OTLP/HTTP endpoint that accepts every export and discards it (an
/// empty 200 answer is an empty `ExportTraceServiceResponse`, success in
/// both encodings), counting the requests; it stops with the run.
pub struct OtlpSink {
    /// Its base URL (an `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub url: String,
    /// Export requests received.
    pub requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpSink {
    /// Starts the sink on a free port.
    pub async fn start() -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let requests = std::sync::Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |_body: axum::body::Bytes| {
                counted.fetch_add(1, Ordering::Relaxed);
                async {}
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            requests,
            server,
        })
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs `./dev ARGS` (its output goes to our stderr).
pub async fn dev(script: &Path, args: &[&str]) -> Result<()> {
    let status = tokio::process::Command::new(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Process(format!(
            "{} {} failed ({status})",
            script.display(),
            args.join(" ")
        )))
    }
}
