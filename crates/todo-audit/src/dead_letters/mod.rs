//! Operating on the dead letters: reading the dead-letter topic, replaying or
//! discarding a selection of it, and recording each action with who, why and
//! how it ended ([`crate::dlq_actions`]). Used by `todoctl dlq` and the console,
//! so both act the same way.

mod replay;

use anyhow::Context;
use sqlx::PgPool;
use todo_events::headers;
use todo_kafka::{KafkaArgs, ReadRecord, TopicNames};

pub use replay::republish;

use crate::dlq_actions::{self, Action, Actor, DeadLetterRef, NewAction, Outcome, Reason};

/// Every record of the dead-letter topic up to its current end.
pub async fn read_all(kafka: &KafkaArgs) -> anyhow::Result<Vec<ReadRecord>> {
    let cfg = kafka.client_config(&[])?;
    let dlq = TopicNames::new(kafka.topic_prefix.clone()).dlq();
    tokio::task::spawn_blocking(move || todo_kafka::read_to_end(&cfg, &dlq)).await?
}

/// Who acts, why, and what was selected (recorded as given).
pub struct Request {
    /// Replay or discard.
    pub action: Action,
    /// Who.
    pub actor: Actor,
    /// Why.
    pub reason: Reason,
    /// The selection, for the record (e.g. the CLI's filter or the console's
    /// form).
    pub selection: serde_json::Value,
}

/// A recorded action: its id and how many dead letters it touched.
#[derive(Debug, Clone, Copy)]
pub struct Acted {
    /// The action's id in `dlq history`.
    pub action_id: i64,
    /// Dead letters replayed or discarded.
    pub touched: usize,
}

/// Replays (to their original topics) or discards `records` and records the
/// action, whatever its outcome. A replay that fails part-way is recorded as
/// failed, with the dead letters that did reach their topics, and its error
/// returned naming the action.
pub async fn act(
    pool: &PgPool,
    kafka: &KafkaArgs,
    request: Request,
    records: &[ReadRecord],
) -> anyhow::Result<Acted> {
    let (touched, result) = match request.action {
        Action::Discard => (records.iter().collect(), Ok(())),
        Action::Replay => match republish(kafka, records).await {
            Err(e) => (Vec::new(), Err(e)),
            Ok(deliveries) => {
                let n = deliveries.len();
                let mut touched = Vec::new();
                let mut failed = Vec::new();
                for (r, d) in records.iter().zip(deliveries) {
                    match d {
                        Ok(()) => touched.push(r),
                        Err(e) => failed.push(e),
                    }
                }
                let result = match failed.into_iter().next() {
                    None => Ok(()),
                    Some(first) => Err(first.context(format!(
                        "{} of {n} dead letters not replayed",
                        n - touched.len()
                    ))),
                };
                (touched, result)
            }
        },
    };
    let refs: Vec<DeadLetterRef> = touched
        .iter()
        .map(|r| DeadLetterRef {
            topic: r.topic.clone(),
            partition: r.partition,
            offset: r.offset,
            event_id: r
                .header(headers::EVENT_ID)
                .and_then(|v| uuid::Uuid::parse_str(v).ok()),
        })
        .collect();
    let outcome = match &result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(format!("{e:#}")),
    };
    let outcome_text = outcome.to_text();
    let done = request.action.disposition().as_str();
    let new = NewAction {
        action: request.action,
        actor: request.actor,
        reason: request.reason,
        selection: request.selection,
        outcome,
    };
    let action_id = dlq_actions::record_action(pool, new, &refs)
        .await
        .with_context(|| {
            format!(
                "{done} {} dead letters ({outcome_text}), but could not record the action",
                refs.len()
            )
        })?;
    result.with_context(|| format!("recorded as failed: action {action_id}"))?;
    Ok(Acted {
        action_id,
        touched: refs.len(),
    })
}
