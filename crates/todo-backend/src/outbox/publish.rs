//! Where the relay sends outbox rows: straight to Kafka (`EVENT_TRANSPORT=kafka`,
//! the default and the fastest), or through the Dapr sidecar's bulk publish
//! API (`EVENT_TRANSPORT=dapr`). Either way a row's bytes, key and headers
//! reach the topic unchanged, and a row counts as published only once the
//! broker acknowledged it.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer as _};
use todo_kafka::Producer;
use tokio::task::JoinHandle;

/// Which transport publishes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The Kafka producer, in process.
    Kafka,
    /// The Dapr sidecar's pub/sub API.
    Dapr,
}

/// One outbox row to publish.
pub struct Outgoing {
    /// Outbox id.
    pub id: i64,
    /// Topic (with any prefix).
    pub topic: String,
    /// Record key (the task id).
    pub key: String,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Vec<(String, String)>,
}

/// Why a row was not published.
#[derive(Debug, Clone)]
pub struct PublishError {
    /// What the transport said.
    pub message: String,
    /// Whether trying again may succeed (every row is tried again regardless).
    pub retriable: bool,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<KafkaError> for PublishError {
    fn from(e: KafkaError) -> Self {
        Self {
            retriable: todo_kafka::is_retriable(&e),
            message: e.to_string(),
        }
    }
}

/// The delivery reports of one batch, in row order.
pub type Acks = JoinHandle<Vec<Result<(), PublishError>>>;

/// Publishes outbox rows.
#[derive(Clone)]
pub enum Publisher {
    /// Straight to Kafka.
    Kafka(Producer),
    /// Through the Dapr sidecar.
    Dapr(todo_dapr::publish::Publisher),
}

impl Publisher {
    /// Batches in flight at once. Through Dapr, one: a request's entries are
    /// not ordered, so a batch goes out in waves of one row per task, and the
    /// next batch waits for the last wave.
    pub fn max_in_flight(&self, configured: usize) -> usize {
        match self {
            Self::Kafka(_) => configured.max(1),
            Self::Dapr(_) => 1,
        }
    }

    /// Starts publishing `rows` (in id order); the returned task gives one
    /// result per row, in the same order.
    pub async fn send(&self, rows: Vec<Outgoing>) -> Acks {
        match self {
            Self::Kafka(producer) => send_kafka(producer, rows).await,
            Self::Dapr(dapr) => {
                let dapr = dapr.clone();
                tokio::spawn(async move { send_dapr(&dapr, &rows).await })
            }
        }
    }

    /// Waits (bounded) for what is queued to be sent.
    pub async fn flush(&self) {
        if let Self::Kafka(producer) = self {
            let producer = producer.clone();
            let _ =
                tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
        }
    }
}

/// Queues every row on the producer (in order: the idempotent producer
/// keeps it per partition), then collects the delivery reports.
async fn send_kafka(producer: &Producer, rows: Vec<Outgoing>) -> Acks {
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in &rows {
        let headers = row.headers.iter().fold(
            OwnedHeaders::new_with_capacity(row.headers.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                })
            },
        );
        let mut record = FutureRecord::to(&row.topic)
            .key(&row.key)
            .payload(&row.payload)
            .headers(headers);
        // NB: never await one send at a time; queue them all, and a task
        // awaits the delivery reports in order.
        let delivery = loop {
            match producer.send_result(record) {
                Ok(fut) => break Ok(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => break Err(e),
            }
        };
        deliveries.push(delivery);
    }
    tokio::spawn(async move {
        let mut results = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            results.push(match delivery {
                Ok(fut) => match fut.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.into()),
                    Err(_) => Err(KafkaError::Canceled.into()),
                },
                Err(e) => Err(e.into()),
            });
        }
        results
    })
}

/// One bulk request per topic and wave: a wave holds at most one row per
/// task, and goes out once the one before it is acknowledged. When a wave
/// fails anywhere, the topic's later waves are not sent (they are retried
/// with it), so no task's later event is published before its earlier one.
async fn send_dapr(
    dapr: &todo_dapr::publish::Publisher,
    rows: &[Outgoing],
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
