//! `dlq replay` and `dlq discard`: act on a selection of dead letters and
//! record the action, whatever its outcome.

use std::io::Write;

use anyhow::Context;
use todo_audit::dead_letters;
use todo_audit::dlq_actions::{self, Action, Actor, Reason};
use todo_kafka::{KafkaArgs, TopicNames};

use super::select::{Filter, State};

/// Who acts and why, recorded with the action.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Why (required, not blank): recorded in `dlq history`.
    #[arg(long)]
    pub reason: String,
    /// Who, for the record [default: $USER, else $LOGNAME, else "unknown"].
    #[arg(long)]
    pub actor: Option<String>,
}

impl AuditArgs {
    fn parse(&self) -> anyhow::Result<(Actor, Reason)> {
        let actor = match &self.actor {
            Some(a) => Actor::parse(a)?,
            None => Actor::parse(default_actor(|k| std::env::var(k).ok()))?,
        };
        Ok((actor, Reason::parse(&self.reason)?))
    }
}

/// The actor when none is given: `$USER`, else `$LOGNAME`, else "unknown"
/// (`var` reads the environment).
pub fn default_actor(var: impl Fn(&str) -> Option<String>) -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(var)
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What `dlq replay` and `dlq discard` take.
#[derive(clap::Args, Debug, Clone)]
pub struct ActArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub audit: AuditArgs,
    /// The event service's database, where the action is recorded.
    #[arg(long, env = "EVENT_DATABASE_URL", hide_env_values = true)]
    pub event_database_url: String,
    /// Show what would be done, without doing or recording it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Selects the dead letters (only pending ones unless `all`), acts on them and
/// records the action. A replay that fails is recorded as failed, with the
/// dead letters that did reach their topics, and its error returned.
pub(super) async fn run(
    action: Action,
    args: &ActArgs,
    all: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (actor, reason) = args.audit.parse()?;
    let pool = super::connect(&args.event_database_url).await?;
    let names = TopicNames::new(args.kafka.topic_prefix.clone());
    let dlq = names.dlq();
    let records = super::read(&args.kafka).await?;
    let missing = args.filter.missing(&records);
    anyhow::ensure!(
        missing.is_empty(),
        "{dlq} has no dead letter {}",
        missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dispositions = dlq_actions::dispositions(&pool, &dlq)
        .await
        .context("reading the dead letters' dispositions")?;
    let state = if all { State::All } else { State::Pending };
    let selected = args.filter.select(&names, records, &dispositions, state);
    let done = action.disposition().as_str();
    let skipped = if selected.other_state > 0 {
        format!(
            "; {} already replayed or discarded left out (--all includes them)",
            selected.other_state
        )
    } else {
        String::new()
    };

    if args.dry_run {
        for r in &selected.records {
            writeln!(
                out,
                "would {} {}",
                action.as_str(),
                crate::tail::render(&names, r)
            )?;
        }
        writeln!(
            out,
            "{} dead letters would be {done}{skipped}",
            selected.records.len()
        )?;
        return Ok(());
    }
    if selected.records.is_empty() {
        // Nothing was done to any dead letter, so there is nothing to record.
        writeln!(out, "{done} 0 dead letters{skipped}")?;
        return Ok(());
    }

    let acted = dead_letters::act(
        &pool,
        &args.kafka,
        dead_letters::Request {
            action,
            actor,
            reason,
            selection: args.filter.to_json(all),
        },
        &selected.records,
    )
    .await?;
    let (id, n) = (acted.action_id, acted.touched);
    match action {
        Action::Replay => writeln!(
            out,
            "replayed {n} dead letters to their original topics (action {id}){skipped}"
        )?,
        Action::Discard => writeln!(out, "discarded {n} dead letters (action {id}){skipped}")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_defaults_to_user_then_logname_then_unknown() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            default_actor(env(&[("USER", "alice"), ("LOGNAME", "bob")])),
            "alice"
        );
        assert_eq!(
            default_actor(env(&[("USER", " "), ("LOGNAME", "bob")])),
            "bob"
        );
        assert_eq!(default_actor(env(&[])), "unknown");
    }

    #[test]
    fn a_blank_reason_or_actor_is_refused_before_anything_is_done() {
        let audit = |reason: &str, actor: Option<&str>| AuditArgs {
            reason: reason.into(),
            actor: actor.map(Into::into),
        };
        let e = audit("  ", Some("alice")).parse().unwrap_err();
        assert!(e.to_string().starts_with("reason must not be blank"), "{e}");
        let e = audit("fixed", Some("")).parse().unwrap_err();
        assert!(e.to_string().starts_with("actor must not be blank"), "{e}");
        let (actor, reason) = audit(" fixed in 1.4.2 ", Some("alice")).parse().unwrap();
        assert_eq!(
            (actor.as_str(), reason.as_str()),
            ("alice", "fixed in 1.4.2")
        );
    }
}
