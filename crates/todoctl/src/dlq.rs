//! `todoctl dlq`: list dead letters with their reasons, and replay them to
//! the topics they came from.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_events::headers;
use todo_kafka::{KafkaArgs, ProducerArgs, TopicNames};

use crate::kafka_read::{read_to_end, ReadRecord, Start};

/// The consumer group `dlq replay` remembers its progress in.
pub const REPLAY_GROUP: &str = "todoctl-dlq-replay";

/// DLQ commands.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters, decoded where possible, with the error headers.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        filter: Filter,
    },
    /// Republish dead letters to their original topics, with a `replayed_from`
    /// header. By default only those not replayed before.
    Replay {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        filter: Filter,
        /// Consider every dead letter, also those replayed before.
        #[arg(long)]
        all: bool,
        /// Show what would be replayed without doing it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Filter {
    /// Only this error class (the `dlq.error_class` header).
    #[arg(long)]
    pub error_class: Option<String>,
    /// Only dead letters from this original topic (contract name, e.g. todo.tasks.created).
    #[arg(long)]
    pub topic: Option<String>,
    /// At most this many.
    #[arg(long)]
    pub max: Option<usize>,
}

impl Filter {
    fn matches(&self, names: &TopicNames, r: &ReadRecord) -> bool {
        let class_ok = self
            .error_class
            .as_deref()
            .is_none_or(|c| r.header(headers::DLQ_ERROR_CLASS) == Some(c));
        let topic_ok = self.topic.as_deref().is_none_or(|t| {
            r.header(headers::DLQ_ORIGINAL_TOPIC)
                .and_then(|o| names.canonical(o))
                == Some(t)
        });
        class_ok && topic_ok
    }

    fn apply(&self, names: &TopicNames, records: Vec<ReadRecord>) -> Vec<ReadRecord> {
        let it = records.into_iter().filter(|r| self.matches(names, r));
        match self.max {
            Some(m) => it.take(m).collect(),
            None => it.collect(),
        }
    }
}

async fn read(kafka: &KafkaArgs, start: Start) -> anyhow::Result<Vec<ReadRecord>> {
    let cfg = kafka.client_config(&[])?;
    let dlq = TopicNames::new(kafka.topic_prefix.clone()).dlq();
    tokio::task::spawn_blocking(move || read_to_end(&cfg, &dlq, &start)).await?
}

/// Runs a DLQ command.
pub async fn run(cmd: DlqCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { kafka, filter } => {
            let names = TopicNames::new(kafka.topic_prefix.clone());
            let records = filter.apply(&names, read(&kafka, Start::Beginning).await?);
            for r in &records {
                writeln!(out, "{}", crate::tail::render(&names, r))?;
            }
            writeln!(out, "{} dead letters", records.len())?;
            Ok(())
        }
        DlqCommand::Replay {
            kafka,
            filter,
            all,
            dry_run,
        } => {
            let names = TopicNames::new(kafka.topic_prefix.clone());
            let start = if all || dry_run {
                Start::Beginning
            } else {
                Start::Group(REPLAY_GROUP.to_owned())
            };
            let records = filter.apply(&names, read(&kafka, start).await?);
            if dry_run {
                for r in &records {
                    writeln!(out, "would replay {}", crate::tail::render(&names, r))?;
                }
                writeln!(out, "{} dead letters would be replayed", records.len())?;
                return Ok(());
            }
            let n = replay(&kafka, &records).await?;
            writeln!(out, "replayed {n} dead letters to their original topics")?;
            Ok(())
        }
    }
}

/// Republishes `records` to their original topics, key and value unchanged,
/// with `replayed_from` and, of the `dlq.*` headers, only those that say where
/// and when the record first failed and after how many attempts (so that a
/// dead letter of its next failure still names them).
pub async fn replay(kafka: &KafkaArgs, records: &[ReadRecord]) -> anyhow::Result<usize> {
    let producer: FutureProducer = kafka.producer_config(&ProducerArgs::default())?.create()?;
    let mut sends = Vec::with_capacity(records.len());
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
    let sent = results.len();
    for r in results {
        r.map_err(|(e, _)| e)?;
    }
    Ok(sent)
}
