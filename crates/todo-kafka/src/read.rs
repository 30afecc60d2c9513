//! Reading a bounded range of a topic (the dead letters, for todoctl and the
//! event service's console): from the beginning up to the high
//! watermarks seen at the start.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A record as read, with its headers as strings.
#[derive(Clone, Debug)]
pub struct ReadRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers (values as UTF-8, lossy).
    pub headers: Vec<(String, String)>,
}

impl ReadRecord {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// From an rdkafka message.
    pub fn from_message<M: Message>(m: &M) -> Self {
        Self {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().unwrap_or_default().to_vec(),
            headers: crate::headers_as_strings(m),
        }
    }
}

/// The partitions of `topic` as the cluster reports them, each with its
/// number of replicas (blocking); empty when the topic does not exist.
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, usize)>, KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.replicas().len())))
        .collect())
}

/// Reads `topic` from its first offsets to the high watermarks of the moment
/// (blocking). Nothing is committed: the group is a throwaway.
pub fn read_to_end(base: &ClientConfig, topic: &str) -> anyhow::Result<Vec<ReadRecord>> {
    let mut cfg = base.clone();
    let group = format!("todo-read-{}", uuid::Uuid::new_v4().simple());
    cfg.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = cfg.create().context("creating the Kafka consumer")?;
    let timeout = Duration::from_secs(10);
    let partitions: Vec<i32> = topic_partitions(&consumer, topic, timeout)
        .context("topic metadata")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    anyhow::ensure!(!partitions.is_empty(), "topic {topic} does not exist");

    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout)?;
        ends.push((*p, high));
        tpl.add_partition_offset(topic, *p, Offset::Offset(low))?;
    }
    let mut pending: Vec<(i32, i64)> = ends
        .iter()
        .filter(|(p, high)| {
            let from = tpl
                .find_partition(topic, *p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(0);
            from < *high
        })
        .copied()
        .collect();
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "timed out reading {topic}"
        );
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg: OwnedMessage = msg?.detach();
        if let Some(pos) = pending.iter().position(|(p, _)| *p == msg.partition()) {
            if msg.offset() + 1 >= pending[pos].1 {
                pending.remove(pos);
            }
            if msg.offset()
                < ends
                    .iter()
                    .find(|(p, _)| *p == msg.partition())
                    .map_or(0, |e| e.1)
            {
                out.push(ReadRecord::from_message(&msg));
            }
        }
    }
    Ok(out)
}
