//! Audited dead-letter actions: each replay or discard an operator makes
//! (`todoctl dlq`), with who, why and how it ended, and for each dead letter
//! the latest action taken on it. The only place with this SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// An actor or a reason that cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must not be blank ({hint})")]
pub struct InvalidField {
    /// `actor` or `reason`.
    pub field: &'static str,
    hint: &'static str,
}

/// Who acted: the CLI user, or a console token's name. Not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// Trims `s` and refuses it when nothing is left.
    pub fn parse(s: impl AsRef<str>) -> Result<Self, InvalidField> {
        non_blank(s.as_ref(), "actor", "name who is acting").map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why: required of every action, so the history explains itself. Not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Trims `s` and refuses it when nothing is left.
    pub fn parse(s: impl AsRef<str>) -> Result<Self, InvalidField> {
        non_blank(
            s.as_ref(),
            "reason",
            "say why the dead letters are acted on",
        )
        .map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn non_blank(s: &str, field: &'static str, hint: &'static str) -> Result<String, InvalidField> {
    let s = s.trim();
    if s.is_empty() {
        Err(InvalidField { field, hint })
    } else {
        Ok(s.to_owned())
    }
}

/// What an operator did to a selection of dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Republished to their original topics.
    Replay,
    /// Marked as handled without writing anything to Kafka.
    Discard,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replay => "replay",
            Action::Discard => "discard",
        }
    }

    /// What it leaves each dead letter it touched as.
    pub fn disposition(self) -> DispositionKind {
        match self {
            Action::Replay => DispositionKind::Replayed,
            Action::Discard => DispositionKind::Discarded,
        }
    }

    fn from_stored(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "replay" => Ok(Action::Replay),
            "discard" => Ok(Action::Discard),
            other => Err(decode_error("action", other)),
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every selected dead letter was handled.
    Done,
    /// It failed with this message (stored as `failed: <message>`).
    Failed(String),
}

impl Outcome {
    /// The stored text: `done` or `failed: <message>`, the message cut to 1000
    /// characters.
    pub fn to_text(&self) -> String {
        match self {
            Outcome::Done => "done".to_owned(),
            Outcome::Failed(m) => {
                let m: String = m.chars().take(1000).collect();
                format!("failed: {m}")
            }
        }
    }
}

/// A dead letter's latest disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DispositionKind {
    /// Replayed to its original topic.
    Replayed,
    /// Discarded.
    Discarded,
}

impl DispositionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionKind::Replayed => "replayed",
            DispositionKind::Discarded => "discarded",
        }
    }

    fn from_stored(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "replayed" => Ok(DispositionKind::Replayed),
            "discarded" => Ok(DispositionKind::Discarded),
            other => Err(decode_error("disposition", other)),
        }
    }
}

fn decode_error(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {column} {value:?}").into())
}

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// Replay or discard.
    pub action: Action,
    /// Who.
    pub actor: Actor,
    /// Why.
    pub reason: Reason,
    /// The selection as given (filters, `all`).
    pub selection: serde_json::Value,
    /// How it ended.
    pub outcome: Outcome,
}

/// One dead letter an action touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRef {
    /// The DLQ topic (as named on the broker, prefix included).
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The record's event id header, when it has a valid one.
    pub event_id: Option<Uuid>,
}

/// The latest action taken on one dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disposition {
    /// Replayed or discarded.
    pub kind: DispositionKind,
    /// The action ([`history`]).
    pub action_id: i64,
    /// The record's event id header, when it has a valid one.
    pub event_id: Option<Uuid>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRow {
    /// Its id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// Replay or discard.
    pub action: Action,
    /// How many dead letters it touched.
    pub dead_letters: i32,
    /// `done` or `failed: <message>`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The selection as given.
    pub selection: serde_json::Value,
}

/// Records `action` and the disposition of each of `dead_letters` in one
/// transaction, and returns the action's id. A dead letter acted on before
/// gets this action as its latest; the earlier action stays in the history.
#[tracing::instrument(skip(pool, dead_letters), fields(action = action.action.as_str(), actor = action.actor.as_str(), dead_letters = dead_letters.len()))]
pub async fn record_action(
    pool: &PgPool,
    action: NewAction,
    dead_letters: &[DeadLetterRef],
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id = insert_action(&mut tx, &action, dead_letters.len()).await?;
    upsert_dispositions(&mut tx, id, action.action.disposition(), dead_letters).await?;
    tx.commit().await?;
    Ok(id)
}

#[tracing::instrument(skip_all)]
async fn insert_action(
    tx: &mut Transaction<'_, Postgres>,
    action: &NewAction,
    count: usize,
) -> Result<i64, sqlx::Error> {
    let count = i32::try_from(count).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query_scalar(
        "INSERT INTO dlq_actions (action, actor, reason, selection, dead_letters, outcome)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(action.action.as_str())
    .bind(action.actor.as_str())
    .bind(action.reason.as_str())
    .bind(&action.selection)
    .bind(count)
    .bind(action.outcome.to_text())
    .fetch_one(&mut **tx)
    .await
}

#[tracing::instrument(skip(tx, dead_letters))]
async fn upsert_dispositions(
    tx: &mut Transaction<'_, Postgres>,
    action_id: i64,
    kind: DispositionKind,
    dead_letters: &[DeadLetterRef],
) -> Result<(), sqlx::Error> {
    if dead_letters.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = dead_letters.iter().map(|d| d.topic.as_str()).collect();
    let partitions: Vec<i32> = dead_letters.iter().map(|d| d.partition).collect();
    let offsets: Vec<i64> = dead_letters.iter().map(|d| d.offset).collect();
    let event_ids: Vec<Option<Uuid>> = dead_letters.iter().map(|d| d.event_id).collect();
    sqlx::query(
        "INSERT INTO dlq_dispositions (dlq_topic, dlq_partition, dlq_offset, action_id, disposition, event_id)
         SELECT t, p, o, $4, $5, e FROM unnest($1::text[], $2::int4[], $3::int8[], $6::uuid[]) AS d (t, p, o, e)
         ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE
         SET action_id = excluded.action_id, disposition = excluded.disposition,
             event_id = excluded.event_id, at = excluded.at",
    )
    .bind(&topics)
    .bind(&partitions)
    .bind(&offsets)
    .bind(action_id)
    .bind(kind.as_str())
    .bind(&event_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The latest disposition of every dead letter of `dlq_topic` acted on, by
/// (partition, offset). A dead letter that is not in the map is pending.
#[tracing::instrument(skip(pool))]
pub async fn dispositions(
    pool: &PgPool,
    dlq_topic: &str,
) -> Result<HashMap<(i32, i64), Disposition>, sqlx::Error> {
    type Row = (i32, i64, String, i64, Option<Uuid>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT dlq_partition, dlq_offset, disposition, action_id, event_id, at
         FROM dlq_dispositions WHERE dlq_topic = $1",
    )
    .bind(dlq_topic)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(partition, offset, kind, action_id, event_id, at)| {
            let kind = DispositionKind::from_stored(&kind)?;
            Ok((
                (partition, offset),
                Disposition {
                    kind,
                    action_id,
                    event_id,
                    at,
                },
            ))
        })
        .collect()
}

/// The latest `limit` actions, newest first.
#[tracing::instrument(skip(pool))]
pub async fn history(pool: &PgPool, limit: i64) -> Result<Vec<ActionRow>, sqlx::Error> {
    type Row = (
        i64,
        DateTime<Utc>,
        String,
        String,
        i32,
        String,
        String,
        serde_json::Value,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, action, dead_letters, outcome, reason, selection
         FROM dlq_actions ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(
            |(id, at, actor, action, dead_letters, outcome, reason, selection)| {
                Ok(ActionRow {
                    id,
                    at,
                    actor,
                    action: Action::from_stored(&action)?,
                    dead_letters,
                    outcome,
                    reason,
                    selection,
                })
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_reason_is_refused_naming_the_field() {
        for blank in ["", "   ", "\t\n"] {
            let e = Reason::parse(blank).unwrap_err();
            assert_eq!(e.field, "reason");
            assert!(e.to_string().starts_with("reason must not be blank"), "{e}");
        }
    }

    #[test]
    fn a_blank_actor_is_refused_naming_the_field() {
        let e = Actor::parse(" ").unwrap_err();
        assert_eq!(e.field, "actor");
        assert!(e.to_string().starts_with("actor must not be blank"), "{e}");
    }

    #[test]
    fn an_actor_and_a_reason_are_kept_trimmed() {
        assert_eq!(Actor::parse(" alice\n").unwrap().as_str(), "alice");
        assert_eq!(
            Reason::parse("  fixed in 1.4.2 ").unwrap().as_str(),
            "fixed in 1.4.2"
        );
    }

    #[test]
    fn an_outcome_is_stored_as_done_or_failed_with_a_bounded_message() {
        assert_eq!(Outcome::Done.to_text(), "done");
        assert_eq!(
            Outcome::Failed("broker down".into()).to_text(),
            "failed: broker down"
        );
        let long = Outcome::Failed("é".repeat(5000)).to_text();
        assert_eq!(long.chars().count(), "failed: ".len() + 1000);
    }

    #[test]
    fn each_action_leaves_its_own_disposition() {
        assert_eq!(Action::Replay.disposition(), DispositionKind::Replayed);
        assert_eq!(Action::Discard.disposition(), DispositionKind::Discarded);
    }
}
