//! Reading records for people and tools.

use rdkafka::message::{Headers, Message};

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
