//! todoctl against the real broker: dead letters listed and replayed; the
//! schema gate on proposed files.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_events::{headers as h, EventType};
use todo_kafka::TopicNames;
use todo_testkit::{create_topics, read_records, Stack};
use todoctl::dlq::{DlqCommand, Filter};

async fn dead_letter(stack: &Stack, names: &TopicNames, value: &[u8], class: &str) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let original = names.for_event(EventType::Created);
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: h::CONTENT_TYPE,
            value: Some("application/json"),
        })
        .insert(Header {
            key: h::DLQ_ORIGINAL_TOPIC,
            value: Some(original.as_str()),
        })
        .insert(Header {
            key: h::DLQ_ORIGINAL_PARTITION,
            value: Some("0"),
        })
        .insert(Header {
            key: h::DLQ_ORIGINAL_OFFSET,
            value: Some("7"),
        })
        .insert(Header {
            key: h::DLQ_ERROR_CLASS,
            value: Some(class),
        })
        .insert(Header {
            key: h::DLQ_ERROR_MESSAGE,
            value: Some("handler failed"),
        })
        .insert(Header {
            key: h::DLQ_ATTEMPTS,
            value: Some("5"),
        });
    producer
        .send(
            FutureRecord::to(&names.dlq())
                .key("42")
                .payload(value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn dead_letters_are_listed_with_their_reason_and_replayed_once_to_their_original_topic() {
    // Arrange
    let stack = Stack::from_env();
    let prefix = stack.unique_topic_prefix();
    let names = TopicNames::new(prefix.clone());
    create_topics(&stack, &names.all()).await.unwrap();
    dead_letter(&stack, &names, b"{\"not\": \"an event\"}", "handler").await;
    dead_letter(&stack, &names, b"\x00\x01garbage", "decode").await;
    let kafka = stack.kafka_args(&prefix);

    // Act 1: list
    let mut listing = Vec::new();
    todoctl::dlq::run(
        DlqCommand::List {
            kafka: kafka.clone(),
            filter: Filter::default(),
        },
        &mut listing,
    )
    .await
    .unwrap();
    let listing = String::from_utf8(listing).unwrap();

    // Assert 1
    assert!(listing.contains("2 dead letters"), "{listing}");
    assert!(listing.contains("dlq.error_class=handler"), "{listing}");
    assert!(
        listing.contains("dlq.error_message=handler failed"),
        "{listing}"
    );

    // Act 2: replay only the handler failure, twice
    let replay = || DlqCommand::Replay {
        kafka: kafka.clone(),
        filter: Filter {
            error_class: Some("handler".into()),
            ..Filter::default()
        },
        all: false,
        dry_run: false,
    };
    let mut first = Vec::new();
    todoctl::dlq::run(replay(), &mut first).await.unwrap();
    let mut second = Vec::new();
    todoctl::dlq::run(replay(), &mut second).await.unwrap();

    // Assert 2
    assert!(String::from_utf8(first)
        .unwrap()
        .contains("replayed 1 dead letters"));
    assert!(
        String::from_utf8(second)
            .unwrap()
            .contains("replayed 0 dead letters"),
        "already replayed"
    );
    let back = read_records(
        &stack.kafka_bootstrap,
        &[names.for_event(EventType::Created)],
        2,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].value, b"{\"not\": \"an event\"}");
    assert_eq!(back[0].key.as_deref(), Some("42"));
    assert!(back[0]
        .header(h::REPLAYED_FROM)
        .unwrap()
        .starts_with(&names.dlq()));
    assert!(
        back[0].header(h::DLQ_ERROR_CLASS).is_none(),
        "dlq headers are dropped"
    );
    assert_eq!(back[0].header(h::CONTENT_TYPE), Some("application/json"));
}

#[test]
fn the_schema_gate_accepts_an_added_optional_field_and_refuses_a_removed_one() {
    let v2 = todo_events::schema::get(EventType::Completed, todo_events::EventVersion::V2).avsc;
    let mut doc: serde_json::Value = serde_json::from_str(v2).unwrap();
    let dir = std::env::temp_dir().join(format!("todoctl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();

    // A v3 that adds an optional field to the envelope.
    let fields = doc["fields"].as_array_mut().unwrap();
    fields.push(serde_json::json!({"name": "tenant", "type": ["null", "string"], "default": null}));
    let good = dir.join("good.avsc");
    std::fs::write(&good, serde_json::to_string(&doc).unwrap()).unwrap();
    // A v3 that drops a field without a default.
    let fields = doc["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "correlation_id");
    let bad = dir.join("bad.avsc");
    std::fs::write(&bad, serde_json::to_string(&doc).unwrap()).unwrap();

    let mut out = Vec::new();
    let ok = todoctl::schema::run(
        todoctl::schema::SchemaCommand::Check { file: good },
        &mut out,
    )
    .unwrap();
    let mut out2 = Vec::new();
    let refused = todoctl::schema::run(
        todoctl::schema::SchemaCommand::Check { file: bad },
        &mut out2,
    )
    .unwrap();

    assert_eq!(
        ok,
        std::process::ExitCode::SUCCESS,
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        refused,
        std::process::ExitCode::FAILURE,
        "{}",
        String::from_utf8_lossy(&out2)
    );
    assert!(String::from_utf8_lossy(&out2).contains("NOT compatible"));
}
