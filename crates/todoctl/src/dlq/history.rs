//! `dlq history`: the recorded replays and discards, newest first.

use std::io::Write;

use anyhow::Context;
use todo_audit::dlq_actions;

/// Prints the latest `limit` actions, as text or as one JSON array.
pub(super) async fn run(
    event_database_url: &str,
    limit: i64,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let pool = super::connect(event_database_url).await?;
    let rows = dlq_actions::history(&pool, limit)
        .await
        .context("reading the dead-letter actions")?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>6}  {:<20}  {:<12}  {:<7}  {:>5}  {:<8}  reason / selection",
        "id", "at", "actor", "action", "count", "outcome"
    )?;
    for a in &rows {
        writeln!(
            out,
            "{:>6}  {:<20}  {:<12}  {:<7}  {:>5}  {:<8}  {:?} {}",
            a.id,
            a.at.format("%Y-%m-%dT%H:%M:%SZ"),
            a.actor,
            a.action.as_str(),
            a.dead_letters,
            a.outcome,
            a.reason,
            a.selection
        )?;
    }
    writeln!(out, "{} actions", rows.len())?;
    Ok(())
}
