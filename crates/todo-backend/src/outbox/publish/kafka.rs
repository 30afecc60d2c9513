//! Straight to Kafka, with in-process idempotent producers: one, or several
//! that the topics are spread over (`RELAY_KAFKA_PRODUCERS`).

use std::collections::HashMap;
use std::sync::Arc;
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
    routes: Arc<TopicRoutes>,
}

impl KafkaPublisher {
    /// A publisher over `producers` (at least one), with `topics` (the
    /// event topics) taking them in turn.
    pub fn new(producers: Vec<Producer>, topics: &[String]) -> Self {
        assert!(!producers.is_empty(), "a Kafka publisher needs a producer");
        let routes = TopicRoutes::new(topics, producers.len());
        Self {
            producers: producers.into(),
            routes: Arc::new(routes),
        }
    }

    fn producer_of(&self, topic: &str) -> &Producer {
        &self.producers[self.routes.producer_of(topic)]
    }
}

impl Publish for KafkaPublisher {
    fn max_in_flight(&self, configured: usize) -> usize {
        configured.max(1)
    }

    async fn send(&self, rows: Vec<OutboxRecord>) -> Acks {
        send_kafka(self, rows).await
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

/// Which producer each topic goes through, fixed at start: the event topics
/// take the producers in turn; any other topic (a row written under an
/// earlier prefix) goes through the first. Either way a topic always goes
/// through the same producer.
struct TopicRoutes(HashMap<String, usize>);

impl TopicRoutes {
    fn new(topics: &[String], producers: usize) -> Self {
        Self(
            topics
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i % producers))
                .collect(),
        )
    }

    fn producer_of(&self, topic: &str) -> usize {
        self.0.get(topic).copied().unwrap_or(0)
    }
}

/// Queues every row on its topic's producer (in order: the idempotent
/// producer keeps it per partition), then collects the delivery reports.
async fn send_kafka(publisher: &KafkaPublisher, rows: Vec<OutboxRecord>) -> Acks {
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in &rows {
        let producer = publisher.producer_of(&row.topic);
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

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn the_event_topics_take_the_producers_in_turn() {
        let r = TopicRoutes::new(&topics(&["created", "updated", "deleted", "completed"]), 3);
        let routes: Vec<usize> = ["created", "updated", "deleted", "completed"]
            .iter()
            .map(|t| r.producer_of(t))
            .collect();
        assert_eq!(routes, vec![0, 1, 2, 0]);
    }

    #[test]
    fn any_other_topic_goes_through_the_first_producer() {
        let r = TopicRoutes::new(&topics(&["created", "updated"]), 2);
        assert_eq!(r.producer_of("updated"), 1);
        assert_eq!(r.producer_of("old.prefix.updated"), 0);
    }

    #[test]
    fn one_producer_takes_every_topic() {
        let r = TopicRoutes::new(&topics(&["a", "b", "c"]), 1);
        assert!(["a", "b", "c", "d"].iter().all(|t| r.producer_of(t) == 0));
    }
}
