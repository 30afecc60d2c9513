//! `todoctl dlq`: list dead letters with their reasons and what was done to
//! them; replay them to the topics they came from, or discard them, each
//! action recorded with who, why and how it ended; and the history of those
//! actions. The record lives in the event service's database
//! (`todo_audit::dlq_actions`); it is also what tells a
//! replay which dead letters are still pending.

mod act;
mod history;
mod select;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use todo_audit::dlq_actions::{self, Disposition, DispositionKind};
use todo_kafka::{KafkaArgs, TopicNames};

use todo_kafka::ReadRecord;

pub use act::{default_actor, ActArgs, AuditArgs};
pub use select::{DeadLetterId, Filter, Selection, State};

/// DLQ commands.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters, decoded where possible, with the error headers and,
    /// when the event database is reachable, whether each is pending,
    /// replayed or discarded.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        filter: Filter,
        /// Only dead letters in this state (needs the event database).
        #[arg(long, value_enum, default_value_t = State::All)]
        state: State,
        /// The event service's database, where replays and discards are
        /// recorded; without it the states are not shown.
        #[arg(long, env = "EVENT_DATABASE_URL", hide_env_values = true)]
        event_database_url: Option<String>,
    },
    /// Republish dead letters to their original topics, with a `replayed_from`
    /// header, and record it. By default only those neither replayed nor
    /// discarded before.
    Replay {
        #[command(flatten)]
        act: ActArgs,
        /// Include the dead letters replayed or discarded before.
        #[arg(long)]
        all: bool,
    },
    /// Mark dead letters as handled without republishing them, and record it.
    /// Only those neither replayed nor discarded before.
    Discard {
        #[command(flatten)]
        act: ActArgs,
    },
    /// The recorded replays and discards, newest first.
    History {
        /// The event service's database.
        #[arg(long, env = "EVENT_DATABASE_URL", hide_env_values = true)]
        event_database_url: String,
        /// At most this many actions.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Print one JSON array (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a DLQ command.
pub async fn run(cmd: DlqCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List {
            kafka,
            filter,
            state,
            event_database_url,
        } => list(&kafka, &filter, state, event_database_url.as_deref(), out).await,
        DlqCommand::Replay { act, all } => {
            act::run(dlq_actions::Action::Replay, &act, all, out).await
        }
        DlqCommand::Discard { act } => {
            act::run(dlq_actions::Action::Discard, &act, false, out).await
        }
        DlqCommand::History {
            event_database_url,
            limit,
            json,
        } => history::run(&event_database_url, limit, json, out).await,
    }
}

async fn list(
    kafka: &KafkaArgs,
    filter: &Filter,
    state: State,
    event_database_url: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let names = TopicNames::new(kafka.topic_prefix.clone());
    let records = read(kafka).await?;
    let known = match event_database_url {
        Some(url) => match load_dispositions(url, &names.dlq()).await {
            Ok(d) => Some(d),
            Err(e) if state == State::All => {
                writeln!(out, "(states not shown: {e:#})")?;
                None
            }
            Err(e) => return Err(e.context("--state needs the event database")),
        },
        None => {
            anyhow::ensure!(
                state == State::All,
                "--state needs the event database: give --event-database-url or EVENT_DATABASE_URL"
            );
            None
        }
    };
    let dispositions = known.clone().unwrap_or_default();
    let selected = filter.select(&names, records, &dispositions, state);
    let (mut pending, mut replayed, mut discarded) = (0, 0, 0);
    for r in &selected.records {
        let rendered = crate::tail::render(&names, r);
        if known.is_none() {
            writeln!(out, "{rendered}")?;
            continue;
        }
        let label = match dispositions.get(&(r.partition, r.offset)) {
            None => {
                pending += 1;
                "pending".to_owned()
            }
            Some(d) => {
                match d.kind {
                    DispositionKind::Replayed => replayed += 1,
                    DispositionKind::Discarded => discarded += 1,
                }
                format!("{} (action {})", d.kind.as_str(), d.action_id)
            }
        };
        writeln!(out, "{label} {rendered}")?;
    }
    write!(out, "{} dead letters", selected.records.len())?;
    if known.is_some() {
        write!(
            out,
            " ({pending} pending, {replayed} replayed, {discarded} discarded)"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// Connects to the event service's database, failing within seconds when it
/// is unreachable.
async fn connect(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .context("connecting to the event database (EVENT_DATABASE_URL)")
}

async fn load_dispositions(
    url: &str,
    dlq_topic: &str,
) -> anyhow::Result<HashMap<(i32, i64), Disposition>> {
    let pool = connect(url).await?;
    let d = dlq_actions::dispositions(&pool, dlq_topic)
        .await
        .context("reading the dead letters' dispositions")?;
    pool.close().await;
    Ok(d)
}

/// Every record of the DLQ topic up to its current end.
async fn read(kafka: &KafkaArgs) -> anyhow::Result<Vec<ReadRecord>> {
    todo_audit::dead_letters::read_all(kafka).await
}
