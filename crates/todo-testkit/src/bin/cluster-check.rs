//! Checks the three-broker layout the way the zero-loss claims need it: a
//! topic with replication factor 3 and min.insync.replicas 2 accepts acks=all
//! writes, and keeps accepting them with one broker stopped.
//!
//! Run by `ops/test-dev.sh` after `./dev up --infra --brokers 3`; stops and
//! restarts kafka-2 through `./dev`. Exits non-zero on any failure.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

fn dev(args: &[&str]) -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev");
    let status = Command::new(script)
        .args(args)
        .status()
        .context("running ./dev")?;
    ensure!(status.success(), "./dev {args:?} failed");
    Ok(())
}

async fn produce(producer: &FutureProducer, topic: &str, n: usize) -> anyhow::Result<()> {
    let payloads: Vec<String> = (0..n).map(|i| format!("record {i}")).collect();
    let sends = payloads.iter().enumerate().map(|(i, p)| {
        let key = i.to_string();
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(p),
                    Duration::from_secs(30),
                )
                .await
        }
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|(e, _)| e)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = todo_testkit::Stack::from_env();
    ensure!(
        stack.brokers == 3,
        "KAFKA_BROKERS is {}: run after ./dev up --brokers 3",
        stack.brokers
    );
    let topic = format!("{}rf3", stack.unique_topic_prefix());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()?;
    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    for r in admin.create_topics(&[new], &AdminOptions::new()).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .create()?;

    produce(&producer, &topic, 200)
        .await
        .context("acks=all writes with three brokers")?;
    println!(
        "ok   - 200 acks=all writes to {topic} (RF 3, min.insync.replicas 2) with three brokers"
    );

    dev(&["stop", "kafka-2"])?;
    let result = produce(&producer, &topic, 200).await;
    dev(&["start", "kafka-2"])?;
    result.context("acks=all writes with kafka-2 stopped")?;
    println!("ok   - 200 more acks=all writes with kafka-2 stopped");
    Ok(())
}
