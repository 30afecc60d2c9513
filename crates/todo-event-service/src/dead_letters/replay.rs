//! Republishing dead letters to the topics they came from.

use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_events::headers;
use todo_kafka::{KafkaArgs, ProducerArgs};

use todo_kafka::ReadRecord;

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
    let producer: FutureProducer = kafka.producer_config(&ProducerArgs::default())?.create()?;
    let mut sends = Vec::with_capacity(records.len());
    for (r, original) in records.iter().zip(originals) {
        let provenance = format!("{}/{}/{}", r.topic, r.partition, r.offset);
        let mut hs = OwnedHeaders::new();
        let kept = |k: &str| {
            if headers::is_dlq(k) {
                headers::DLQ_KEPT_ON_REPLAY.contains(&k)
            } else {
                k != headers::REPLAYED_FROM
            }
        };
        for (k, v) in r.headers.iter().filter(|(k, _)| kept(k)) {
            hs = hs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        hs = hs.insert(Header {
            key: headers::REPLAYED_FROM,
            value: Some(provenance.as_bytes()),
        });
        let mut record = FutureRecord::to(original).payload(&r.value).headers(hs);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        sends.push(producer.send(record, Duration::from_secs(30)));
    }
    // NB: all sends in flight at once; their order per partition is kept.
    let results = futures::future::join_all(sends).await;
    Ok(results
        .into_iter()
        .zip(records)
        .map(|(sent, r)| {
            sent.map(|_| ())
                .map_err(|(e, _)| anyhow::Error::new(e))
                .with_context(|| format!("replaying {}/{}/{}", r.topic, r.partition, r.offset))
        })
        .collect())
}
