//! A real Dapr sidecar (`daprd`) for tests, against the local Kafka.
//!
//! The binary is the one `./dev up --dapr`, `./dev test` or `ops/dapr.sh`
//! builds once per version (`.local/dapr/1.14.4/bin/daprd`, or `TODO_DAPRD`).
//! Each [`Sidecar`] gets free ports on 127.0.0.1, its own resources folder
//! rendered from `deploy/dapr` (the brokers pointed at the test's Kafka, a
//! consumer group of its own) and a log file, and is killed when dropped.
//!
//! By default the rendered pub/sub component is unscoped: any app id loads it
//! and may publish and subscribe to any topic, because tests use prefixed
//! topic names (`t-<id>.todo.tasks.created`) that the deployment's
//! `publishingScopes` / `subscriptionScopes` (exact topic names per app id)
//! would refuse with 403. [`SidecarBuilder::scoped`] keeps the deployment's
//! scopes with the test's prefix put in front of each topic.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::closed_port;

/// The daprd version `ops/dapr.sh` builds.
pub const DAPR_VERSION: &str = "1.14.4";
/// The pub/sub component's name in `deploy/dapr/pubsub.yaml`.
pub const PUBSUB_NAME: &str = "kafka-pubsub";

/// How long a sidecar may take to load its components.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (this crate is `crates/todo-testkit`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/todo-testkit is two levels below the workspace root")
        .to_path_buf()
}

/// The daprd binary: `TODO_DAPRD`, else the cache `ops/dapr.sh` fills.
/// Panics with what to run when it is missing.
pub fn daprd_path() -> PathBuf {
    let path = match std::env::var_os("TODO_DAPRD") {
        Some(p) => PathBuf::from(p),
        None => {
            let local = std::env::var_os("TODO_LOCAL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join(".local"));
            local.join("dapr").join(DAPR_VERSION).join("bin/daprd")
        }
    };
    assert!(
        path.is_file(),
        "daprd {DAPR_VERSION} is not built at {}: `./dev up --dapr`, `./dev test` or `bash ops/dapr.sh` \
         builds it once (about 3.5 minutes), or set TODO_DAPRD to a daprd binary",
        path.display()
    );
    path
}

/// Which app ids and topics the rendered pub/sub component allows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scoping {
    /// No scopes: any app id, any topic.
    Open,
    /// The deployment's scopes, each topic name prefixed.
    Deployment { topic_prefix: String },
}

/// Options for a [`Sidecar`] beyond the three that [`Sidecar::start`] takes.
#[derive(Clone, Debug)]
pub struct SidecarBuilder {
    app_id: String,
    app_port: u16,
    kafka_bootstrap: String,
    consumer_group: Option<String>,
    scoping: Scoping,
}

impl SidecarBuilder {
    /// The Kafka consumer group of the sidecar's subscriptions. The default
    /// is one of its own (`<app_id>-<id>`), kept across [`Sidecar::restart`].
    pub fn consumer_group(mut self, group: impl Into<String>) -> Self {
        self.consumer_group = Some(group.into());
        self
    }

    /// Keeps the deployment's `scopes`, `publishingScopes` and
    /// `subscriptionScopes`, with `topic_prefix` in front of each topic: the
    /// app id must then be `todo-backend` or `todo-event-service`, and each
    /// may only use its own topics.
    pub fn scoped(mut self, topic_prefix: impl Into<String>) -> Self {
        self.scoping = Scoping::Deployment {
            topic_prefix: topic_prefix.into(),
        };
        self
    }

    /// Starts daprd and waits until it can publish (`/v1.0/healthz/outbound`
    /// answers 204). Panics, with the sidecar's log, when it does not.
    pub async fn start(self) -> Sidecar {
        let daprd = daprd_path();
        let root = workspace_root();
        let dir =
            std::env::temp_dir().join(format!("todo-dapr-{}-{}", self.app_id, crate::short_id()));
        let resources = dir.join("resources");
        fs::create_dir_all(&resources).expect("creating the sidecar's resources dir");
        let group = self
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.app_id, crate::short_id()));
        let read = |name: &str| {
            let path = root.join("deploy/dapr").join(name);
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        };
        fs::write(
            resources.join("pubsub.yaml"),
            render_pubsub(
                &read("pubsub.yaml"),
                &self.kafka_bootstrap,
                &group,
                &self.scoping,
            ),
        )
        .expect("writing the rendered pubsub.yaml");
        fs::write(
            resources.join("resiliency.yaml"),
            render_resiliency(&read("resiliency.yaml"), &self.scoping),
        )
        .expect("writing the rendered resiliency.yaml");
        let mut sidecar = Sidecar {
            app_id: self.app_id,
            app_port: self.app_port,
            consumer_group: group,
            ports: Ports::free(self.app_port),
            config: root.join("deploy/dapr/configuration.yaml"),
            log: dir.join("daprd.log"),
            daprd,
            dir,
            child: None,
        };
        sidecar.spawn();
        sidecar.wait_ready().await;
        sidecar
    }
}

/// The four ports a sidecar listens on, all on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
struct Ports {
    http: u16,
    grpc: u16,
    internal_grpc: u16,
    metrics: u16,
}

impl Ports {
    /// Four distinct free ports, none of them `app_port`: the app's port is
    /// only reserved, not bound, until the app starts after its sidecar, so
    /// the OS may hand it out again here (daprd then refuses to start).
    fn free(app_port: u16) -> Self {
        let mut taken = vec![app_port];
        let mut next = || loop {
            let p = closed_port();
            if !taken.contains(&p) {
                taken.push(p);
                return p;
            }
        };
        Self {
            http: next(),
            grpc: next(),
            internal_grpc: next(),
            metrics: next(),
        }
    }
}

/// A running daprd for one app; killed (SIGKILL) when dropped. Its folder
/// (rendered resources and log) is removed then, unless the test panicked.
pub struct Sidecar {
    app_id: String,
    app_port: u16,
    consumer_group: String,
    ports: Ports,
    daprd: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Sidecar {
    /// Starts a sidecar for `app_id`, whose app listens (or will) on
    /// `127.0.0.1:app_port`, publishing to and reading from
    /// `kafka_bootstrap`; unscoped, with a consumer group of its own.
    pub async fn start(app_id: &str, app_port: u16, kafka_bootstrap: &str) -> Sidecar {
        Self::builder(app_id, app_port, kafka_bootstrap)
            .start()
            .await
    }

    /// A sidecar with more options; see [`SidecarBuilder`].
    pub fn builder(app_id: &str, app_port: u16, kafka_bootstrap: &str) -> SidecarBuilder {
        SidecarBuilder {
            app_id: app_id.to_owned(),
            app_port,
            kafka_bootstrap: kafka_bootstrap.to_owned(),
            consumer_group: None,
            scoping: Scoping::Open,
        }
    }

    /// The port of the sidecar's HTTP API (what a service gets as `DAPR_HTTP_PORT`).
    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// The port of the sidecar's gRPC API.
    pub fn grpc_port(&self) -> u16 {
        self.ports.grpc
    }

    /// `http://127.0.0.1:<http_port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// The app id it runs for.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The Kafka consumer group of its subscriptions.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// The environment a service needs to use this sidecar.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DAPR_HTTP_PORT", self.ports.http.to_string()),
            ("DAPR_PUBSUB_NAME", PUBSUB_NAME.to_owned()),
        ]
    }

    /// Where daprd's output goes (every run of it, restarts appended).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of daprd's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The daprd process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while daprd runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILLs daprd (no graceful shutdown: in-flight requests are cut)
    /// and waits until it is gone. A no-op when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts daprd again on the same ports, resources and consumer group
    /// (killing it first if it still runs) and waits until it can publish.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// Waits until daprd also reaches its app (`/v1.0/healthz` answers 204),
    /// which is when it has read the app's subscriptions.
    pub async fn wait_app_reachable(&mut self, timeout: Duration) {
        self.wait_for_health("/v1.0/healthz", timeout).await;
    }

    fn spawn(&mut self) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log.display()));
        let _ = writeln!(
            log,
            "--- todo-testkit: starting daprd for {} (HTTP {}, gRPC {}, internal gRPC {}, metrics {}, app {})",
            self.app_id,
            self.ports.http,
            self.ports.grpc,
            self.ports.internal_grpc,
            self.ports.metrics,
            self.app_port
        );
        let err = log.try_clone().expect("cloning the log file handle");
        let child = Command::new(&self.daprd)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.daprd.display()));
        self.child = Some(child);
    }

    /// The same flags as `ops/dapr.sh`: every listener on 127.0.0.1,
    /// Kubernetes name resolution (the standalone default, mDNS, multicasts),
    /// no placement or scheduler (daprd only warns).
    fn args(&self) -> Vec<String> {
        let p = self.ports;
        let resources = self.dir.join("resources");
        [
            ("--mode", "standalone".to_owned()),
            ("--app-id", self.app_id.clone()),
            ("--app-port", self.app_port.to_string()),
            ("--app-protocol", "http".to_owned()),
            ("--app-channel-address", "127.0.0.1".to_owned()),
            ("--dapr-http-port", p.http.to_string()),
            ("--dapr-grpc-port", p.grpc.to_string()),
            ("--dapr-internal-grpc-port", p.internal_grpc.to_string()),
            ("--metrics-port", p.metrics.to_string()),
            ("--dapr-listen-addresses", "127.0.0.1".to_owned()),
            (
                "--dapr-internal-grpc-listen-address",
                "127.0.0.1".to_owned(),
            ),
            ("--dapr-public-listen-address", "127.0.0.1".to_owned()),
            ("--metrics-listen-address", "127.0.0.1".to_owned()),
            ("--resources-path", resources.display().to_string()),
            ("--config", self.config.display().to_string()),
            ("--log-level", "info".to_owned()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    async fn wait_ready(&mut self) {
        self.wait_for_health("/v1.0/healthz/outbound", READY_TIMEOUT)
            .await;
    }

    async fn wait_for_health(&mut self, path: &str, timeout: Duration) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "daprd for {} exited ({status}) before {path} answered 204; its log ({}):\n{}",
                    self.app_id,
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            let answer = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if let Ok(204) = answer {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "daprd for {} did not answer 204 on {path} within {timeout:?} (last: {answer:?}); its log ({}):\n{}",
                    self.app_id,
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "daprd for {}: log and resources kept in {}",
                self.app_id,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `deploy/dapr/pubsub.yaml` for a test: its brokers and consumer group
/// replaced, its scopes removed or prefixed. Panics when an entry it must
/// replace is gone (the file changed shape: this function must follow).
fn render_pubsub(src: &str, brokers: &str, group: &str, scoping: &Scoping) -> String {
    let mut out = Vec::new();
    let mut lines = src.lines();
    let (mut saw_brokers, mut saw_group) = (false, false);
    while let Some(line) = lines.next() {
        let entry = line.trim().strip_prefix("- name: ");
        let value = |next: Option<&str>, v: &str| {
            let next = next.expect("an entry's value line follows its name");
            let indent = &next[..next.len() - next.trim_start().len()];
            format!("{indent}value: \"{v}\"")
        };
        match entry {
            Some("brokers") => {
                saw_brokers = true;
                out.push(line.to_owned());
                out.push(value(lines.next(), brokers));
            }
            Some("consumerGroup") => {
                saw_group = true;
                out.push(line.to_owned());
                out.push(value(lines.next(), group));
            }
            Some("publishingScopes" | "subscriptionScopes") => {
                let next = lines.next();
                if let Scoping::Deployment { topic_prefix } = scoping {
                    let current = next
                        .and_then(|l| l.trim().strip_prefix("value: "))
                        .map(|v| v.trim_matches('"'))
                        .expect("a scopes entry has a value");
                    out.push(line.to_owned());
                    out.push(value(next, &prefix_scopes(current, topic_prefix)));
                }
            }
            _ => out.push(line.to_owned()),
        }
    }
    assert!(
        saw_brokers && saw_group,
        "deploy/dapr/pubsub.yaml has no brokers or consumerGroup entry: crates/todo-testkit/src/dapr.rs must follow its shape"
    );
    let text = out.join("\n") + "\n";
    match scoping {
        Scoping::Open => drop_top_level_scopes(&text),
        Scoping::Deployment { .. } => text,
    }
}

/// `deploy/dapr/resiliency.yaml` for a test: unscoped when the component is.
fn render_resiliency(src: &str, scoping: &Scoping) -> String {
    match scoping {
        Scoping::Open => drop_top_level_scopes(src),
        Scoping::Deployment { .. } => src.to_owned(),
    }
}

/// Removes a resource's top-level `scopes:` list (the app ids that load it).
fn drop_top_level_scopes(src: &str) -> String {
    let mut out = String::new();
    let mut in_scopes = false;
    for line in src.lines() {
        if line == "scopes:" {
            in_scopes = true;
            continue;
        }
        if in_scopes && (line.starts_with("  ") || line.starts_with("- ")) {
            continue;
        }
        in_scopes = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `app=t1,t2;app2=t3` with `prefix` in front of every topic.
fn prefix_scopes(scopes: &str, prefix: &str) -> String {
    scopes
        .split(';')
        .map(|app| match app.split_once('=') {
            Some((id, topics)) if !topics.is_empty() => {
                let topics: Vec<String> =
                    topics.split(',').map(|t| format!("{prefix}{t}")).collect();
                format!("{id}={}", topics.join(","))
            }
            _ => app.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment_pubsub() -> String {
        fs::read_to_string(workspace_root().join("deploy/dapr/pubsub.yaml")).unwrap()
    }

    #[test]
    fn the_rendered_component_points_at_the_given_brokers_and_group_and_keeps_the_rest() {
        let src = deployment_pubsub();
        let out = render_pubsub(&src, "127.0.0.1:19092", "g-1", &Scoping::Open);
        assert!(out.contains("value: \"127.0.0.1:19092\""), "{out}");
        assert!(out.contains("value: \"g-1\""), "{out}");
        assert!(!out.contains("value: \"127.0.0.1:9092\""), "{out}");
        for kept in ["backOffMaxRetries", "initialOffset", "type: pubsub.kafka"] {
            assert!(out.contains(kept), "{kept} is kept: {out}");
        }
    }

    #[test]
    fn an_open_component_has_no_scopes_of_any_kind() {
        let out = render_pubsub(&deployment_pubsub(), "b:1", "g", &Scoping::Open);
        assert!(!out.contains("Scopes"), "{out}");
        assert!(!out.contains("scopes:"), "{out}");
        assert!(!out.contains("- todo-backend"), "{out}");
    }

    #[test]
    fn a_scoped_component_prefixes_every_topic_and_keeps_an_empty_scope_empty() {
        let scoping = Scoping::Deployment {
            topic_prefix: "t-abc.".into(),
        };
        let out = render_pubsub(&deployment_pubsub(), "b:1", "g", &scoping);
        assert!(out.contains("scopes:\n  - todo-backend"), "{out}");
        assert!(
            out.contains("todo-backend=t-abc.todo.tasks.created,t-abc.todo.tasks.updated"),
            "{out}"
        );
        assert!(
            out.contains("todo-event-service=t-abc.todo.tasks.dlq"),
            "{out}"
        );
        assert!(
            out.contains("\"todo-backend=;todo-event-service=t-abc.todo.tasks.created"),
            "{out}"
        );
    }

    #[test]
    fn an_open_resiliency_policy_applies_to_every_app_id() {
        let src = fs::read_to_string(workspace_root().join("deploy/dapr/resiliency.yaml")).unwrap();
        let out = render_resiliency(&src, &Scoping::Open);
        assert!(!out.contains("scopes:"), "{out}");
        assert!(out.contains("circuitBreaker: kafka"), "{out}");
    }
}
