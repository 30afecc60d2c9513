//! The clients authenticate with SASL/SCRAM-SHA-512 when configured, with
//! credentials from the environment that never print.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_kafka::{KafkaArgs, ProducerArgs};
use todo_runtime::Secret;
use todo_testkit::{create_topics, read_records, Stack};

fn sasl_args(password: &str) -> KafkaArgs {
    let bootstrap = std::env::var("KAFKA_SASL_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|s| !s.is_empty())
        .expect(
            "KAFKA_SASL_BOOTSTRAP_SERVERS: the single-node stack has a SASL listener (./dev env)",
        );
    let mut args = KafkaArgs::local(bootstrap);
    args.sasl_username =
        Some(std::env::var("KAFKA_SASL_TEST_USERNAME").expect("KAFKA_SASL_TEST_USERNAME"));
    args.sasl_password = Some(Secret::new(password));
    args
}

fn password() -> String {
    std::env::var("KAFKA_SASL_TEST_PASSWORD").expect("KAFKA_SASL_TEST_PASSWORD")
}

#[tokio::test]
async fn a_producer_with_scram_credentials_writes_through_the_sasl_listener() {
    // Arrange
    let stack = Stack::from_env();
    let topic = format!("{}sasl", stack.unique_topic_prefix());
    create_topics(&stack, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let args = sasl_args(&password());
    let producer: FutureProducer = args
        .producer_config(&ProducerArgs::default())
        .unwrap()
        .create()
        .unwrap();

    // Act
    let sent = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("authenticated"),
            Duration::from_secs(20),
        )
        .await;

    // Assert
    assert!(
        sent.is_ok(),
        "SCRAM-authenticated produce failed: {:?}",
        sent.err().map(|e| e.0)
    );
    let back = read_records(&stack.kafka_bootstrap, &[topic], 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(back[0].value, b"authenticated");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_printed() {
    let args = sasl_args("not-the-password");
    let debug = format!("{args:?}");
    assert!(!debug.contains("not-the-password"), "{debug}");
    let consumer: BaseConsumer = args
        .client_config(&[("group.id", "sasl-test".into())])
        .unwrap()
        .create()
        .unwrap();
    let md =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(8)))
            .await
            .unwrap();
    assert!(
        md.is_err(),
        "metadata must not be served to a client with a wrong password"
    );
}
