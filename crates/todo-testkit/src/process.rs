//! A service binary run as its own process, the way `./dev` and Kubernetes
//! run it: its output is captured line by line, and a test can wait for a
//! line, for the process to exit, or for its HTTP port to answer.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running service process; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// The binary of workspace package `package` (named like it), built first
/// by cargo with the test's own profile and target directory (a no-op of
/// about a second when it is up to date), so that a test of one service can
/// run another as a process, never a stale build of it.
pub fn workspace_binary(package: &str) -> std::path::PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>
    let profile_dir = test
        .parent()
        .and_then(std::path::Path::parent)
        .expect("a test binary lives in target/<profile>/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let mut cargo = std::process::Command::new(env!("CARGO"));
    // NB: without the variables cargo set for this test (CARGO_MANIFEST_DIR,
    // CARGO_PKG_*...): build-time macros read some, and the binary would be
    // rebuilt by every switch between this and a plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            cargo.env_remove(name.as_ref());
        }
    }
    let status = cargo
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--bin",
            package,
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {package}: {e}"));
    assert!(status.success(), "building {package} failed");
    profile_dir.join(package)
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl ServiceProcess {
    /// Starts `binary` with `HTTP_ADDR` on a free port and `env` on top of
    /// the test's own environment.
    pub fn start(binary: &str, env: &[(&str, String)]) -> Self {
        Self::start_on(binary, closed_port(), env)
    }

    /// Like [`ServiceProcess::start`] on `port` (when a sidecar started
    /// first must know it).
    pub fn start_on(binary: &str, port: u16, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        collect(out, lines.clone());
        collect(err, lines.clone());
        Self {
            child,
            lines,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every line printed so far (stdout and stderr).
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits until a printed line satisfies `matches`; returns it.
    pub async fn wait_for_line(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        crate::eventually(timeout, || async {
            self.output().into_iter().find(|l| matches(l))
        })
        .await
    }

    /// Asserts that the process said, in one line, that `dependency` is
    /// unreachable at `target` because the connection was refused, and that
    /// it keeps running with no backtrace in its output.
    pub async fn assert_reports_refused(&mut self, dependency: &str, target: &str) {
        let wanted = format!("{dependency} unreachable at {target}");
        let line = self
            .wait_for_line(Duration::from_secs(60), |l| l.contains(&wanted))
            .await
            .unwrap_or_else(|| panic!("no line with {wanted:?}: {:#?}", self.output()));
        assert!(
            line.to_lowercase().contains("connection refused"),
            "the line names the cause: {line}"
        );
        assert!(
            self.is_running(),
            "an unreachable peer never stops the process"
        );
        let output = self.output().join("\n");
        assert!(
            !output.contains("stack backtrace") && !output.contains("Caused by:"),
            "{output}"
        );
    }

    /// Waits for the process to exit by itself with code 1 and returns the
    /// one line it printed to say why ("NAME: what was tried: what failed").
    /// Panics when it does not exit, exits otherwise, or says it in more or
    /// fewer than one line, or with a backtrace.
    pub async fn expect_fatal_line(&mut self, name: &str) -> String {
        let code = self.wait_exit(Duration::from_secs(60)).await;
        assert_eq!(code, Some(1), "output: {:#?}", self.output());
        let prefix = format!("{name}: ");
        // The output is read by tasks of their own: let them catch up.
        self.wait_for_line(Duration::from_secs(5), |l| l.starts_with(&prefix))
            .await;
        let output = self.output();
        let lines: Vec<&String> = output.iter().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(lines.len(), 1, "one line says why: {output:#?}");
        assert!(
            !output.iter().any(|l| l.contains("stack backtrace")),
            "{output:#?}"
        );
        lines[0].clone()
    }

    /// Waits until `GET path` answers at all; returns its status.
    pub async fn wait_for_http(&self, path: &str, timeout: Duration) -> Option<u16> {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url);
        crate::eventually(timeout, || async {
            client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        })
        .await
    }

    /// Waits for the process to exit by itself; its exit code, or `None`
    /// when it still runs after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?;
        Some(
            status
                .expect("waiting for the process")
                .code()
                .unwrap_or(-1),
        )
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn collect(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().expect("lines lock").push(line);
        }
    });
}

/// A TCP forwarder from a local port to `target`: a broker that "appears" at
/// an address where nothing listened before, or a database that "goes away"
/// for one service (dropping the forwarder closes every connection it carries).
pub struct Forwarder {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Forwarder {
    /// Listens on `127.0.0.1:port` and forwards each connection to `target`.
    pub async fn start(port: u16, target: String) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = stopped.wait_for(|s| *s) => {}
                        }
                    }
                });
            }
        });
        Ok(Self { task, stop })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.stop.send(true);
    }
}
