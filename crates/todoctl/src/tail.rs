//! `todoctl tail`: a decoded live view of the task topics.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use todo_events::headers;
use todo_kafka::{KafkaArgs, TopicNames};

use todo_kafka::ReadRecord;

/// Options of `tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Start at the oldest retained event instead of new ones only.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub max: Option<usize>,
    /// Stop when no event arrived for this many seconds.
    #[arg(long)]
    pub idle_exit_s: Option<u64>,
    /// Also show the dead letter topic.
    #[arg(long)]
    pub include_dlq: bool,
}

/// One line for a record: where it is, what it is, and its event as JSON
/// (or why it does not decode).
pub fn render(names: &TopicNames, r: &ReadRecord) -> String {
    let key = r
        .key
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let ts = r
        .timestamp_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let body = match names.canonical(&r.topic) {
        Some(canonical) => {
            match todo_events::decode_record(canonical, r.header(headers::CONTENT_TYPE), &r.value) {
                Ok(event) => match event.encode(todo_events::ContentType::Json) {
                    Ok(json) => String::from_utf8_lossy(&json).into_owned(),
                    Err(e) => format!("<re-encoding failed: {e}>"),
                },
                Err(e) => format!("<undecodable: {} {e}> {}", e.class(), preview(&r.value)),
            }
        }
        None => preview(&r.value),
    };
    let dlq: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| headers::is_dlq(k) || k == headers::REPLAYED_FROM)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let extra = if dlq.is_empty() {
        String::new()
    } else {
        format!(" [{}]", dlq.join(" "))
    };
    format!(
        "{ts} {}[{}]@{} key={key}{extra} {body}",
        r.topic, r.partition, r.offset
    )
}

/// At most 200 characters of a value, as text when it is text.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let shown: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Runs `tail`, writing one line per record to `out`.
pub async fn run(args: TailArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let names = TopicNames::new(args.kafka.topic_prefix.clone());
    let mut cfg = args.kafka.client_config(&[])?;
    cfg.set(
        "group.id",
        format!("todoctl-tail-{}", uuid::Uuid::new_v4().simple()),
    )
    .set("enable.auto.commit", "false")
    .set(
        "auto.offset.reset",
        if args.from_beginning {
            "earliest"
        } else {
            "latest"
        },
    );
    let consumer: StreamConsumer = cfg.create()?;
    let mut topics = names.task_topics();
    if args.include_dlq {
        topics.push(names.dlq());
    }
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    let mut stream = consumer.stream();
    let mut seen = 0usize;
    loop {
        if args.max.is_some_and(|m| seen >= m) {
            return Ok(());
        }
        let next = match args.idle_exit_s {
            Some(s) => match tokio::time::timeout(Duration::from_secs(s), stream.next()).await {
                Ok(n) => n,
                Err(_) => return Ok(()),
            },
            None => stream.next().await,
        };
        let Some(msg) = next else { return Ok(()) };
        let msg = msg?;
        writeln!(out, "{}", render(&names, &ReadRecord::from_message(&msg)))?;
        out.flush()?;
        seen += 1;
    }
}
