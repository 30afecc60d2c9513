//! `todoctl verify`: reconciles what the backend wrote with what the event
//! service applied ([`reconcile`], from the todo-reconcile crate). Every event
//! id in the outbox (published or not) must be in the audit log exactly once;
//! the projection must match the tasks table. Exits non-zero on any gap, so it
//! can end a chaos run or a deployment check.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

pub use todo_reconcile::{reconcile, Report};

/// Options of `verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The backend's database (tasks, outbox).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The event service's database (audit log, projection).
    #[arg(long, env = "EVENT_DATABASE_URL", hide_env_values = true)]
    pub event_database_url: String,
    /// Keep checking until everything matches or this many seconds pass
    /// (events in flight are not a gap yet).
    #[arg(long, default_value_t = 0)]
    pub wait_s: u64,
    /// Print the report as one JSON object (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify`; returns whether everything matched.
pub async fn run(args: VerifyArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let backend = PgPool::connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let events = PgPool::connect(&args.event_database_url)
        .await
        .context("connecting to EVENT_DATABASE_URL")?;
    let deadline = Instant::now() + Duration::from_secs(args.wait_s);
    let report = loop {
        let report = reconcile(&backend, &events).await?;
        if report.is_clean() || Instant::now() >= deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        report.write(out)?;
    }
    Ok(report.is_clean())
}
