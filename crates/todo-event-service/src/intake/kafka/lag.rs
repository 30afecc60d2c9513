//! Consumer lag per assigned partition, in records (high watermark minus
//! committed offset) and in seconds (the age of the oldest record not yet
//! processed: its Kafka timestamp, known to the partition task that holds it).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tokio_util::sync::CancellationToken;

use super::KafkaConsumer;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples lag every `every` until cancelled.
pub(crate) async fn sample(
    consumer: Weak<KafkaConsumer>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(c) = consumer.upgrade() else { return };
        match sample_once(c).await {
            Ok(lags) => {
                for l in lags {
                    crate::metrics::lag(&l.topic, l.partition, l.records);
                    // Unknown: records wait beyond what the task has read; the
                    // gauge keeps its last value until the task reads them.
                    if let Some(seconds) = l.seconds {
                        crate::metrics::lag_seconds(&l.topic, l.partition, seconds);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not sample consumer lag"),
        }
    }
}

/// The lag of one assigned partition.
#[derive(Debug)]
pub(crate) struct Lag {
    pub topic: String,
    pub partition: i32,
    /// High watermark minus committed offset.
    pub records: i64,
    /// Age of the oldest record not yet processed; `None` when not known.
    pub seconds: Option<f64>,
}

/// Lag of every assigned partition.
pub(crate) async fn sample_once(consumer: Arc<KafkaConsumer>) -> anyhow::Result<Vec<Lag>> {
    // NB: the committed-offset and watermark calls block; they run off the
    // runtime, the watermark queries side by side (one round trip each).
    let c = consumer.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let assignment = c.assignment()?;
        if assignment.count() == 0 {
            return Ok::<_, anyhow::Error>(Vec::new());
        }
        let committed = c.committed_offsets(assignment, CALL_TIMEOUT)?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect())
    })
    .await??;
    let queries = committed.into_iter().map(|(topic, partition, offset)| {
        let c = consumer.clone();
        tokio::task::spawn_blocking(move || {
            let (low, high) = c.fetch_watermarks(&topic, partition, CALL_TIMEOUT)?;
            let from = match offset {
                Offset::Offset(o) => o,
                _ => low,
            };
            let seconds = c
                .context()
                .progress(&topic, partition)
                .and_then(|p| p.lag_seconds(from, high, now_ms()));
            Ok::<_, anyhow::Error>(Lag {
                records: (high - from).max(0),
                seconds,
                topic,
                partition,
            })
        })
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(queries).await {
        out.push(r??);
    }
    Ok(out)
}

/// Marks "nothing" in [`Progress`]'s atomics.
const NONE: i64 = i64::MIN;

/// Where a partition task stands, shared with the lag sampler.
#[derive(Debug)]
pub(crate) struct Progress {
    /// Kafka timestamp (ms) of the first record of the oldest batch read and
    /// not finished (its webhooks included), or `NONE`.
    oldest_unfinished_ms: AtomicI64,
    /// The offset after the last record read, or `NONE` before the first read.
    next_offset: AtomicI64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            oldest_unfinished_ms: AtomicI64::new(NONE),
            next_offset: AtomicI64::new(NONE),
        }
    }
}

impl Progress {
    /// A batch ending before `next_offset` was read.
    pub(crate) fn read_up_to(&self, next_offset: i64) {
        self.next_offset.store(next_offset, Ordering::Relaxed);
    }

    /// The oldest record read and not finished has this timestamp (`None`:
    /// everything read is finished).
    pub(crate) fn oldest_unfinished(&self, timestamp_ms: Option<i64>) {
        self.oldest_unfinished_ms
            .store(timestamp_ms.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// The age in seconds of the oldest record not yet processed at `now_ms`,
    /// given the committed offset and the high watermark: 0 when everything up
    /// to the high watermark is read and finished; `None` when records wait
    /// that the task has not read yet (their age is known once it reads them;
    /// after a restart, the first is the record at the committed offset).
    pub(crate) fn lag_seconds(&self, committed: i64, high: i64, now_ms: i64) -> Option<f64> {
        let oldest = self.oldest_unfinished_ms.load(Ordering::Relaxed);
        if oldest != NONE {
            // A producer's clock ahead of ours is no negative age.
            return Some((now_ms - oldest).max(0) as f64 / 1000.0);
        }
        let position = match self.next_offset.load(Ordering::Relaxed) {
            NONE => committed,
            read => read,
        };
        (position >= high).then_some(0.0)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_read_to_its_high_watermark_with_nothing_in_hand_lags_zero_seconds() {
        let p = Progress::default();
        p.read_up_to(10);
        assert_eq!(p.lag_seconds(3, 10, 50_000), Some(0.0));
    }

    #[test]
    fn a_batch_in_hand_lags_by_the_age_of_its_first_record() {
        let p = Progress::default();
        p.read_up_to(10);
        p.oldest_unfinished(Some(40_000));
        assert_eq!(p.lag_seconds(3, 10, 52_500), Some(12.5));
        p.oldest_unfinished(None);
        assert_eq!(p.lag_seconds(3, 10, 52_500), Some(0.0));
    }

    #[test]
    fn records_not_read_yet_have_no_known_age() {
        let p = Progress::default();
        assert_eq!(
            p.lag_seconds(3, 10, 50_000),
            None,
            "nothing read since the start"
        );
        p.read_up_to(7);
        assert_eq!(p.lag_seconds(3, 10, 50_000), None, "more written since");
    }

    #[test]
    fn an_empty_or_committed_partition_lags_zero_before_the_first_read() {
        let p = Progress::default();
        assert_eq!(p.lag_seconds(0, 0, 50_000), Some(0.0));
        assert_eq!(p.lag_seconds(10, 10, 50_000), Some(0.0));
    }

    #[test]
    fn a_timestamp_from_the_future_is_no_negative_age() {
        let p = Progress::default();
        p.oldest_unfinished(Some(60_000));
        assert_eq!(p.lag_seconds(0, 1, 50_000), Some(0.0));
    }
}
