//! Dependencies a service connects to in the background.
//!
//! No service refuses to start because a peer is down: each binds its port,
//! serves what it can, and connects to PostgreSQL and Kafka in the background,
//! retrying with capped exponential backoff and jitter. Each failed attempt
//! logs one line naming the dependency, its address and the real cause. A
//! condition that retrying cannot fix (bad credentials, a failed migration, a
//! topic with too few partitions) stops the process with one readable line
//! instead (see [`Shutdown::fatal`]).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::retry::{sleep_or_cancel, Backoff};

/// Where a dependency stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not reached yet: `attempts` failed so far, the last with `last_error`.
    Connecting {
        /// Failed attempts so far.
        attempts: u32,
        /// The cause of the last failure.
        last_error: Option<String>,
    },
    /// Reached and set up (migrated, topics provisioned, ...).
    Up,
    /// Given up: retrying cannot fix it.
    Failed(String),
    /// Not used by this process (say, Kafka when the relay is off).
    Disabled,
}

impl State {
    /// One word for readiness bodies: `connecting`, `up` or `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            State::Connecting { .. } => "connecting",
            State::Up => "up",
            State::Failed(_) => "failed",
            State::Disabled => "disabled",
        }
    }
}

/// A dependency the service connects to in the background, and its state,
/// shared by the task that connects and by whatever waits for it.
#[derive(Clone)]
pub struct Dependency {
    name: &'static str,
    target: Arc<str>,
    state: Arc<watch::Sender<State>>,
}

impl std::fmt::Debug for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {} ({:?})", self.name, self.target, self.state())
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// Worth retrying: the dependency is down, restarting or unreachable.
    Transient(String),
    /// Retrying cannot fix it: the service stops.
    Fatal(String),
}

impl Dependency {
    /// `name` is what logs call it ("PostgreSQL", "Kafka"); `target` is the
    /// address tried, without credentials.
    pub fn new(name: &'static str, target: impl Into<String>) -> Self {
        let (tx, _) = watch::channel(State::Connecting {
            attempts: 0,
            last_error: None,
        });
        Self {
            name,
            target: target.into().into(),
            state: Arc::new(tx),
        }
    }

    /// What logs call it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The address tried.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// True once reached and set up.
    pub fn is_up(&self) -> bool {
        matches!(*self.state.borrow(), State::Up)
    }

    /// Waits until the dependency is up (`Ok`) or has failed for good (`Err`).
    pub async fn wait_up(&self) -> Result<(), String> {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, State::Connecting { .. }))
            .await
            .map(|s| s.clone())
            .unwrap_or(State::Failed("the connecting task ended".into()));
        match state {
            State::Up | State::Disabled => Ok(()),
            State::Failed(why) => Err(why),
            State::Connecting { .. } => unreachable!("waited for another state"),
        }
    }

    /// Like [`Self::wait_up`], bounded: `None` when still connecting after `limit`.
    pub async fn wait_up_for(&self, limit: Duration) -> Option<Result<(), String>> {
        tokio::time::timeout(limit, self.wait_up()).await.ok()
    }

    /// Waits, at most `limit`, for the first attempt's outcome: `Some(Ok)`
    /// when up, `Some(Err)` when failed for good, `None` when the first
    /// attempt failed and retries go on (or `limit` passed). A starting
    /// service uses it to finish its setup at once when its dependencies are
    /// there, without ever waiting long for one that is not.
    pub async fn wait_first_attempt(&self, limit: Duration) -> Option<Result<(), String>> {
        let mut rx = self.state.subscribe();
        let first = async {
            rx.wait_for(|s| !matches!(s, State::Connecting { attempts: 0, .. }))
                .await
                .map(|s| s.clone())
        };
        let settled = tokio::time::timeout(limit, first).await;
        match settled.ok()?.ok()? {
            State::Up | State::Disabled => Some(Ok(())),
            State::Failed(why) => Some(Err(why)),
            State::Connecting { .. } => None,
        }
    }

    /// Marks the dependency as not used by this process.
    pub fn disable(&self) {
        self.set(State::Disabled);
    }

    fn set(&self, state: State) {
        self.state.send_replace(state);
    }

    /// Runs `attempt` until it succeeds, fails for good, or `cancel` fires
    /// (`None`). Each failed attempt logs one line with the dependency, its
    /// address, the cause and the wait before the next one.
    pub async fn connect<T, F, Fut>(
        &self,
        backoff: Backoff,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Option<Result<T, String>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return None,
                r = attempt() => r,
            };
            match result {
                Ok(value) => {
                    if failures > 0 {
                        tracing::info!(
                            dependency = self.name,
                            target = %self.target,
                            failed_attempts = failures,
                            "{} reachable at {} again",
                            self.name,
                            self.target
                        );
                    }
                    self.set(State::Up);
                    return Some(Ok(value));
                }
                Err(AttemptError::Transient(cause)) => {
                    failures += 1;
                    let wait = backoff.delay(failures);
                    tracing::warn!(
                        dependency = self.name,
                        target = %self.target,
                        attempt = failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "{} unreachable at {}: {cause}; retrying in {:.1} s",
                        self.name,
                        self.target,
                        wait.as_secs_f64()
                    );
                    self.set(State::Connecting {
                        attempts: failures,
                        last_error: Some(cause),
                    });
                    if !sleep_or_cancel(wait, cancel).await {
                        return None;
                    }
                }
                Err(AttemptError::Fatal(cause)) => {
                    let why = format!("{} at {}: {cause}", self.name, self.target);
                    self.set(State::Failed(why.clone()));
                    return Some(Err(why));
                }
            }
        }
    }
}

/// How long a starting service waits for a dependency's first connection
/// attempt before it serves without it (and keeps trying in the background).
pub const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(5);

/// Waits, at most [`FIRST_ATTEMPT_WAIT`], for the first connection attempt of
/// every dependency: a starting service finishes its setup at once when they
/// are there, never waits long for one that is not, and fails when one has
/// already failed for good.
pub async fn wait_first_attempts(dependencies: &[&Dependency]) -> anyhow::Result<()> {
    let firsts = futures::future::join_all(
        dependencies
            .iter()
            .map(|d| d.wait_first_attempt(FIRST_ATTEMPT_WAIT)),
    )
    .await;
    for first in firsts {
        if let Some(Err(why)) = first {
            anyhow::bail!(why);
        }
    }
    Ok(())
}

/// What both services lay first when they start: the shutdown, the bound
/// listener, a lazy pool on a database that is migrated in the background,
/// and the Kafka dependency (provisioned by the caller, which knows its
/// topics).
pub struct Foundation {
    /// How the service stops.
    pub shutdown: Shutdown,
    /// The bound listener.
    pub listener: tokio::net::TcpListener,
    /// Connects on first use.
    pub pool: sqlx::PgPool,
    /// PostgreSQL: reached and migrated yet?
    pub database: Dependency,
    /// Kafka: reached and provisioned yet?
    pub kafka: Dependency,
}

/// Where a service's foundation comes from.
pub struct FoundationSettings<'a> {
    /// The database URL.
    pub database_url: &'a str,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a query waits for a connection.
    pub acquire_timeout: Duration,
    /// The schema.
    pub migrations: &'static crate::db::Migrations,
    /// Wait for the migrations (`SKIP_MIGRATIONS`) instead of running them.
    pub skip_migrations: bool,
    /// Kafka's bootstrap servers.
    pub kafka_bootstrap: &'a str,
    /// The HTTP address.
    pub http_addr: std::net::SocketAddr,
}

impl Foundation {
    /// Parses the database URL, binds the listener and starts migrating in
    /// the background. Fails only on a malformed URL or a port in use.
    pub async fn lay(s: FoundationSettings<'_>) -> anyhow::Result<Self> {
        use anyhow::Context;
        let shutdown = Shutdown::new();
        let db = crate::db::Database::parse(s.database_url).context(s.migrations.url_setting)?;
        let pool = db.lazy_pool(s.max_connections, s.acquire_timeout);
        let listener = crate::http::bind(s.http_addr).await?;
        let schema = s.migrations.at_start(s.skip_migrations);
        let database = db.migrate_in_background(s.migrations.migrator, schema, &shutdown);
        Ok(Self {
            shutdown,
            listener,
            pool,
            database,
            kafka: Dependency::new("Kafka", s.kafka_bootstrap),
        })
    }
}

/// The backoff of background connection attempts: 250 ms doubling to 5 s, so
/// a dependency that comes back is noticed within about 5 s.
pub fn connect_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(250), 2.0, Duration::from_secs(5))
}

/// How a service stops: on request (SIGTERM, a test), or because a background
/// task met a condition retrying cannot fix. The first fatal reason is kept
/// and reported by [`Shutdown::outcome`].
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    fatal: Arc<OnceLock<String>>,
}

impl Shutdown {
    /// A service that runs until stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the service stops, for whatever reason.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Stops the service because of `why` (logged once, as an error).
    pub fn fatal(&self, why: impl Into<String>) {
        let why = why.into();
        if self.fatal.set(why.clone()).is_ok() {
            tracing::error!("stopping: {why}");
        }
        self.token.cancel();
    }

    /// Runs `connecting` (a [`Dependency::connect`]) in the background; when
    /// it ends in an error that retrying cannot fix, the service stops with
    /// that reason.
    pub fn spawn_connecting<T: Send + 'static>(
        &self,
        connecting: impl Future<Output = Option<Result<T, String>>> + Send + 'static,
    ) {
        let shutdown = self.clone();
        tokio::spawn(async move {
            if let Some(Err(why)) = connecting.await {
                shutdown.fatal(why);
            }
        });
    }

    /// Stops the service when `external` is cancelled.
    pub fn follow(&self, external: CancellationToken) {
        let token = self.token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = external.cancelled() => token.cancel(),
                _ = token.cancelled() => {}
            }
        });
    }

    /// `Err` with the fatal reason when the service stopped because of one.
    pub fn outcome(&self) -> anyhow::Result<()> {
        match self.fatal.get() {
            Some(why) => Err(anyhow::anyhow!("{why}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Backoff {
        Backoff::new(Duration::from_millis(1), 2.0, Duration::from_millis(4))
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_the_dependency_is_up() {
        let dep = Dependency::new("Thing", "127.0.0.1:1");
        let mut calls = 0;
        let got = dep
            .connect(fast(), &CancellationToken::new(), || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(AttemptError::Transient("refused".into()))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(got, Some(Ok(3)));
        assert!(dep.is_up());
        assert_eq!(dep.wait_up().await, Ok(()));
    }

    #[tokio::test]
    async fn a_fatal_failure_stops_retrying_and_names_the_dependency_and_address() {
        let dep = Dependency::new("Thing", "db.example:5432/x");
        let waiter = {
            let dep = dep.clone();
            tokio::spawn(async move { dep.wait_up().await })
        };
        let got: Option<Result<(), String>> = dep
            .connect(fast(), &CancellationToken::new(), || async {
                Err(AttemptError::Fatal("password authentication failed".into()))
            })
            .await;
        let why = got.unwrap().unwrap_err();
        assert_eq!(
            why,
            "Thing at db.example:5432/x: password authentication failed"
        );
        assert_eq!(waiter.await.unwrap(), Err(why));
        assert_eq!(dep.state().word(), "failed");
    }

    #[tokio::test]
    async fn while_connecting_the_state_keeps_the_last_cause() {
        let dep = Dependency::new("Thing", "t");
        let cancel = CancellationToken::new();
        let task = {
            let (dep, cancel) = (dep.clone(), cancel.clone());
            tokio::spawn(async move {
                dep.connect(fast(), &cancel, || async {
                    Err::<(), _>(AttemptError::Transient("connection refused".into()))
                })
                .await
            })
        };
        assert_eq!(dep.wait_up_for(Duration::from_millis(50)).await, None);
        match dep.state() {
            State::Connecting {
                attempts,
                last_error,
            } => {
                assert!(attempts >= 1);
                assert_eq!(last_error.as_deref(), Some("connection refused"));
            }
            other => panic!("still connecting, got {other:?}"),
        }
        cancel.cancel();
        assert_eq!(task.await.unwrap(), None, "a cancelled connect gives up");
    }

    #[tokio::test]
    async fn a_fatal_shutdown_cancels_and_reports_the_first_reason() {
        let s = Shutdown::new();
        assert!(s.outcome().is_ok());
        s.fatal("first");
        s.fatal("second");
        assert!(s.token().is_cancelled());
        assert_eq!(s.outcome().unwrap_err().to_string(), "first");
    }
}
