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
        back[0].header(h::DLQ_ERROR_CLASS).is_none()
            && back[0].header(h::DLQ_ERROR_MESSAGE).is_none(),
        "the old error is dropped"
    );
    // Where it first failed and after how many attempts travel with it, for
    // the dead letter of its next failure.
    let original = names.for_event(EventType::Created);
    assert_eq!(
        back[0].header(h::DLQ_ORIGINAL_TOPIC),
        Some(original.as_str())
    );
    assert_eq!(back[0].header(h::DLQ_ORIGINAL_PARTITION), Some("0"));
    assert_eq!(back[0].header(h::DLQ_ORIGINAL_OFFSET), Some("7"));
    assert_eq!(back[0].header(h::DLQ_ATTEMPTS), Some("5"));
    assert_eq!(back[0].header(h::CONTENT_TYPE), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_dead_letter_that_fails_again_carries_one_set_of_failure_headers_naming_its_first_failure(
) {
    // Arrange: an event service, and a valid event Postgres refuses (a NUL in
    // its title), so it fails every time it is processed.
    let stack = Stack::from_env();
    let prefix = stack.unique_topic_prefix();
    let names = TopicNames::new(prefix.clone());
    create_topics(&stack, &names.all()).await.unwrap();
    let mut config = todo_event_service::Config::from_env();
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.database_url = todo_kafka::Secret::new(stack.fresh_database().await.unwrap());
    config.kafka = stack.kafka_args(&prefix);
    config.consumer.group_id = format!("test-group-{}", todo_testkit::short_id());
    config.retry.attempts = 2;
    config.retry.base_ms = 20;
    config.retry.cap_ms = 50;
    config.webhooks.urls = Vec::new();
    let service = todo_event_service::Application::build(config)
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    tokio::spawn(service.run_until_stopped(cancel));
    let poison = todo_events::Event::new(
        todo_events::Payload::Created(todo_events::TaskCreated {
            task_id: 7,
            title: "nul \u{0} inside".into(),
            description: None,
            status: todo_events::TaskStatus::Incomplete,
            created_at: chrono::Utc::now(),
            user_id: None,
            task_version: Some(1),
        }),
        todo_events::EventVersion::V2,
        uuid::Uuid::new_v4(),
    );
    let ct = todo_events::ContentType::Json;
    let mut headers = OwnedHeaders::new();
    for (k, v) in &poison.headers(ct) {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let key = poison.key();
    let value = poison.encode(ct).unwrap();
    let original = names.for_event(EventType::Created);
    producer
        .send(
            FutureRecord::to(&original)
                .key(&key)
                .payload(&value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let dlq = [names.dlq()];
    let first = read_records(&stack.kafka_bootstrap, &dlq, 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "dead-lettered once");

    // Act: replay it; it fails again.
    let mut out = Vec::new();
    todoctl::dlq::run(
        DlqCommand::Replay {
            kafka: stack.kafka_args(&prefix),
            filter: Filter::default(),
            all: false,
            dry_run: false,
        },
        &mut out,
    )
    .await
    .unwrap();
    let both = read_records(&stack.kafka_bootstrap, &dlq, 2, Duration::from_secs(60))
        .await
        .unwrap();

    // Assert
    assert_eq!(both.len(), 2, "dead-lettered again after the replay");
    let (first, again) = (&both[0], &both[1]);
    for name in h::ALL_DLQ {
        let n = again.headers.iter().filter(|(k, _)| k == name).count();
        assert_eq!(n, 1, "{name} appears {n} times: {:?}", again.headers);
    }
    let bytes: usize = again.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(bytes <= h::DLQ_MAX_HEADER_BYTES, "{bytes} bytes of headers");
    for same in [
        h::DLQ_ORIGINAL_TOPIC,
        h::DLQ_ORIGINAL_PARTITION,
        h::DLQ_ORIGINAL_OFFSET,
        h::DLQ_FIRST_FAILED_AT,
    ] {
        assert_eq!(again.header(same), first.header(same), "{same}");
    }
    assert_eq!(first.header(h::DLQ_ORIGINAL_TOPIC), Some(original.as_str()));
    assert_eq!(first.header(h::DLQ_ATTEMPTS), Some("2"));
    assert_eq!(
        again.header(h::DLQ_ATTEMPTS),
        Some("4"),
        "the attempts add up"
    );
    assert!(again.header(h::DLQ_LAST_FAILED_AT) >= first.header(h::DLQ_LAST_FAILED_AT));
    assert_eq!(
        again.header(h::REPLAYED_FROM),
        Some(format!("{}/{}/{}", first.topic, first.partition, first.offset).as_str())
    );
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
