//! Republishing dead letters to the topics they came from.

use std::time::Duration;

use anyhow::Context;
use todo_events::headers;
use todo_kafka::{KafkaArgs, Outgoing, ProducerArgs, ReadRecord};

/// Republishes `records` to their original topics, key and value unchanged
/// (so the event keeps its id, and a second delivery still has one effect),
/// with `replayed_from` and, of the `dlq.*` headers, only those that say where
/// and when the record first failed and after how many attempts (so that a
/// dead letter of its next failure still names them).
///
/// Fails before sending anything when a record cannot be replayed (it names
/// no original topic) or no producer can be made; otherwise returns each
/// record's delivery, in order.
pub async fn republish(
    kafka: &KafkaArgs,
    records: &[ReadRecord],
) -> anyhow::Result<Vec<anyhow::Result<()>>> {
    let mut originals = Vec::with_capacity(records.len());
    for r in records {
        let original = r.header(headers::DLQ_ORIGINAL_TOPIC).with_context(|| {
            format!(
                "dead letter {}/{}/{} has no {} header",
                r.topic,
                r.partition,
                r.offset,
                headers::DLQ_ORIGINAL_TOPIC
            )
        })?;
        originals.push(original);
    }
    let producer = todo_kafka::producer(&kafka.producer_config(&ProducerArgs::default())?)?;
    let producer = &producer;
    let mut sends = Vec::with_capacity(records.len());
    for (r, original) in records.iter().zip(originals) {
        let provenance = format!("{}/{}/{}", r.topic, r.partition, r.offset);
        sends.push(async move {
            let kept = |k: &str| {
                if headers::is_dlq(k) {
                    headers::DLQ_KEPT_ON_REPLAY.contains(&k)
                } else {
                    k != headers::REPLAYED_FROM
                }
            };
            let mut hs: Vec<(&str, Option<&[u8]>)> = r
                .headers
                .iter()
                .filter(|(k, _)| kept(k))
                .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
                .collect();
            hs.push((headers::REPLAYED_FROM, Some(provenance.as_bytes())));
            let out = Outgoing {
                topic: original,
                key: r.key.as_deref(),
                value: Some(&r.value),
                headers: hs,
            };
            todo_kafka::send(producer, out, Duration::from_secs(30)).await
        });
    }
    // NB: all sends in flight at once; their order per partition is kept.
    let results = futures::future::join_all(sends).await;
    Ok(results
        .into_iter()
        .zip(records)
        .map(|(sent, r)| {
            sent.map_err(anyhow::Error::new)
                .with_context(|| format!("replaying {}/{}/{}", r.topic, r.partition, r.offset))
        })
        .collect())
}
