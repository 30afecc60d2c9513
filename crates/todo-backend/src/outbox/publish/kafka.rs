//! Straight to Kafka, with the in-process idempotent producer.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer as _};
use todo_kafka::Producer;

use super::{Acks, OutboxRecord, Publish};

/// Publishes with the Kafka producer.
#[derive(Clone)]
pub struct KafkaPublisher(pub Producer);

impl Publish for KafkaPublisher {
    fn max_in_flight(&self, configured: usize) -> usize {
        configured.max(1)
    }

    async fn send(&self, rows: Vec<OutboxRecord>) -> Acks {
        send_kafka(&self.0, rows).await
    }

    async fn flush(&self) {
        let producer = self.0.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }
}

/// Queues every row on the producer (in order: the idempotent producer
/// keeps it per partition), then collects the delivery reports.
async fn send_kafka(producer: &Producer, rows: Vec<OutboxRecord>) -> Acks {
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
