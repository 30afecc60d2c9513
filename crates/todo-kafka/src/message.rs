//! Records in and out of the client's types: reading a record's headers, and
//! producing a record given as plain bytes, so that callers need no client
//! type of their own.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;

/// A record's headers in their order, values as UTF-8 (lossy; an absent value
/// is empty). For display and tests: the consumer keeps the raw bytes.
pub fn headers_as_strings<M: Message>(m: &M) -> Vec<(String, String)> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|hd| {
                    (
                        hd.key.to_owned(),
                        String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A record to produce, borrowed: where it goes, its key, value and headers
/// (in order; a header may have no value).
pub struct Outgoing<'a> {
    /// Destination topic (as named on the broker).
    pub topic: &'a str,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes.
    pub value: Option<&'a [u8]>,
    /// Headers in order.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// Produces `record` and waits for the broker's acknowledgement (or
/// `timeout` in the producer's queue). Records sent by concurrent calls keep
/// their order per partition.
pub async fn send<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    record: Outgoing<'_>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in record.headers {
        headers = headers.insert(Header { key, value });
    }
    let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(record.topic).headers(headers);
    if let Some(k) = record.key {
        fr = fr.key(k);
    }
    if let Some(v) = record.value {
        fr = fr.payload(v);
    }
    producer
        .send(fr, timeout)
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}
