//! Straight to Kafka, with in-process idempotent producers: one, or several
//! that the topics are spread over (`RELAY_KAFKA_PRODUCERS`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer as _};
use todo_kafka::Producer;

use super::{Acks, OutboxRecord, Publish};

/// Publishes with Kafka producers, each topic through one of them.
///
/// librdkafka sends one partition per produce request, and a broker serves
/// one connection's requests one at a time; each producer has its own
/// connection, so a batch spread over several topics is acknowledged by
/// several connections at once.
#[derive(Clone)]
pub struct KafkaPublisher {
    producers: Arc<[Producer]>,
    topics: Arc<Mutex<TopicRoutes>>,
}

impl KafkaPublisher {
    /// A publisher over `producers` (at least one).
    pub fn new(producers: Vec<Producer>) -> Self {
        assert!(!producers.is_empty(), "a Kafka publisher needs a producer");
        let routes = TopicRoutes::new(producers.len());
        Self {
            producers: producers.into(),
            topics: Arc::new(Mutex::new(routes)),
        }
    }
}

impl Publish for KafkaPublisher {
    fn max_in_flight(&self, configured: usize) -> usize {
        configured.max(1)
    }

    async fn send(&self, rows: Vec<OutboxRecord>) -> Acks {
        let producers: Vec<&Producer> = {
            let mut routes = self.topics.lock().expect("topic routes lock");
            rows.iter()
                .map(|r| &self.producers[routes.producer_of(&r.topic)])
                .collect()
        };
        send_kafka(&producers, rows).await
    }

    /// Flushes the producers at once, each bounded by the same 5 s.
    async fn flush(&self) {
        let flushes: Vec<_> = self
            .producers
            .iter()
            .map(|p| {
                let p = p.clone();
                tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(5)))
            })
            .collect();
        for f in flushes {
            let _ = f.await;
        }
    }
}

/// Which producer each topic goes through: topics take the producers in
/// turn, in the order they are first seen, and keep theirs.
struct TopicRoutes {
    producers: usize,
    topics: HashMap<String, usize>,
}

impl TopicRoutes {
    fn new(producers: usize) -> Self {
        Self {
            producers,
            topics: HashMap::new(),
        }
    }

    fn producer_of(&mut self, topic: &str) -> usize {
        if let Some(&i) = self.topics.get(topic) {
            return i;
        }
        let i = self.topics.len() % self.producers;
        self.topics.insert(topic.to_owned(), i);
        i
    }
}

/// Queues every row on its producer (`producers[i]` for `rows[i]`, in order:
/// the idempotent producer keeps it per partition), then collects the
/// delivery reports.
async fn send_kafka(producers: &[&Producer], rows: Vec<OutboxRecord>) -> Acks {
    let mut deliveries = Vec::with_capacity(rows.len());
    for (row, producer) in rows.iter().zip(producers) {
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

#[cfg(test)]
mod tests {
    use super::TopicRoutes;

    #[test]
    fn topics_take_the_producers_in_turn_and_keep_theirs() {
        let mut r = TopicRoutes::new(3);
        let first: Vec<usize> = ["created", "updated", "deleted", "completed"]
            .iter()
            .map(|t| r.producer_of(t))
            .collect();
        assert_eq!(first, vec![0, 1, 2, 0]);
        assert_eq!(r.producer_of("deleted"), 2);
        assert_eq!(r.producer_of("created"), 0);
    }

    #[test]
    fn one_producer_takes_every_topic() {
        let mut r = TopicRoutes::new(1);
        assert!(["a", "b", "c"].iter().all(|t| r.producer_of(t) == 0));
    }
}
