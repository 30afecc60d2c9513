//! PostgreSQL as both services meet it: which errors mean "the database is
//! down" (an outage: wait, answer 503, never blame the request or the event),
//! and connecting at startup without refusing to start.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::dependency::{AttemptError, Dependency};

/// True for connection-level failures: the database is down, restarting,
/// unreachable or saturated. Retrying later may succeed; the request or event
/// at hand is not at fault.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // 08xxx connection exceptions, 57Pxx admin/crash shutdown and
            // cannot_connect_now (starting up), 53xxx insufficient resources
            // (too many connections, disk full).
            c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
        }),
        _ => false,
    }
}

/// True when `database` was reached and migrated, and `pool` answers a query
/// within a second: what `/ready` asks of PostgreSQL.
pub async fn answers(database: &Dependency, pool: &PgPool) -> bool {
    database.is_up()
        && tokio::time::timeout(
            Duration::from_secs(1),
            sqlx::query("SELECT 1").execute(pool),
        )
        .await
        .is_ok_and(|r| r.is_ok())
}

/// How a starting service gets its schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// Run the migrations itself (`create`: create the database first when
    /// it is missing).
    Migrate {
        /// Create the database when it is missing.
        create: bool,
    },
    /// Wait until another process has run them (`SKIP_MIGRATIONS`).
    Expect,
}

/// A parsed database URL: what to connect with, and how to name it in logs
/// (host, port and database; never the password).
#[derive(Clone, Debug)]
pub struct Database {
    options: PgConnectOptions,
    target: String,
}

/// Every connection plans a prepared statement once, not on each call
/// (`plan_cache_mode = force_generic_plan`), unless the URL's `options` set
/// `plan_cache_mode` themselves.
///
/// NB: the hot statements bind arrays (`unnest($1::bigint[], ...)`: a batch of
/// any size), so PostgreSQL's default keeps choosing a custom plan and plans
/// them again on every execution, the event service's multi-table statement
/// above all. Planned once, PostgreSQL used 7-13 % less CPU at 1 000 events/s
/// (docs/performance.md). No query of either service has an optional filter
/// (`$1 IS NULL OR ...`), for which a generic plan could use no index: the
/// backend's task list, the one that had them, is one statement per
/// combination of filters.
fn with_generic_plans(options: PgConnectOptions) -> PgConnectOptions {
    if options
        .get_options()
        .is_some_and(|o| o.contains("plan_cache_mode"))
    {
        return options;
    }
    options.options([("plan_cache_mode", "force_generic_plan")])
}

impl Database {
    /// Parses `url`; a malformed URL is an error worth stopping for.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("the database URL is not valid: {e}"))?;
        let options = with_generic_plans(options);
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        Ok(Self { options, target })
    }

    /// `host:port/database`, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connection options.
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A pool that connects on first use: building it never waits for the
    /// database. Queries fail with an outage (503) while it is down.
    pub fn lazy_pool(&self, max_connections: u32, acquire_timeout: Duration) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            // NB: no ping before every checkout: it was one extra round trip per
            // request (seen in the profile, docs/performance.md). A connection
            // broken by a database restart fails its next query instead, which
            // answers 503 and is dropped from the pool.
            .test_before_acquire(false)
            .connect_lazy_with(self.options.clone())
    }

    /// A [`Dependency`] named PostgreSQL at this database.
    pub fn dependency(&self) -> Dependency {
        Dependency::new("PostgreSQL", self.target.clone())
    }

    /// Connects and migrates (or, with [`Schema::Expect`], waits for the
    /// migrations another process runs) in the background, retrying while the
    /// database is unreachable; the service stops (through `shutdown`) on what
    /// retrying cannot fix. The returned dependency says when the schema is
    /// ready.
    pub fn migrate_in_background(
        &self,
        migrator: &'static Migrator,
        schema: Schema,
        shutdown: &crate::dependency::Shutdown,
    ) -> Dependency {
        let database = self.dependency();
        let (db, dependency, cancel) = (self.clone(), database.clone(), shutdown.token());
        shutdown.spawn_connecting(async move {
            dependency
                .connect(crate::dependency::connect_backoff(), &cancel, || {
                    let db = db.clone();
                    async move { db.prepare_once(migrator, schema).await }
                })
                .await
        });
        database
    }

    /// Runs the migrations, waiting for the database while it is
    /// unreachable: the `--migrate-only` step. `Err` with one line when
    /// retrying cannot help.
    pub async fn migrate(&self, migrator: &'static Migrator, create: bool) -> anyhow::Result<()> {
        let cancel = tokio_util::sync::CancellationToken::new();
        match self
            .dependency()
            .connect(crate::dependency::connect_backoff(), &cancel, || {
                self.migrate_once(migrator, create)
            })
            .await
        {
            Some(Ok(())) => {
                tracing::info!(database = %self.target, "migrations applied");
                Ok(())
            }
            Some(Err(why)) => Err(anyhow::anyhow!(why)),
            None => Err(anyhow::anyhow!("migrations cancelled")),
        }
    }

    async fn prepare_once(&self, migrator: &Migrator, schema: Schema) -> Result<(), AttemptError> {
        match schema {
            Schema::Migrate { create } => self.migrate_once(migrator, create).await,
            Schema::Expect => self.expect_migrated_once(migrator).await,
        }
    }

    /// One check that every migration of `migrator` has been applied by
    /// another process; a missing one is worth waiting for.
    pub async fn expect_migrated_once(&self, migrator: &Migrator) -> Result<(), AttemptError> {
        let mut conn = self.connect_once(&self.options).await?;
        let applied: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await;
        let _ = conn.close().await;
        let applied = match applied {
            Ok(v) => v,
            // 42P01 undefined_table: nothing has migrated this database yet.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(startup_error(e)),
        };
        let missing: Vec<i64> = migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(AttemptError::Transient(format!(
                "waiting for migrations {missing:?} (SKIP_MIGRATIONS is set: run the binary with --migrate-only)"
            )))
        }
    }

    /// One attempt to connect and run `migrator` over a connection of its own,
    /// so the real cause of a failure (refused, bad password) is reported
    /// rather than a pool timeout. With `create`, a missing database is
    /// created first.
    pub async fn migrate_once(
        &self,
        migrator: &Migrator,
        create: bool,
    ) -> Result<(), AttemptError> {
        if create {
            self.create_if_missing().await?;
        }
        let mut conn = self.connect_once(&self.options).await?;
        let migrated = rollback_tolerant(migrator).run_direct(&mut conn).await;
        let _ = conn.close().await;
        migrated.map_err(|e| match e {
            MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) if is_outage(&e) => {
                AttemptError::Transient(e.to_string())
            }
            e => AttemptError::Fatal(format!("running the migrations failed: {e}")),
        })
    }

    async fn connect_once(&self, options: &PgConnectOptions) -> Result<PgConnection, AttemptError> {
        match tokio::time::timeout(Duration::from_secs(10), options.connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(startup_error(e)),
            Err(_) => Err(AttemptError::Transient("no answer within 10 s".into())),
        }
    }

    async fn create_if_missing(&self) -> Result<(), AttemptError> {
        let Some(name) = self.options.get_database() else {
            return Ok(());
        };
        let mut admin = self
            .connect_once(&self.options.clone().database("postgres"))
            .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .map_err(startup_error)?;
        if !exists {
            tracing::info!(database = name, "creating the database");
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match sqlx::query(&format!("CREATE DATABASE {quoted}"))
                .execute(&mut admin)
                .await
            {
                Ok(_) => {}
                // Another instance created it at the same time.
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(startup_error(e)),
            }
        }
        let _ = admin.close().await;
        Ok(())
    }
}

/// A service's schema: its embedded migrations, whether it may create its
/// database, and the setting its URL comes from (named in errors).
pub struct Migrations {
    /// The migrations, embedded (`sqlx::migrate!`).
    pub migrator: &'static Migrator,
    /// Create the database when it is missing.
    pub create_database: bool,
    /// The setting the database URL comes from.
    pub url_setting: &'static str,
}

impl Migrations {
    /// What to do with the schema at start: migrate it, or, with `skip`
    /// (`SKIP_MIGRATIONS`), wait for a `--migrate-only` run to have done so.
    pub fn at_start(&self, skip: bool) -> Schema {
        if skip {
            Schema::Expect
        } else {
            Schema::Migrate {
                create: self.create_database,
            }
        }
    }

    /// `--migrate-only`: runs the migrations on `url`, waiting for the
    /// database while it is unreachable, and returns.
    pub async fn run(&self, url: &str) -> anyhow::Result<()> {
        use anyhow::Context;
        Database::parse(url)
            .context(self.url_setting)?
            .migrate(self.migrator, self.create_database)
            .await
    }
}

/// `migrator`, accepting a schema that a newer build migrated further.
///
/// A rollback (Helm's, or an older image redeployed) runs an older binary
/// over a database that a newer one has migrated; the versions it does not
/// know are not an error, or the rollback would crash-loop. Migrations are
/// additive (a column or table is added; one is dropped only a release after
/// no build reads it), so the older binary works on the newer schema. A
/// migration it knows whose checksum changed is still refused.
fn rollback_tolerant(migrator: &Migrator) -> Migrator {
    // NB: sqlx's statics are built from these fields (`migrate!`); a copy is
    // the only way to set the flag on one.
    Migrator {
        migrations: migrator.migrations.clone(),
        ignore_missing: true,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    }
}

/// Classifies an error met while connecting at startup: an outage is worth
/// retrying; bad credentials, a missing database or a bad setting are not.
pub fn startup_error(e: sqlx::Error) -> AttemptError {
    if is_outage(&e) {
        return AttemptError::Transient(cause_chain(&e));
    }
    AttemptError::Fatal(cause_chain(&e))
}

/// An error and its sources on one line.
fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_timeout_and_io_errors_are_outages_and_a_missing_row_is_not() {
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(is_outage(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn the_target_names_host_port_and_database_but_never_the_password() {
        let db = Database::parse("postgres://todo:hunter2@db.internal:6543/tasks").unwrap();
        assert_eq!(db.target(), "db.internal:6543/tasks");
        assert!(!format!("{:?}", db.dependency()).contains("hunter2"));
    }

    #[test]
    fn connections_plan_once_unless_the_url_says_otherwise() {
        let plan = |url: &str| {
            Database::parse(url)
                .unwrap()
                .options()
                .get_options()
                .map(str::to_owned)
        };
        assert_eq!(
            plan("postgres://todo@db/tasks").as_deref(),
            Some("-c plan_cache_mode=force_generic_plan")
        );
        assert_eq!(
            plan("postgres://todo@db/tasks?options[plan_cache_mode]=auto").as_deref(),
            Some("-c plan_cache_mode=auto")
        );
        assert_eq!(
            plan("postgres://todo@db/tasks?options[geqo]=off").as_deref(),
            Some("-c geqo=off -c plan_cache_mode=force_generic_plan")
        );
    }

    #[test]
    fn a_malformed_url_is_refused_with_a_reason() {
        let err = Database::parse("postgres://todo@host:notaport/db").unwrap_err();
        assert!(err.to_string().contains("database URL"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_transient_failure_naming_the_cause() {
        // Port 1 on loopback: nothing listens there.
        let db = Database::parse("postgres://todo:todo@127.0.0.1:1/todo").unwrap();
        static MIGRATOR: Migrator = Migrator::DEFAULT;
        match db.migrate_once(&MIGRATOR, false).await {
            Err(AttemptError::Transient(cause)) => {
                assert!(cause.to_lowercase().contains("refused"), "{cause}")
            }
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }
}
