//! `todoctl replay`: republish stored events from the backend's outbox with
//! their original event ids; consumers dedupe them, so a replay is safe.

use anyhow::Context;
use chrono::{DateTime, Utc};
use todo_outbox::replay::{replay, Selection};

/// Options of `replay`: exactly one selection.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["ids", "since", "task"])))]
pub struct ReplayArgs {
    /// The backend's database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Outbox ids, `FROM..TO` (inclusive).
    #[arg(long, value_parser = parse_range)]
    pub ids: Option<(i64, i64)>,
    /// Events written at or after this RFC 3339 time...
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// ...and before this one (default now).
    #[arg(long, requires = "since")]
    pub until: Option<DateTime<Utc>>,
    /// Every stored event of one task.
    #[arg(long)]
    pub task: Option<i64>,
}

fn parse_range(s: &str) -> Result<(i64, i64), String> {
    let (a, b) = s.split_once("..").ok_or("expected FROM..TO")?;
    let a: i64 = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not an id"))?;
    let b: i64 = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not an id"))?;
    if a > b {
        return Err(format!("{a} is after {b}"));
    }
    Ok((a, b))
}

impl ReplayArgs {
    /// The selection these options describe.
    pub fn selection(&self) -> Selection {
        if let Some((from, to)) = self.ids {
            Selection::Ids { from, to }
        } else if let Some(task) = self.task {
            Selection::Task(task)
        } else {
            Selection::Time {
                from: self.since.unwrap_or_default(),
                to: self.until.unwrap_or_else(Utc::now),
            }
        }
    }
}

/// Runs `replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let n = replay(&pool, &args.selection()).await?;
    println!(
        "queued {n} stored events for republishing; the backend's relay publishes them in id order"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_ranges_parse_and_reversed_ones_are_refused() {
        assert_eq!(parse_range("3..9").unwrap(), (3, 9));
        assert!(parse_range("9..3").is_err());
        assert!(parse_range("x..3").is_err());
        assert!(parse_range("5").is_err());
    }
}
