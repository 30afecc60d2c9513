//! Every metric the event service exports, named once, with its help text.

use std::time::Instant;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::PrometheusHandle;

/// Events processed (first time or as a duplicate), by event type.
pub const EVENTS_CONSUMED_TOTAL: &str = "events_consumed_total";
/// Redelivered events that changed nothing.
pub const EVENTS_DUPLICATE_TOTAL: &str = "events_duplicate_total";
/// Seconds from reading an event off its partition to its effects being committed.
pub const EVENT_PROCESSING_DURATION_SECONDS: &str = "event_processing_duration_seconds";
/// Seconds from a record's Kafka timestamp (the producer's send) to this service reading it.
pub const EVENT_DELIVERY_DURATION_SECONDS: &str = "event_delivery_duration_seconds";
/// High watermark minus committed offset, per topic and partition.
pub const CONSUMER_LAG: &str = "consumer_lag";
/// Age of the oldest record not yet processed, per topic and partition (0 when caught up).
pub const CONSUMER_LAG_SECONDS: &str = "consumer_lag_seconds";
/// Records sent to the dead-letter topic, by error class.
pub const EVENTS_DEAD_LETTERED_TOTAL: &str = "events_dead_lettered_total";
/// Retries of failed handlers, by handler.
pub const EVENT_HANDLER_RETRIES_TOTAL: &str = "event_handler_retries_total";
/// Attempts that failed because a dependency was down, by dependency.
pub const DEPENDENCY_OUTAGE_RETRIES_TOTAL: &str = "dependency_outage_retries_total";
/// Webhook notifications delivered.
pub const WEBHOOK_NOTIFICATIONS_TOTAL: &str = "webhook_notifications_total";
/// Partitions this instance is processing.
pub const ASSIGNED_PARTITIONS: &str = "consumer_assigned_partitions";
/// Keys with parked events, per topic and partition.
pub const PARKED_KEYS: &str = "parked_keys";
/// How long the oldest parked event has waited, per topic and partition (0 when none).
pub const OLDEST_PARKED_AGE_SECONDS: &str = "oldest_parked_age_seconds";
/// Events parked, by cause (the error class, or `behind` an earlier one of its key).
pub const EVENTS_PARKED_TOTAL: &str = "events_parked_total";
/// Parked events that left the lot, by outcome (`applied`, `dead_lettered`).
pub const EVENTS_UNPARKED_TOTAL: &str = "events_unparked_total";

/// Installs the process's Prometheus recorder (once, in `todo_runtime`; it
/// may be shared with another service in the process) and describes our
/// metrics (describing again is harmless).
pub fn install() -> PrometheusHandle {
    let handle = todo_runtime::install_metrics();
    describe_counter!(EVENTS_CONSUMED_TOTAL, "Events processed, by event type");
    describe_counter!(
        EVENTS_DUPLICATE_TOTAL,
        "Redelivered events that changed nothing"
    );
    describe_histogram!(
        EVENT_PROCESSING_DURATION_SECONDS,
        Unit::Seconds,
        "Time from reading an event to committing its effects"
    );
    describe_histogram!(
        EVENT_DELIVERY_DURATION_SECONDS,
        Unit::Seconds,
        "Time from an event's Kafka timestamp (its producer's send) to reading it"
    );
    describe_gauge!(
        CONSUMER_LAG,
        "High watermark minus committed offset, per topic and partition"
    );
    describe_gauge!(
        CONSUMER_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest record not yet processed, per topic and partition (0 when caught up)"
    );
    describe_counter!(
        EVENTS_DEAD_LETTERED_TOTAL,
        "Records sent to the dead-letter topic, by error class"
    );
    describe_counter!(
        EVENT_HANDLER_RETRIES_TOTAL,
        "Retries of failed handlers, by handler"
    );
    describe_counter!(
        DEPENDENCY_OUTAGE_RETRIES_TOTAL,
        "Attempts that failed because a dependency was down"
    );
    describe_counter!(
        WEBHOOK_NOTIFICATIONS_TOTAL,
        "Webhook notifications delivered"
    );
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        "Partitions this instance is processing"
    );
    describe_gauge!(
        PARKED_KEYS,
        "Keys with parked events, per topic and partition"
    );
    describe_gauge!(
        OLDEST_PARKED_AGE_SECONDS,
        Unit::Seconds,
        "How long the oldest parked event has waited, per topic and partition (0 when none)"
    );
    describe_counter!(
        EVENTS_PARKED_TOTAL,
        "Events parked, by cause (error class, or behind an earlier event of the key)"
    );
    describe_counter!(
        EVENTS_UNPARKED_TOTAL,
        "Parked events that left the lot, by outcome"
    );
    todo_runtime::http::describe_metrics();
    handle
}

pub(crate) fn consumed(event_type: &'static str, n: u64) {
    counter!(EVENTS_CONSUMED_TOTAL, "event_type" => event_type).increment(n);
}

pub(crate) fn duplicates(n: u64) {
    counter!(EVENTS_DUPLICATE_TOTAL).increment(n);
}

/// Records the processing time of a batch's events, each read at one of
/// `received` (the histogram is looked up and the clock read once a batch).
pub(crate) fn processing_times(received: impl IntoIterator<Item = Instant>) {
    let histogram = histogram!(EVENT_PROCESSING_DURATION_SECONDS);
    let now = Instant::now();
    for at in received {
        histogram.record(now.saturating_duration_since(at).as_secs_f64());
    }
}

/// Records the delivery time of a batch's records, each a pair of its
/// producer's timestamp (ms since the epoch) and when it was read. Clocks
/// of different hosts may disagree: a negative delay counts as 0.
pub(crate) fn delivery_times(records: impl IntoIterator<Item = (i64, Instant)>) {
    let histogram = histogram!(EVENT_DELIVERY_DURATION_SECONDS);
    let now = Instant::now();
    let now_ms = chrono::Utc::now().timestamp_millis() as f64;
    for (timestamp_ms, read_at) in records {
        let read_ms = now_ms - now.saturating_duration_since(read_at).as_secs_f64() * 1_000.0;
        histogram.record(((read_ms - timestamp_ms as f64) / 1_000.0).max(0.0));
    }
}

pub(crate) fn lag(topic: &str, partition: i32, lag: i64) {
    gauge!(CONSUMER_LAG, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag.max(0) as f64);
}

pub(crate) fn lag_seconds(topic: &str, partition: i32, seconds: f64) {
    gauge!(CONSUMER_LAG_SECONDS, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(seconds.max(0.0));
}

pub(crate) fn dead_lettered(error_class: &str) {
    counter!(EVENTS_DEAD_LETTERED_TOTAL, "error_class" => error_class.to_owned()).increment(1);
}

pub(crate) fn handler_retry(handler: &'static str) {
    counter!(EVENT_HANDLER_RETRIES_TOTAL, "handler" => handler).increment(1);
}

pub(crate) fn outage_retry(dependency: &'static str) {
    counter!(DEPENDENCY_OUTAGE_RETRIES_TOTAL, "dependency" => dependency).increment(1);
}

pub(crate) fn webhook_sent() {
    counter!(WEBHOOK_NOTIFICATIONS_TOTAL).increment(1);
}

pub(crate) fn assigned_partitions(n: usize) {
    gauge!(ASSIGNED_PARTITIONS).set(n as f64);
}

pub(crate) fn parked_keys(topic: &str, partition: i32, keys: usize, oldest_age_s: f64) {
    let labels = [
        ("topic", topic.to_owned()),
        ("partition", partition.to_string()),
    ];
    gauge!(PARKED_KEYS, &labels).set(keys as f64);
    gauge!(OLDEST_PARKED_AGE_SECONDS, &labels).set(oldest_age_s.max(0.0));
}

pub(crate) fn parked(cause: &str) {
    counter!(EVENTS_PARKED_TOTAL, "cause" => cause.to_owned()).increment(1);
}

pub(crate) fn unparked(outcome: &'static str) {
    counter!(EVENTS_UNPARKED_TOTAL, "outcome" => outcome).increment(1);
}
