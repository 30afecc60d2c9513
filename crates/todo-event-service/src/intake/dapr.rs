//! The Dapr intake (`EVENT_SOURCE=dapr`): the sidecar subscribes to the task
//! topics and posts their records here in bulk (raw payloads), and they go
//! through the same pipeline as the Kafka intake's: decode, dead-letter what
//! can never be processed, apply idempotently, park what fails for a reason
//! of its own, notify.
//!
//! * `GET /dapr/subscribe`: the four task topics, raw payload, bulk
//!   (`DAPR_BULK_MAX_AWAIT_MS`), with
//!   Dapr's dead-letter topic as a backstop (the service writes its own dead
//!   letters, with the same headers as in Kafka mode, and then acknowledges).
//! * `POST /dapr/events`: one answer per entry: `SUCCESS` once its effect is
//!   committed (applied, parked or dead-lettered, webhooks included);
//!   `RETRY` while PostgreSQL or Redis is down (never a dead letter then);
//!   `DROP` only for an entry whose value cannot even be read, which Dapr
//!   then writes to its own dead-letter topic.
//!
//! Dapr does not say when a partition moves to another instance, so the
//! parked keys of a partition are read again from PostgreSQL before each
//! delivery of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use todo_dapr::subscribe::{self, BulkDelivery, BulkEntry, Status};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::pipeline::parking::{self, ParkingLot};
use crate::pipeline::Processor;
use crate::record::Record;

/// The route Dapr posts deliveries to.
pub const EVENTS_ROUTE: &str = "/dapr/events";

/// Settings of the Dapr intake.
pub struct DaprIntakeSettings {
    /// The pub/sub component.
    pub pubsub: String,
    /// The task topics (with any prefix).
    pub topics: Vec<String>,
    /// Dapr's own dead-letter topic (the backstop).
    pub dead_letter_topic: String,
    /// Bulk (how many records, how long a wait) or one record per request.
    pub delivery: subscribe::Delivery,
    /// How long an outage may hold a delivery before it is answered `RETRY`.
    pub outage_answer_after: Duration,
}

/// A partition's parking lot, loaded by the first delivery that needs it.
type LotCell = tokio::sync::OnceCell<Arc<ParkingLot>>;

/// Receives the sidecar's deliveries.
pub struct DaprIntake {
    processor: Arc<Processor>,
    settings: DaprIntakeSettings,
    /// One cell per partition, filled once: a partition's first delivery
    /// loads its lot while the others' deliveries go on.
    lots: Mutex<HashMap<(String, i32), Arc<LotCell>>>,
    stop: CancellationToken,
}

impl DaprIntake {
    /// An intake feeding `processor`; its retriers stop with `stop`.
    pub fn new(
        processor: Arc<Processor>,
        settings: DaprIntakeSettings,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            processor,
            settings,
            lots: Mutex::default(),
            stop,
        })
    }

    /// `GET /dapr/subscribe` and `POST /dapr/events`.
    pub fn router<S>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route("/dapr/subscribe", get(subscriptions))
            .route(EVENTS_ROUTE, post(deliver))
            .with_state(self.clone())
    }

    /// The parking lot of a partition: loaded (with its retrier started) the
    /// first time, refreshed from PostgreSQL every time.
    async fn lot(
        &self,
        topic: &str,
        partition: i32,
        cancel: &CancellationToken,
    ) -> Option<Arc<ParkingLot>> {
        let cell = self
            .lots
            .lock()
            .await
            .entry((topic.to_owned(), partition))
            .or_default()
            .clone();
        if let Some(lot) = cell.get() {
            return lot.refresh(cancel).await.ok().map(|()| lot.clone());
        }
        // NB: a failed load leaves the cell empty; the next delivery tries again.
        let lot = cell
            .get_or_try_init(|| async {
                let lot = ParkingLot::load(
                    self.processor.pool().clone(),
                    topic,
                    partition,
                    self.processor.outage_policy(),
                    cancel,
                )
                .await?;
                tokio::spawn(parking::run_retrier(
                    lot.clone(),
                    self.processor.clone(),
                    self.stop.child_token(),
                ));
                Ok::<_, crate::Cancelled>(lot)
            })
            .await
            .ok()?;
        Some(lot.clone())
    }

    /// Processes one partition's records (in offset order); true when every
    /// one was applied, parked or dead-lettered.
    async fn process(&self, records: &[Record]) -> bool {
        let Some(first) = records.first() else {
            return true;
        };
        // An outage holds the records until this fires; they are then
        // answered RETRY and delivered again (redelivery is harmless).
        let cancel = self.stop.child_token();
        let timer = {
            let cancel = cancel.clone();
            let after = self.settings.outage_answer_after;
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                cancel.cancel();
            })
        };
        let done = async {
            let lot = self.lot(&first.topic, first.partition, &cancel).await?;
            let notifications = self.processor.process(records, &lot, &cancel).await.ok()?;
            if let Some(notifier) = self.processor.notifier() {
                let (retry, _) = self.processor.retry_policy();
                parking::notify_or_park(notifier, &lot, &retry, &notifications, &cancel)
                    .await
                    .ok()?;
            }
            Some(())
        }
        .await;
        timer.abort();
        done.is_some()
    }
}

async fn subscriptions(State(intake): State<Arc<DaprIntake>>) -> Json<Value> {
    let s = &intake.settings;
    Json(Value::Array(
        s.topics
            .iter()
            .map(|t| {
                subscribe::subscription(
                    &s.pubsub,
                    t,
                    EVENTS_ROUTE,
                    &s.dead_letter_topic,
                    s.delivery,
                )
            })
            .collect(),
    ))
}

/// A delivered record: its offset, its entry id, the record.
type Entry = (i64, String, Record);

/// A bulk delivery, or a single CloudEvent (its metadata in the request's headers).
async fn deliver(
    State(intake): State<Arc<DaprIntake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let received = Instant::now();
    let (delivery, single) = match serde_json::from_value::<BulkDelivery>(body.clone()) {
        Ok(d) if !d.entries.is_empty() => (d, false),
        _ => (single_delivery(body, &headers), true),
    };
    // Per partition, in offset order; an unreadable entry is dropped to
    // Dapr's dead-letter topic.
    let mut statuses: Vec<(String, Status)> = Vec::with_capacity(delivery.entries.len());
    let mut partitions: BTreeMap<(String, i32), Vec<Entry>> = BTreeMap::new();
    for entry in &delivery.entries {
        match entry.record(delivery.topic.as_deref()) {
            Ok(d) => {
                let mut record = Record {
                    topic: d.topic,
                    partition: d.partition,
                    offset: d.offset,
                    key: d.key,
                    value: Some(d.value),
                    headers: d
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k, Some(v.into_bytes())))
                        .collect(),
                    timestamp_ms: d.timestamp_ms,
                    received,
                };
                if single {
                    name_avro_content_type(&mut record);
                }
                partitions
                    .entry((record.topic.clone(), record.partition))
                    .or_default()
                    .push((record.offset, entry.entry_id.clone(), record));
            }
            Err(e) => {
                tracing::error!(entry = %entry.entry_id, error = %e, "unreadable Dapr delivery; dropping it to Dapr's dead-letter topic");
                statuses.push((entry.entry_id.clone(), Status::Drop));
            }
        }
    }
    for (_, mut entries) in partitions {
        entries.sort_by_key(|(offset, _, _)| *offset);
        let records: Vec<Record> = entries.iter().map(|(_, _, r)| r.clone()).collect();
        let status = if intake.process(&records).await {
            Status::Success
        } else {
            Status::Retry
        };
        statuses.extend(entries.into_iter().map(|(_, id, _)| (id, status)));
    }
    if single {
        let status = statuses.first().map_or(Status::Success, |(_, s)| *s);
        return Json(serde_json::json!({ "status": status }));
    }
    Json(subscribe::bulk_answer(
        statuses.iter().map(|(id, s)| (id.as_str(), *s)),
    ))
}

/// A single delivery cannot carry the record's `content-type` header (the
/// HTTP request's own is the CloudEvent's), so an Avro record is known by
/// its bytes: Avro's single-object marker, which no JSON text starts with.
fn name_avro_content_type(record: &mut Record) {
    let avro = record
        .value
        .as_deref()
        .is_some_and(|v| v.starts_with(&todo_events::schema::SINGLE_OBJECT_MARKER));
    if avro && record.header(todo_events::headers::CONTENT_TYPE).is_none() {
        record.headers.push((
            todo_events::headers::CONTENT_TYPE.to_owned(),
            Some(todo_events::ContentType::Avro.as_str().as_bytes().to_vec()),
        ));
    }
}

/// A single CloudEvent delivery as a bulk delivery of one: Dapr sends the
/// record's metadata (its headers, `__key`, `__partition`...) as HTTP headers.
fn single_delivery(event: Value, headers: &HeaderMap) -> BulkDelivery {
    let topic = event
        .get("topic")
        .and_then(Value::as_str)
        .map(str::to_owned);
    use todo_events::headers::{CORRELATION_ID, EVENT_ID, EVENT_TYPE, EVENT_VERSION, TRACEPARENT};
    // NB: not `content-type`, which here is the CloudEvent's: an Avro
    // record is known by its bytes (`name_avro_content_type`).
    let own = [
        EVENT_TYPE,
        EVENT_VERSION,
        EVENT_ID,
        CORRELATION_ID,
        TRACEPARENT,
    ];
    let metadata = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("__") || own.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    BulkDelivery {
        topic,
        entries: vec![BulkEntry {
            entry_id: "single".into(),
            event,
            content_type: None,
            metadata,
        }],
    }
}
