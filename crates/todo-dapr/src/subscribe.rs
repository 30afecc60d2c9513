//! The subscriber's side: the subscriptions served on `GET /dapr/subscribe`,
//! the bulk deliveries of raw records, and the per-entry answers.
//!
//! With `rawPayload` and bulk subscribe, daprd 1.14 posts
//! `{"id","type","topic","pubsubname","metadata","entries":[{"entryId","event","contentType","metadata"}]}`
//! where `event` is the record's value in base64 and each entry's metadata
//! holds the record's headers and the Kafka component's `__key`, `__topic`,
//! `__partition`, `__offset` and `__timestamp`. A single (non-bulk) delivery
//! is a CloudEvent whose `data_base64` holds the value.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Metadata keys the Kafka component adds to each delivered record.
pub const KEY: &str = "__key";
/// The record's topic.
pub const TOPIC: &str = "__topic";
/// The record's partition.
pub const PARTITION: &str = "__partition";
/// The record's offset.
pub const OFFSET: &str = "__offset";
/// The record's timestamp (ms since the epoch).
pub const TIMESTAMP: &str = "__timestamp";

/// How a subscription's records are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Up to `max_messages` records per request, a partition's records
    /// waiting up to `max_await_ms` for more.
    Bulk {
        /// Most records per delivery.
        max_messages: usize,
        /// Longest wait for more, in ms.
        max_await_ms: u64,
    },
    /// One record per request (a CloudEvent), each partition's in order.
    Single,
}

/// One programmatic subscription: raw payloads, delivered to `route` as
/// `delivery` says, with Dapr's own dead-letter topic as the backstop.
pub fn subscription(
    pubsub: &str,
    topic: &str,
    route: &str,
    dead_letter_topic: &str,
    delivery: Delivery,
) -> Value {
    let mut s = json!({
        "pubsubname": pubsub,
        "topic": topic,
        "route": route,
        "metadata": { "rawPayload": "true" },
        "deadLetterTopic": dead_letter_topic,
    });
    if let Delivery::Bulk {
        max_messages,
        max_await_ms,
    } = delivery
    {
        s["bulkSubscribe"] = json!({
            "enabled": true,
            "maxMessagesCount": max_messages,
            "maxAwaitDurationMs": max_await_ms,
        });
    }
    s
}

/// A bulk delivery.
#[derive(Deserialize, Debug)]
pub struct BulkDelivery {
    /// The topic, when the envelope names it.
    #[serde(default)]
    pub topic: Option<String>,
    /// The records.
    #[serde(default)]
    pub entries: Vec<BulkEntry>,
}

/// One delivered record.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct BulkEntry {
    /// Its id in this delivery, for the answer.
    pub entry_id: String,
    /// The value: base64 (raw payload), or a CloudEvent object.
    pub event: Value,
    /// The value's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Record headers and the component's `__*` keys.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A record rebuilt from a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Topic.
    pub topic: String,
    /// Partition (-1 when the delivery does not say).
    pub partition: i32,
    /// Offset (-1 when the delivery does not say).
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value bytes, as on the topic.
    pub value: Vec<u8>,
    /// Record headers (the metadata without the component's `__*` keys), sorted by name.
    pub headers: Vec<(String, String)>,
    /// Kafka timestamp, ms.
    pub timestamp_ms: Option<i64>,
}

impl BulkEntry {
    /// The record this entry carries; `Err` when its value cannot be read.
    pub fn record(&self, default_topic: Option<&str>) -> Result<Delivered, String> {
        let value = payload(&self.event, self.content_type.as_deref())?;
        let m = &self.metadata;
        let mut headers: Vec<(String, String)> = m
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.sort();
        Ok(Delivered {
            topic: m
                .get(TOPIC)
                .map(String::as_str)
                .or(default_topic)
                .unwrap_or_default()
                .to_owned(),
            partition: m.get(PARTITION).and_then(|p| p.parse().ok()).unwrap_or(-1),
            offset: m.get(OFFSET).and_then(|o| o.parse().ok()).unwrap_or(-1),
            key: m.get(KEY).map(|k| k.clone().into_bytes()),
            value,
            headers,
            timestamp_ms: m.get(TIMESTAMP).and_then(|t| t.parse().ok()),
        })
    }
}

/// The bytes of a delivered value: base64 text (raw payload), or a CloudEvent
/// with `data_base64` or `data`.
pub fn payload(event: &Value, content_type: Option<&str>) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match event {
        Value::String(s) if content_type.is_none_or(|c| !c.contains("json")) => b64
            .decode(s)
            .map_err(|e| format!("the delivered value is not base64: {e}")),
        Value::String(s) => Ok(s.clone().into_bytes()),
        Value::Object(ce) => match (ce.get("data_base64"), ce.get("data")) {
            (Some(Value::String(d)), _) => b64
                .decode(d)
                .map_err(|e| format!("data_base64 is not base64: {e}")),
            (_, Some(Value::String(d))) => Ok(d.clone().into_bytes()),
            (_, Some(d)) => Ok(d.to_string().into_bytes()),
            _ => Err("the CloudEvent has neither data nor data_base64".into()),
        },
        other => Ok(other.to_string().into_bytes()),
    }
}

/// What the subscriber answers for one entry.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Processed (applied, parked or dead-lettered by the subscriber).
    Success,
    /// Not processed now (a dependency is down): deliver again.
    Retry,
    /// Never deliver again (Dapr writes it to its dead-letter topic).
    Drop,
}

/// The answer to a bulk delivery.
pub fn bulk_answer<'a>(statuses: impl IntoIterator<Item = (&'a str, Status)>) -> Value {
    let statuses: Vec<Value> = statuses
        .into_iter()
        .map(|(id, s)| json!({ "entryId": id, "status": s }))
        .collect();
    json!({ "statuses": statuses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_subscription_asks_for_bulk_and_a_single_one_does_not() {
        let bulk = subscription(
            "p",
            "t",
            "/r",
            "dlq",
            Delivery::Bulk {
                max_messages: 500,
                max_await_ms: 100,
            },
        );
        let single = subscription("p", "t", "/r", "dlq", Delivery::Single);

        assert_eq!(bulk["bulkSubscribe"]["enabled"], json!(true));
        assert_eq!(bulk["bulkSubscribe"]["maxMessagesCount"], json!(500));
        assert_eq!(bulk["bulkSubscribe"]["maxAwaitDurationMs"], json!(100));
        assert!(single.get("bulkSubscribe").is_none(), "{single}");
        assert_eq!(single["metadata"]["rawPayload"], json!("true"));
        assert_eq!(single["deadLetterTopic"], json!("dlq"));
    }

    #[test]
    fn a_raw_bulk_entry_gives_back_the_record_with_its_headers_and_position() {
        let delivery: BulkDelivery = serde_json::from_value(json!({
            "id": "x", "topic": "todo.tasks.created", "pubsubname": "kafka-pubsub",
            "type": "com.dapr.event.sent.bulk", "metadata": {},
            "entries": [{
                "entryId": "e1", "event": "eyJhIjoxfQ==", "contentType": "application/octet-stream",
                "metadata": {"__key": "42", "__topic": "p.todo.tasks.created", "__partition": "2",
                             "__offset": "17", "__timestamp": "1700000000000",
                             "content-type": "application/json", "event_type": "task.created"}
            }]
        }))
        .unwrap();

        let r = delivery.entries[0]
            .record(delivery.topic.as_deref())
            .unwrap();

        assert_eq!(r.value, br#"{"a":1}"#);
        assert_eq!(r.topic, "p.todo.tasks.created");
        assert_eq!((r.partition, r.offset), (2, 17));
        assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(r.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(
            r.headers,
            [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("event_type".to_owned(), "task.created".to_owned())
            ]
        );
    }

    #[test]
    fn a_cloud_event_gives_its_data_and_bad_base64_is_an_error() {
        let ce = json!({"id": "1", "data_base64": "AAE="});
        assert_eq!(payload(&ce, None).unwrap(), [0, 1]);
        let ce = json!({"id": "1", "data": {"a": 1}});
        assert_eq!(payload(&ce, None).unwrap(), br#"{"a":1}"#);
        assert!(payload(&json!("%%%"), Some("application/octet-stream")).is_err());
    }

    #[test]
    fn the_bulk_answer_names_each_entry() {
        let a = bulk_answer([("e1", Status::Success), ("e2", Status::Retry)]);
        assert_eq!(
            a,
            json!({"statuses": [{"entryId": "e1", "status": "SUCCESS"}, {"entryId": "e2", "status": "RETRY"}]})
        );
    }
}
