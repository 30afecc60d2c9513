//! Every metric the backend exports, named once, with its help text.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::PrometheusHandle;

/// Events acknowledged by Kafka, by event type.
pub const EVENTS_PUBLISHED_TOTAL: &str = "events_published_total";
/// Failed publish attempts (each is retried).
pub const EVENTS_PUBLISHED_FAILURES_TOTAL: &str = "events_published_failures_total";
/// Seconds from handing a batch to the producer to each event's acknowledgement.
pub const EVENT_PUBLISH_DURATION_SECONDS: &str = "event_publish_duration_seconds";
/// Seconds from an event's write (its outbox row's `created_at`) to the relay reading it.
pub const OUTBOX_RELAY_PICKUP_SECONDS: &str = "outbox_relay_pickup_seconds";
/// Outbox rows not yet published.
pub const OUTBOX_DEPTH: &str = "outbox_depth";
/// Age of the oldest unpublished outbox row.
pub const OUTBOX_OLDEST_UNPUBLISHED_AGE_SECONDS: &str = "outbox_oldest_unpublished_age_seconds";
/// Task writes per statement and commit (group commit), by `op`.
pub const TASK_WRITE_BATCH_SIZE: &str = "task_write_batch_size";
/// Task reads per statement: the reads that changes make first, batched the
/// same way (`op="read"`).
pub const TASK_READ_BATCH_SIZE: &str = "task_read_batch_size";
/// Changes that looked their task up among the tasks this instance wrote
/// last, by `result`: hit (no read), miss (read first), stale (the write did
/// not apply; read again).
pub const TASK_CACHE_LOOKUPS_TOTAL: &str = "task_cache_lookups_total";
/// 1 while this process is the active relay.
pub const OUTBOX_RELAY_ACTIVE: &str = "outbox_relay_active";

/// Installs the process's Prometheus recorder (once) and describes our metrics.
pub fn install() -> PrometheusHandle {
    let handle = todo_runtime::install_metrics();
    describe_counter!(
        EVENTS_PUBLISHED_TOTAL,
        "Events acknowledged by Kafka, by event type"
    );
    describe_counter!(
        EVENTS_PUBLISHED_FAILURES_TOTAL,
        "Failed event publish attempts (retried)"
    );
    describe_histogram!(
        EVENT_PUBLISH_DURATION_SECONDS,
        Unit::Seconds,
        "Publish latency: send to acknowledgement"
    );
    describe_histogram!(
        OUTBOX_RELAY_PICKUP_SECONDS,
        Unit::Seconds,
        "Relay pickup: an event's write to the relay reading its outbox row"
    );
    describe_gauge!(OUTBOX_DEPTH, "Outbox rows not yet published");
    describe_gauge!(
        OUTBOX_OLDEST_UNPUBLISHED_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest unpublished outbox row"
    );
    describe_gauge!(
        OUTBOX_RELAY_ACTIVE,
        "1 while this process is the active outbox relay"
    );
    describe_histogram!(
        TASK_WRITE_BATCH_SIZE,
        Unit::Count,
        "Task writes per statement and commit (group commit), by op: create, change, delete"
    );
    describe_histogram!(
        TASK_READ_BATCH_SIZE,
        Unit::Count,
        "Task reads per statement: the reads that update, complete and delete make first, batched the same way"
    );
    describe_counter!(
        TASK_CACHE_LOOKUPS_TOTAL,
        "Changes that looked their task up among the tasks this instance wrote last, by result: hit (no read first), miss (read first), stale (the write did not apply; read again)"
    );
    todo_runtime::http::describe_metrics();
    handle
}

/// `count` events of `event_type`, each acknowledged `elapsed` after its batch was sent.
pub(crate) fn published(event_type: &str, count: usize, elapsed: Duration) {
    counter!(EVENTS_PUBLISHED_TOTAL, "event_type" => event_type.to_owned()).increment(count as u64);
    histogram!(EVENT_PUBLISH_DURATION_SECONDS).record_many(elapsed.as_secs_f64(), count);
}

/// Records how long each of a batch's outbox rows waited, from its write to
/// the relay's read (the histogram is looked up once a batch).
pub(crate) fn picked_up(waited_s: impl IntoIterator<Item = f64>) {
    let histogram = histogram!(OUTBOX_RELAY_PICKUP_SECONDS);
    for waited in waited_s {
        histogram.record(waited.max(0.0));
    }
}

pub(crate) fn publish_failed(event_type: &str) {
    counter!(EVENTS_PUBLISHED_FAILURES_TOTAL, "event_type" => event_type.to_owned()).increment(1);
}

/// One batched statement of `size` items, in `metric` (`TASK_WRITE_BATCH_SIZE`
/// or `TASK_READ_BATCH_SIZE`).
pub(crate) fn batch_size(metric: &'static str, op: &'static str, size: usize) {
    histogram!(metric, "op" => op).record(size as f64);
}

pub(crate) fn task_cache_lookup(result: &'static str) {
    counter!(TASK_CACHE_LOOKUPS_TOTAL, "result" => result).increment(1);
}

pub(crate) fn relay_active(active: bool) {
    gauge!(OUTBOX_RELAY_ACTIVE).set(if active { 1.0 } else { 0.0 });
}

pub(crate) fn outbox(depth: i64, oldest_age_seconds: f64) {
    gauge!(OUTBOX_DEPTH).set(depth as f64);
    gauge!(OUTBOX_OLDEST_UNPUBLISHED_AGE_SECONDS).set(oldest_age_seconds);
}

/// Samples the outbox gauges every `every` until cancelled.
pub async fn sample_outbox(
    pool: sqlx::PgPool,
    every: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Ok(b) = todo_outbox::backlog::backlog(&pool).await {
            outbox(b.depth, b.oldest_age_seconds);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
