//! Processes the scenarios start or stop: extra backends (events off, relay
//! off, or more of the same) and event services, and the stack's own
//! services through `./dev`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::error::{Error, Result};

/// A service instance this run started (a backend or an event service).
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
    let mut env = vec![
        ("DATABASE_URL", spec.database_url.to_owned()),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            spec.kafka_bootstrap_servers.to_owned(),
        ),
        ("EVENTS_ENABLED", spec.events_enabled.to_string()),
        ("RELAY_ENABLED", spec.relay_enabled.to_string()),
    ];
    env.extend(spec.env);
    spawn_service(
        ServiceSpec {
            name: "backend",
            bin: spec.bin,
            crate_name: "todo-backend",
            log: spec.log,
            env,
        },
        http,
    )
    .await
}

/// Settings of an extra instance of one of our services.
pub struct ServiceSpec<'a> {
    /// What to call it in messages.
    pub name: &'a str,
    /// The binary.
    pub bin: &'a Path,
    /// Its crate (for the build hint when the binary is missing).
    pub crate_name: &'a str,
    /// Log file.
    pub log: PathBuf,
    /// Its settings (on top of this process's environment); `HTTP_ADDR` is
    /// set to a free port.
    pub env: Vec<(&'static str, String)>,
}

/// Starts a service on a free port and waits until `/health` answers.
pub async fn spawn_service(spec: ServiceSpec<'_>, http: &reqwest::Client) -> Result<Instance> {
    if !spec.bin.exists() {
        return Err(Error::Process(format!(
            "{} not found: build it with `cargo build --release -p {}`",
            spec.bin.display(),
            spec.crate_name
        )));
    }
    let port = free_port()?;
    let log = std::fs::File::create(&spec.log)?;
    let child = tokio::process::Command::new(spec.bin)
        .envs(spec.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
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
                "{} exited ({status}); see {}",
                spec.name,
                inst.log.display()
            )));
        }
        if std::time::Instant::now() > deadline {
            let why = format!(
                "{} not healthy after 60 s; see {}",
                spec.name,
                inst.log.display()
            );
            inst.stop().await;
            return Err(Error::Process(why));
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

    /// SIGKILL: a crash, with no goodbye to the consumer group.
    pub async fn kill(mut self) {
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
