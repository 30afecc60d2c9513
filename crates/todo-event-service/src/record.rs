//! A record as every layer sees it, whichever intake read it: its bytes
//! copied out of the client's buffers, so it can cross awaits, be retried and
//! be dead-lettered with its original key, value and headers.

use std::time::Instant;

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
    /// The value of header `name` as UTF-8, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}
