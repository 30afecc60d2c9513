//! todoctl against the real broker: dead letters listed, replayed and
//! discarded, each action recorded in a fresh event database; the
//! schema gate on proposed files.

use std::time::Duration;

use clap::Parser;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use todo_events::{headers as h, EventType};
use todo_kafka::ReadRecord;
use todo_kafka::{KafkaArgs, TopicNames};
use todo_testkit::{create_topics, read_records, Stack};
use todoctl::dlq::{ActArgs, AuditArgs, DeadLetterId, DlqCommand, Filter, State};
use uuid::Uuid;

/// Writes a dead letter of `class` to the DLQ, as the event service would,
/// and returns the event id header it carries.
async fn dead_letter(stack: &Stack, names: &TopicNames, value: &[u8], class: &str) -> Uuid {
    let original = names.for_event(EventType::Created);
    dead_letter_from(stack, names, &original, value, class).await
}

/// [`dead_letter`] of a record read from `original`.
async fn dead_letter_from(
    stack: &Stack,
    names: &TopicNames,
    original: &str,
    value: &[u8],
    class: &str,
) -> Uuid {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_bootstrap)
        .create()
        .unwrap();
    let event_id = Uuid::new_v4().to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: h::CONTENT_TYPE,
            value: Some("application/json"),
        })
        .insert(Header {
            key: h::EVENT_ID,
            value: Some(event_id.as_str()),
        })
        .insert(Header {
            key: h::DLQ_ORIGINAL_TOPIC,
            value: Some(original),
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
    event_id.parse().unwrap()
}

/// Fresh topics and a fresh, migrated event database for one test.
struct DlqTest {
    stack: Stack,
    names: TopicNames,
    kafka: KafkaArgs,
    event_db: String,
    pool: PgPool,
}

impl DlqTest {
    async fn new() -> Self {
        let stack = Stack::from_env();
        let prefix = stack.unique_topic_prefix();
        let names = TopicNames::new(prefix.clone());
        create_topics(&stack, &names.all()).await.unwrap();
        let event_db = stack.fresh_database().await.unwrap();
        let pool = PgPool::connect(&event_db).await.unwrap();
        todo_event_service::store::migrations::MIGRATOR
            .run(&pool)
            .await
            .unwrap();
        let kafka = stack.kafka_args(&prefix);
        Self {
            stack,
            names,
            kafka,
            event_db,
            pool,
        }
    }

    async fn dead_letter(&self, class: &str) -> Uuid {
        let value = format!("{{\"class\": \"{class}\"}}");
        dead_letter(&self.stack, &self.names, value.as_bytes(), class).await
    }

    fn act(&self, filter: Filter, actor: &str, reason: &str) -> ActArgs {
        ActArgs {
            kafka: self.kafka.clone(),
            filter,
            audit: AuditArgs {
                reason: reason.into(),
                actor: Some(actor.into()),
            },
            event_database_url: self.event_db.clone(),
            dry_run: false,
        }
    }

    fn replay(&self, filter: Filter, all: bool) -> DlqCommand {
        DlqCommand::Replay {
            act: self.act(filter, "alice", "fixed in 1.4.2"),
            all,
        }
    }

    fn list(&self, state: State) -> DlqCommand {
        DlqCommand::List {
            kafka: self.kafka.clone(),
            filter: Filter::default(),
            state,
            event_database_url: Some(self.event_db.clone()),
        }
    }

    async fn run(&self, cmd: DlqCommand) -> anyhow::Result<String> {
        let mut out = Vec::new();
        todoctl::dlq::run(cmd, &mut out).await?;
        Ok(String::from_utf8(out).unwrap())
    }

    async fn history(&self) -> Vec<serde_json::Value> {
        let out = self
            .run(DlqCommand::History {
                event_database_url: self.event_db.clone(),
                limit: 100,
                json: true,
            })
            .await
            .unwrap();
        serde_json::from_str(&out).unwrap()
    }

    /// Every record of `topic` so far.
    async fn read(&self, topic: String) -> Vec<ReadRecord> {
        let cfg = self.kafka.client_config(&[]).unwrap();
        tokio::task::spawn_blocking(move || todo_kafka::read_to_end(&cfg, &topic))
            .await
            .unwrap()
            .unwrap()
    }

    /// The values republished to the original topic, in order.
    async fn replayed_values(&self) -> Vec<String> {
        self.read(self.names.for_event(EventType::Created))
            .await
            .iter()
            .map(|r| String::from_utf8(r.value.clone()).unwrap())
            .collect()
    }
}

fn class(c: &str) -> Filter {
    Filter {
        error_class: Some(c.into()),
        ..Filter::default()
    }
}

#[tokio::test]
async fn dead_letters_are_listed_with_their_reason_and_replayed_once_to_their_original_topic() {
    // Arrange
    let t = DlqTest::new().await;
    dead_letter(&t.stack, &t.names, b"{\"not\": \"an event\"}", "handler").await;
    dead_letter(&t.stack, &t.names, b"\x00\x01garbage", "decode").await;

    // Act 1: list, without the event database
    let listing = t
        .run(DlqCommand::List {
            kafka: t.kafka.clone(),
            filter: Filter::default(),
            state: State::All,
            event_database_url: None,
        })
        .await
        .unwrap();

    // Assert 1
    assert!(listing.contains("2 dead letters"), "{listing}");
    assert!(listing.contains("dlq.error_class=handler"), "{listing}");
    assert!(
        listing.contains("dlq.error_message=handler failed"),
        "{listing}"
    );

    // Act 2: replay only the handler failure, twice
    let first = t.run(t.replay(class("handler"), false)).await.unwrap();
    let second = t.run(t.replay(class("handler"), false)).await.unwrap();

    // Assert 2
    assert!(first.contains("replayed 1 dead letters"), "{first}");
    assert!(
        second.contains("replayed 0 dead letters; 1 already replayed or discarded"),
        "already replayed: {second}"
    );
    let back = read_records(
        &t.stack.kafka_bootstrap,
        &[t.names.for_event(EventType::Created)],
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
        .starts_with(&t.names.dlq()));
    assert!(
        back[0].header(h::DLQ_ERROR_CLASS).is_none()
            && back[0].header(h::DLQ_ERROR_MESSAGE).is_none(),
        "the old error is dropped"
    );
    // Where it first failed and after how many attempts travel with it, for
    // the dead letter of its next failure.
    let original = t.names.for_event(EventType::Created);
    assert_eq!(
        back[0].header(h::DLQ_ORIGINAL_TOPIC),
        Some(original.as_str())
    );
    assert_eq!(back[0].header(h::DLQ_ORIGINAL_PARTITION), Some("0"));
    assert_eq!(back[0].header(h::DLQ_ORIGINAL_OFFSET), Some("7"));
    assert_eq!(back[0].header(h::DLQ_ATTEMPTS), Some("5"));
    assert_eq!(back[0].header(h::CONTENT_TYPE), Some("application/json"));
    assert_eq!(
        t.history().await.len(),
        1,
        "a replay of nothing is no action"
    );
}

#[tokio::test]
async fn a_replay_and_a_discard_are_recorded_with_who_why_what_and_how_it_ended() {
    // Arrange
    let t = DlqTest::new().await;
    let a_id = t.dead_letter("a").await;
    let b_id = t.dead_letter("b").await;
    let dlq = t.read(t.names.dlq()).await;
    let b = dlq
        .iter()
        .find(|r| r.header(h::DLQ_ERROR_CLASS) == Some("b"))
        .unwrap();
    let b_ref = DeadLetterId {
        partition: b.partition,
        offset: b.offset,
    };

    // Act
    let replayed = t
        .run(DlqCommand::Replay {
            act: t.act(class("a"), "alice", "  handler fixed in 1.4.2 "),
            all: false,
        })
        .await
        .unwrap();
    let discarded = t
        .run(DlqCommand::Discard {
            act: t.act(
                Filter {
                    dead_letters: vec![b_ref],
                    ..Filter::default()
                },
                "bob",
                "test data, not a real task",
            ),
        })
        .await
        .unwrap();

    // Assert: the history, newest first
    assert!(replayed.contains("replayed 1 dead letters"), "{replayed}");
    assert!(
        discarded.contains("discarded 1 dead letters"),
        "{discarded}"
    );
    let history = t.history().await;
    assert_eq!(history.len(), 2, "{history:?}");
    let (discard, replay) = (&history[0], &history[1]);
    assert_eq!(discard["action"], "discard");
    assert_eq!(discard["actor"], "bob");
    assert_eq!(discard["reason"], "test data, not a real task");
    assert_eq!(discard["dead_letters"], 1);
    assert_eq!(discard["outcome"], "done");
    assert_eq!(
        discard["selection"],
        serde_json::json!({"dead_letters": [b_ref.to_string()], "all": false})
    );
    assert_eq!(replay["action"], "replay");
    assert_eq!(replay["actor"], "alice");
    assert_eq!(replay["reason"], "handler fixed in 1.4.2", "kept trimmed");
    assert_eq!(replay["dead_letters"], 1);
    assert_eq!(replay["outcome"], "done");
    assert_eq!(
        replay["selection"],
        serde_json::json!({"error_class": "a", "all": false})
    );
    // Each dead letter's disposition, with its event id.
    let dispositions = todo_audit::dlq_actions::dispositions(&t.pool, &t.names.dlq())
        .await
        .unwrap();
    let event_ids: Vec<_> = dispositions.values().map(|d| d.event_id).collect();
    assert_eq!(dispositions.len(), 2);
    assert!(event_ids.contains(&Some(a_id)) && event_ids.contains(&Some(b_id)));
    // The listing shows them, and --state picks by them.
    let all = t.run(t.list(State::All)).await.unwrap();
    assert!(
        all.contains("2 dead letters (0 pending, 1 replayed, 1 discarded)"),
        "{all}"
    );
    assert!(all.contains(&format!("replayed (action {})", replay["id"])));
    assert!(all.contains(&format!("discarded (action {})", discard["id"])));
    let pending = t.run(t.list(State::Pending)).await.unwrap();
    assert!(pending.contains("0 dead letters"), "{pending}");
    let only_discarded = t.run(t.list(State::Discarded)).await.unwrap();
    assert!(
        only_discarded.contains("1 dead letters"),
        "{only_discarded}"
    );
    assert!(
        only_discarded.contains("dlq.error_class=b"),
        "{only_discarded}"
    );
    // The text history names the same.
    let text = t
        .run(DlqCommand::History {
            event_database_url: t.event_db.clone(),
            limit: 1,
            json: false,
        })
        .await
        .unwrap();
    assert!(text.contains("bob") && text.contains("discard"), "{text}");
    assert!(!text.contains("alice"), "--limit 1: {text}");
    assert!(text.contains("1 actions"), "{text}");
}

#[tokio::test]
async fn a_replay_without_a_reason_is_refused_and_replays_nothing() {
    // Arrange
    let t = DlqTest::new().await;
    t.dead_letter("a").await;

    // Act
    let missing = todoctl::Cli::try_parse_from(["todoctl", "dlq", "replay", "--error-class", "a"]);
    let missing_discard = todoctl::Cli::try_parse_from(["todoctl", "dlq", "discard"]);
    let blank = t
        .run(DlqCommand::Replay {
            act: t.act(Filter::default(), "alice", "   "),
            all: false,
        })
        .await;

    // Assert
    for refused in [missing, missing_discard] {
        let e = refused.unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--reason <REASON>"), "{e}");
    }
    let e = blank.unwrap_err();
    assert!(e.to_string().starts_with("reason must not be blank"), "{e}");
    assert!(t.replayed_values().await.is_empty(), "nothing replayed");
    assert!(t.history().await.is_empty(), "nothing recorded");
}

#[tokio::test]
async fn the_database_refuses_a_blank_actor_or_reason_written_around_the_store() {
    let t = DlqTest::new().await;
    for (actor, reason) in [("alice", " \t "), ("", "fixed")] {
        let refused = sqlx::query(
            "INSERT INTO dlq_actions (action, actor, reason, selection, dead_letters, outcome)
             VALUES ('replay', $1, $2, '{}', 0, 'done')",
        )
        .bind(actor)
        .bind(reason)
        .execute(&t.pool)
        .await
        .unwrap_err();
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("23514"), "check_violation: {refused}");
    }
}

#[tokio::test]
async fn a_replay_of_one_error_class_then_another_replays_both() {
    // Arrange: the replay bookkeeping was a consumer group that a filtered
    // replay committed past the records it left out.
    let t = DlqTest::new().await;
    t.dead_letter("a").await;
    t.dead_letter("b").await;
    t.dead_letter("a").await;

    // Act
    let first = t.run(t.replay(class("a"), false)).await.unwrap();
    let second = t.run(t.replay(class("b"), false)).await.unwrap();

    // Assert
    assert!(first.contains("replayed 2 dead letters"), "{first}");
    assert!(second.contains("replayed 1 dead letters"), "{second}");
    let mut values = t.replayed_values().await;
    values.sort();
    assert_eq!(
        values,
        [
            r#"{"class": "a"}"#,
            r#"{"class": "a"}"#,
            r#"{"class": "b"}"#
        ]
    );
}

#[tokio::test]
async fn replay_all_replays_again_and_the_history_keeps_both_actions() {
    // Arrange
    let t = DlqTest::new().await;
    t.dead_letter("a").await;
    t.run(t.replay(Filter::default(), false)).await.unwrap();

    // Act
    let again = t.run(t.replay(Filter::default(), true)).await.unwrap();

    // Assert
    assert!(again.contains("replayed 1 dead letters"), "{again}");
    assert_eq!(t.replayed_values().await.len(), 2);
    let history = t.history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["selection"]["all"], true);
    assert_eq!(history[1]["selection"]["all"], false);
    let dispositions = todo_audit::dlq_actions::dispositions(&t.pool, &t.names.dlq())
        .await
        .unwrap();
    assert_eq!(dispositions.len(), 1);
    assert_eq!(
        serde_json::json!(dispositions.values().next().unwrap().action_id),
        history[0]["id"],
        "the dead letter's disposition is the latest action"
    );
}

#[tokio::test]
async fn a_discarded_dead_letter_is_not_replayed_by_default() {
    // Arrange
    let t = DlqTest::new().await;
    t.dead_letter("a").await;
    t.run(DlqCommand::Discard {
        act: t.act(Filter::default(), "bob", "duplicate of a replayed one"),
    })
    .await
    .unwrap();

    // Act
    let dry = t
        .run(DlqCommand::Replay {
            act: ActArgs {
                dry_run: true,
                ..t.act(Filter::default(), "alice", "retry")
            },
            all: false,
        })
        .await
        .unwrap();
    let out = t.run(t.replay(Filter::default(), false)).await.unwrap();

    // Assert
    assert!(dry.contains("0 dead letters would be replayed"), "{dry}");
    assert!(out.contains("replayed 0 dead letters"), "{out}");
    assert!(t.replayed_values().await.is_empty());
    assert_eq!(t.history().await.len(), 1, "only the discard");
}

#[tokio::test]
async fn a_replay_that_fails_is_recorded_as_failed_and_its_dead_letter_stays_pending() {
    // Arrange: a dead letter whose original topic cannot exist.
    let t = DlqTest::new().await;
    let nowhere = format!("{}no such topic!", t.names.dlq());
    dead_letter_from(&t.stack, &t.names, &nowhere, b"{}", "a").await;

    // Act
    let failed = t.run(t.replay(Filter::default(), false)).await;

    // Assert
    let e = format!("{:#}", failed.unwrap_err());
    assert!(e.contains("1 of 1 dead letters not replayed"), "{e}");
    assert!(e.contains("recorded as failed: action"), "{e}");
    let history = t.history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["dead_letters"], 0);
    let outcome = history[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("failed: 1 of 1 dead letters not replayed"),
        "{outcome}"
    );
    let pending = t.run(t.list(State::Pending)).await.unwrap();
    assert!(pending.contains("1 dead letters (1 pending"), "{pending}");
}

#[tokio::test]
async fn a_named_dead_letter_that_is_not_in_the_dlq_is_refused() {
    // Arrange
    let t = DlqTest::new().await;
    t.dead_letter("a").await;
    let absent = DeadLetterId {
        partition: 0,
        offset: 999,
    };

    // Act
    let refused = t
        .run(t.replay(
            Filter {
                dead_letters: vec![absent],
                ..Filter::default()
            },
            false,
        ))
        .await;

    // Assert
    let e = refused.unwrap_err().to_string();
    assert!(e.contains("has no dead letter 0:999"), "{e}");
    assert!(t.replayed_values().await.is_empty());
    assert!(t.history().await.is_empty());
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
    let event_db = stack.fresh_database().await.unwrap();
    config.database_url = todo_runtime::Secret::new(event_db.clone());
    config.kafka = stack.kafka_args(&prefix);
    config.consumer.client.group_id = format!("test-group-{}", todo_testkit::short_id());
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
            act: ActArgs {
                kafka: stack.kafka_args(&prefix),
                filter: Filter::default(),
                audit: AuditArgs {
                    reason: "see whether it fails again".into(),
                    actor: None,
                },
                event_database_url: event_db,
                dry_run: false,
            },
            all: false,
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
