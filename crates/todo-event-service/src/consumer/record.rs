//! A record copied out of librdkafka's buffers, so it can cross awaits, be
//! retried and be dead-lettered with its original key, value and headers.

use std::time::Instant;

use rdkafka::message::{BorrowedMessage, Headers, Message};

/// One consumed record.
#[derive(Clone, Debug)]
pub struct Record {
    /// Topic as configured (with any prefix).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers in their original order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Kafka timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// When this service read it (for the processing-time histogram).
    pub received: Instant,
}

impl Record {
    /// Copies `m`.
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|hd| (hd.key.to_owned(), hd.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: m.timestamp().to_millis(),
            received: Instant::now(),
        }
    }

    /// The value of header `name` as UTF-8, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}
