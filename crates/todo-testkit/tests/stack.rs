//! The local stack is real: a record goes through the broker, Postgres and
//! Redis answer. These run first when something in `./dev` breaks.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use todo_testkit::{create_topics, read_records, Stack};

#[tokio::test]
async fn a_record_produced_with_rdkafka_is_read_back_from_the_real_broker() {
    // Arrange
    let stack = Stack::from_env();
    let topic = format!("{}smoke", stack.unique_topic_prefix());
    create_topics(&stack, std::slice::from_ref(&topic))
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();

    // Act
    let value = format!("hello {}", todo_testkit::short_id());
    let delivery = producer
        .send(
            FutureRecord::to(&topic)
                .key("42")
                .payload(&value)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "h",
                    value: Some("v"),
                })),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let records = read_records(
        &stack.kafka_bootstrap,
        std::slice::from_ref(&topic),
        1,
        Duration::from_secs(20),
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(records.len(), 1, "the record should be read back");
    let r = &records[0];
    assert_eq!(
        (r.partition, r.offset),
        (delivery.partition, delivery.offset)
    );
    assert_eq!(r.key.as_deref(), Some("42"));
    assert_eq!(r.value, value.as_bytes());
    assert_eq!(r.header("h"), Some("v"));
}

#[tokio::test]
async fn postgres_answers_in_a_fresh_database() {
    let stack = Stack::from_env();
    let url = stack.fresh_database().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (db, two): (String, i32) = sqlx::query_as("select current_database(), 1 + 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(db.starts_with("test_"));
    assert_eq!(two, 2);
}

#[tokio::test]
async fn redis_keeps_a_value_with_an_expiry() {
    let stack = Stack::from_env();
    let mut conn = todo_testkit::redis(&stack).await.unwrap();
    let key = format!("test:{}", todo_testkit::short_id());
    let first: bool = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("NX")
        .arg("EX")
        .arg(60)
        .query_async::<Option<String>>(&mut conn)
        .await
        .unwrap()
        .is_some();
    let second: bool = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("NX")
        .arg("EX")
        .arg(60)
        .query_async::<Option<String>>(&mut conn)
        .await
        .unwrap()
        .is_some();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(first && !second, "SET NX must succeed once");
    assert!(ttl > 0 && ttl <= 60);
}
