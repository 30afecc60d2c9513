//! Through the Dapr sidecar's bulk publish API.

use std::collections::BTreeMap;

use super::{Acks, OutboxRecord, Publish, PublishError};

/// Publishes through the Dapr sidecar.
#[derive(Clone)]
pub struct DaprPublisher(pub todo_dapr::publish::Publisher);

impl Publish for DaprPublisher {
    /// One: a request's entries are not ordered, so a batch goes out in
    /// waves of one row per task, and the next batch waits for the last wave.
    fn max_in_flight(&self, _configured: usize) -> usize {
        1
    }

    async fn send(&self, rows: Vec<OutboxRecord>) -> Acks {
        let dapr = self.0.clone();
        tokio::spawn(async move { send_dapr(&dapr, &rows).await })
    }

    /// Nothing is queued: every request waits for its answer.
    async fn flush(&self) {}
}

/// One bulk request per topic and wave: a wave holds at most one row per
/// task, and goes out once the one before it is acknowledged. When a wave
/// fails anywhere, the topic's later waves are not sent (they are retried
/// with it), so no task's later event is published before its earlier one.
async fn send_dapr(
    dapr: &todo_dapr::publish::Publisher,
    rows: &[OutboxRecord],
) -> Vec<Result<(), PublishError>> {
    let mut by_topic: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_topic.entry(r.topic.as_str()).or_default().push(i);
    }
    let topics = by_topic.into_iter().map(|(topic, idx)| async move {
        let mut out: Vec<(usize, Result<(), PublishError>)> = Vec::with_capacity(idx.len());
        let mut failed = false;
        for wave in todo_dapr::publish::waves(idx.iter().map(|&i| rows[i].key.as_str())) {
            let members: Vec<usize> = wave.iter().map(|&w| idx[w]).collect();
            if failed {
                out.extend(members.into_iter().map(|i| {
                    (
                        i,
                        Err(PublishError {
                            message: "not sent: an earlier event of its topic failed in this batch"
                                .into(),
                            retriable: true,
                        }),
                    )
                }));
                continue;
            }
            let records: Vec<todo_dapr::publish::Record<'_>> = members
                .iter()
                .map(|&i| todo_dapr::publish::Record {
                    entry_id: rows[i].id.to_string(),
                    key: &rows[i].key,
                    value: &rows[i].payload,
                    headers: &rows[i].headers,
                })
                .collect();
            let results = dapr.publish(topic, &records).await;
            failed = results.iter().any(Result::is_err);
            out.extend(members.into_iter().zip(results).map(|(i, r)| {
                (
                    i,
                    r.map_err(|message| PublishError {
                        message,
                        retriable: true,
                    }),
                )
            }));
        }
        out
    });
    let mut results: Vec<Option<Result<(), PublishError>>> =
        (0..rows.len()).map(|_| None).collect();
    for (i, r) in futures::future::join_all(topics)
        .await
        .into_iter()
        .flatten()
    {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.expect("every row has a result"))
        .collect()
}
