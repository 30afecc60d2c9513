//! The dead-letter topic: the original key, value and headers, plus the
//! `dlq.*` headers that say where the record came from and why it failed.
//!
//! A dead letter carries each `dlq.*` header once however often its record
//! was replayed and failed again: the record's own `dlq.*` headers (kept by
//! `todoctl dlq replay`) are dropped and one fresh set written, which keeps
//! where and when it first failed and adds up the attempts. The `dlq.*`
//! headers stay within `DLQ_MAX_HEADER_BYTES`; the record's own headers are
//! kept as they came (a dead letter is replayable as it was).

use std::time::Duration;

use todo_events::headers::{
    self, DLQ_ATTEMPTS, DLQ_CONSUMER_GROUP, DLQ_ERROR_CLASS, DLQ_ERROR_MESSAGE,
    DLQ_FIRST_FAILED_AT, DLQ_LAST_FAILED_AT, DLQ_MAX_ERROR_MESSAGE_BYTES, DLQ_MAX_HEADER_BYTES,
    DLQ_ORIGINAL_OFFSET, DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_TIMESTAMP, DLQ_ORIGINAL_TOPIC,
};
use todo_kafka::{Outgoing, Producer};
use tokio_util::sync::CancellationToken;

use crate::record::Record;
use crate::retry::{sleep_or_cancel, Backoff};
use crate::Cancelled;

/// Why a record is dead-lettered.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Short stable class (`DecodeError::class`, `handler_failed`, `webhook_failed`).
    pub class: String,
    /// What went wrong.
    pub message: String,
    /// Processing attempts made.
    pub attempts: u32,
    /// When the first of them failed (ms since the epoch), if not now: a
    /// parked record's first failure.
    pub first_failed_at_ms: Option<i64>,
}

impl Failure {
    /// A failure after `attempts` attempts, the first of them now.
    pub fn new(class: impl Into<String>, message: impl Into<String>, attempts: u32) -> Self {
        Self {
            class: class.into(),
            message: message.into(),
            attempts,
            first_failed_at_ms: None,
        }
    }
}

/// Sends records to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: Producer,
    topic: String,
    group: String,
    outage: Backoff,
}

impl DeadLetters {
    /// Dead letters go to `topic`, marked as given up by `group`.
    pub fn new(producer: Producer, topic: String, group: String, outage_cap: Duration) -> Self {
        Self {
            producer,
            topic,
            group,
            outage: Backoff::new(Duration::from_millis(100), 2.0, outage_cap),
        }
    }

    /// Sends the dead letter and waits for Kafka's acknowledgement, retrying
    /// for as long as Kafka refuses (an outage is never a reason to drop it).
    pub async fn send(
        &self,
        record: &Record,
        failure: &Failure,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let headers = dead_letter_headers(record, failure, &self.group, now_ms);
            let out = Outgoing {
                topic: &self.topic,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref()))
                    .collect(),
            };
            let sent = tokio::select! {
                r = todo_kafka::send(&self.producer, out, Duration::from_secs(30)) => r,
                _ = cancel.cancelled() => return Err(Cancelled),
            };
            match sent {
                Ok(_) => {
                    tracing::warn!(
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        error_class = %failure.class, error = %failure.message, attempts = failure.attempts,
                        "record dead-lettered"
                    );
                    crate::metrics::dead_lettered(&failure.class);
                    return Ok(());
                }
                Err(e) => {
                    attempt += 1;
                    crate::metrics::outage_retry("kafka");
                    tracing::warn!(error = %e, attempt, "could not write to the dead-letter topic; retrying");
                    if !sleep_or_cancel(self.outage.delay(attempt), cancel).await {
                        return Err(Cancelled);
                    }
                }
            }
        }
    }
}

/// Most bytes of the consumer group and the error class in their headers
/// (Kafka's own limit on a topic name; classes are far shorter).
const MAX_NAME_BYTES: usize = 249;

/// Where a record was first consumed from, and its Kafka timestamp.
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
}

impl Origin {
    /// The `dlq.original_*` headers of a replayed record, when they are all
    /// there and well formed; otherwise the record itself.
    fn of(record: &Record) -> Self {
        let carried = (|| {
            let topic = record.header(DLQ_ORIGINAL_TOPIC)?;
            let valid_topic = !topic.is_empty()
                && topic.len() <= MAX_NAME_BYTES
                && topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            Some(Self {
                topic: valid_topic.then(|| topic.to_owned())?,
                partition: parse(record, DLQ_ORIGINAL_PARTITION).filter(|p| *p >= 0)?,
                offset: parse(record, DLQ_ORIGINAL_OFFSET).filter(|o| *o >= 0)?,
                timestamp_ms: parse(record, DLQ_ORIGINAL_TIMESTAMP),
            })
        })();
        carried.unwrap_or_else(|| Self {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
        })
    }
}

fn parse<T: std::str::FromStr>(record: &Record, name: &str) -> Option<T> {
    record.header(name)?.parse().ok()
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The headers of the dead letter of `record` failing at `now_ms` in
/// consumer group `group`: the record's own headers except any `dlq.*`, in
/// their order, then one of each `dlq.*` header. The first failure time and
/// the original topic, partition, offset and timestamp come from the record's
/// `dlq.*` headers when it was replayed from the DLQ; its attempts add to
/// theirs. The record's own headers are all kept.
pub fn dead_letter_headers(
    record: &Record,
    failure: &Failure,
    group: &str,
    now_ms: i64,
) -> Vec<(String, Option<Vec<u8>>)> {
    let origin = Origin::of(record);
    let attempts = parse::<u32>(record, DLQ_ATTEMPTS)
        .unwrap_or(0)
        .saturating_add(failure.attempts);
    let first_failed_at = parse::<i64>(record, DLQ_FIRST_FAILED_AT)
        .or(failure.first_failed_at_ms)
        .unwrap_or(now_ms);
    let failure_headers = [
        (DLQ_ORIGINAL_TOPIC, origin.topic),
        (DLQ_ORIGINAL_PARTITION, origin.partition.to_string()),
        (DLQ_ORIGINAL_OFFSET, origin.offset.to_string()),
        (
            DLQ_ORIGINAL_TIMESTAMP,
            origin
                .timestamp_ms
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        (DLQ_CONSUMER_GROUP, cut(group, MAX_NAME_BYTES).to_owned()),
        (
            DLQ_ERROR_CLASS,
            cut(&failure.class, MAX_NAME_BYTES).to_owned(),
        ),
        (
            DLQ_ERROR_MESSAGE,
            cut(&failure.message, DLQ_MAX_ERROR_MESSAGE_BYTES).to_owned(),
        ),
        (DLQ_ATTEMPTS, attempts.to_string()),
        (DLQ_FIRST_FAILED_AT, first_failed_at.to_string()),
        (DLQ_LAST_FAILED_AT, now_ms.to_string()),
    ];
    // NB: bounded whatever the input: every value above is cut or a number.
    debug_assert!(
        failure_headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            <= DLQ_MAX_HEADER_BYTES
    );
    let mut out: Vec<(String, Option<Vec<u8>>)> = record
        .headers
        .iter()
        .filter(|(k, _)| !headers::is_dlq(k))
        .cloned()
        .collect();
    out.extend(
        failure_headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Some(v.into_bytes()))),
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const GROUP: &str = "todo-event-service";

    fn record(headers: Vec<(&str, &str)>) -> Record {
        Record {
            topic: "todo.tasks.created".into(),
            partition: 2,
            offset: 77,
            key: Some(b"42".to_vec()),
            value: Some(b"{}".to_vec()),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Some(v.as_bytes().to_vec())))
                .collect(),
            timestamp_ms: Some(1_000),
            received: Instant::now(),
        }
    }

    fn failure(message: &str) -> Failure {
        Failure::new("handler_failed", message, 3)
    }

    fn get<'a>(hs: &'a [(String, Option<Vec<u8>>)], name: &str) -> Vec<&'a str> {
        hs.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| std::str::from_utf8(v.as_deref().unwrap()).unwrap())
            .collect()
    }

    fn total_bytes(hs: &[(String, Option<Vec<u8>>)]) -> usize {
        hs.iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum()
    }

    #[test]
    fn a_first_failure_names_the_record_and_keeps_its_own_headers() {
        let r = record(vec![
            ("content-type", "application/json"),
            ("event_id", "e1"),
        ]);

        let hs = dead_letter_headers(&r, &failure("boom"), GROUP, 5_000);

        assert_eq!(get(&hs, "content-type"), ["application/json"]);
        assert_eq!(get(&hs, "event_id"), ["e1"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_TOPIC), ["todo.tasks.created"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_PARTITION), ["2"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_OFFSET), ["77"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_TIMESTAMP), ["1000"]);
        assert_eq!(get(&hs, DLQ_CONSUMER_GROUP), [GROUP]);
        assert_eq!(get(&hs, DLQ_ERROR_CLASS), ["handler_failed"]);
        assert_eq!(get(&hs, DLQ_ERROR_MESSAGE), ["boom"]);
        assert_eq!(get(&hs, DLQ_ATTEMPTS), ["3"]);
        assert_eq!(get(&hs, DLQ_FIRST_FAILED_AT), ["5000"]);
        assert_eq!(get(&hs, DLQ_LAST_FAILED_AT), ["5000"]);
    }

    #[test]
    fn a_parked_record_keeps_the_time_of_its_first_failure_unless_a_replay_carries_an_earlier_one()
    {
        let parked = Failure {
            first_failed_at_ms: Some(1_500),
            ..failure("boom")
        };

        let fresh = dead_letter_headers(&record(vec![]), &parked, GROUP, 9_000);
        let replayed = dead_letter_headers(
            &record(vec![(DLQ_FIRST_FAILED_AT, "700")]),
            &parked,
            GROUP,
            9_000,
        );

        assert_eq!(get(&fresh, DLQ_FIRST_FAILED_AT), ["1500"]);
        assert_eq!(get(&fresh, DLQ_LAST_FAILED_AT), ["9000"]);
        assert_eq!(get(&replayed, DLQ_FIRST_FAILED_AT), ["700"]);
    }

    #[test]
    fn a_replayed_record_failing_again_has_one_of_each_failure_header_within_2_kib() {
        // A record replayed after earlier failures, carrying their headers
        // (some twice, one of them huge, one this version does not know).
        let old_message = "x".repeat(4_000);
        let r = record(vec![
            ("content-type", "application/json"),
            (DLQ_ORIGINAL_TOPIC, "todo.tasks.updated"),
            (DLQ_ORIGINAL_PARTITION, "0"),
            (DLQ_ORIGINAL_OFFSET, "5"),
            (DLQ_ORIGINAL_TIMESTAMP, "500"),
            (DLQ_ATTEMPTS, "3"),
            (DLQ_FIRST_FAILED_AT, "2000"),
            (DLQ_LAST_FAILED_AT, "3000"),
            (DLQ_ERROR_CLASS, "malformed_json"),
            (DLQ_ERROR_MESSAGE, &old_message),
            (DLQ_ERROR_MESSAGE, "older still"),
            (DLQ_CONSUMER_GROUP, "old-group"),
            ("dlq.from_the_future", "?"),
            ("replayed_from", "todo.tasks.dlq/0/9"),
        ]);

        let hs = dead_letter_headers(&r, &failure(&"é".repeat(400)), GROUP, 9_000);

        for name in todo_events::headers::ALL_DLQ {
            let n = get(&hs, name).len();
            assert_eq!(n, 1, "{name} appears {n} times");
        }
        assert!(get(&hs, "dlq.from_the_future").is_empty());
        assert!(
            total_bytes(&hs) <= DLQ_MAX_HEADER_BYTES,
            "{} bytes",
            total_bytes(&hs)
        );
        // Where and when it first failed; the attempts of both add up.
        assert_eq!(get(&hs, DLQ_ORIGINAL_TOPIC), ["todo.tasks.updated"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_PARTITION), ["0"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_OFFSET), ["5"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_TIMESTAMP), ["500"]);
        assert_eq!(get(&hs, DLQ_FIRST_FAILED_AT), ["2000"]);
        assert_eq!(get(&hs, DLQ_LAST_FAILED_AT), ["9000"]);
        assert_eq!(get(&hs, DLQ_ATTEMPTS), ["6"]);
        assert_eq!(get(&hs, DLQ_CONSUMER_GROUP), [GROUP]);
        // The new error, cut at a character boundary within 512 bytes.
        let message = get(&hs, DLQ_ERROR_MESSAGE)[0];
        assert_eq!(message, "é".repeat(256));
        assert_eq!(get(&hs, "replayed_from"), ["todo.tasks.dlq/0/9"]);
        assert_eq!(get(&hs, "content-type"), ["application/json"]);
    }

    #[test]
    fn failing_again_and_again_adds_no_header() {
        let mut r = record(vec![("content-type", "application/json")]);
        let mut sizes = Vec::new();
        for now in [1_000, 2_000, 3_000] {
            let hs = dead_letter_headers(&r, &failure("boom"), GROUP, now);
            sizes.push((hs.len(), total_bytes(&hs)));
            r.headers = hs;
        }
        assert_eq!(get(&r.headers, DLQ_ATTEMPTS), ["9"]);
        assert_eq!(get(&r.headers, DLQ_FIRST_FAILED_AT), ["1000"]);
        assert_eq!(sizes[0], sizes[2], "the same headers, the same size");
    }

    #[test]
    fn malformed_provenance_headers_are_replaced_by_the_record_itself() {
        let r = record(vec![
            (DLQ_ORIGINAL_TOPIC, "no spaces allowed"),
            (DLQ_ORIGINAL_PARTITION, "0"),
            (DLQ_ORIGINAL_OFFSET, "5"),
            (DLQ_ATTEMPTS, "lots"),
            (DLQ_FIRST_FAILED_AT, "yesterday"),
        ]);

        let hs = dead_letter_headers(&r, &failure("boom"), GROUP, 9_000);

        assert_eq!(get(&hs, DLQ_ORIGINAL_TOPIC), ["todo.tasks.created"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_PARTITION), ["2"]);
        assert_eq!(get(&hs, DLQ_ORIGINAL_OFFSET), ["77"]);
        assert_eq!(get(&hs, DLQ_ATTEMPTS), ["3"]);
        assert_eq!(get(&hs, DLQ_FIRST_FAILED_AT), ["9000"]);
    }

    #[test]
    fn own_headers_are_kept_whole_and_the_failure_headers_stay_within_the_bound() {
        let big = "v".repeat(1_500);
        let r = record(vec![
            ("content-type", "application/json"),
            ("big-1", &big),
            ("big-2", &big),
            ("event_id", "e1"),
        ]);

        let hs = dead_letter_headers(&r, &failure(&"m".repeat(10_000)), &"g".repeat(1_000), 9_000);

        assert_eq!(
            get(&hs, "big-1"),
            [big.as_str()],
            "nothing of the record is lost"
        );
        assert_eq!(get(&hs, "big-2"), [big.as_str()]);
        assert_eq!(get(&hs, "content-type"), ["application/json"]);
        assert_eq!(get(&hs, "event_id"), ["e1"]);
        let failure_headers: Vec<_> = hs
            .iter()
            .filter(|(k, _)| headers::is_dlq(k))
            .cloned()
            .collect();
        assert!(
            total_bytes(&failure_headers) <= DLQ_MAX_HEADER_BYTES,
            "{} bytes",
            total_bytes(&failure_headers)
        );
        assert_eq!(
            get(&hs, DLQ_ERROR_MESSAGE)[0].len(),
            DLQ_MAX_ERROR_MESSAGE_BYTES
        );
    }
}
