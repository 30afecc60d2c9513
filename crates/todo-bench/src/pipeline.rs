//! End-to-end figures from the timestamps the pipeline keeps: the outbox's
//! `created_at` (written in the API transaction), `published_at` (set by the
//! relay once Kafka acknowledged the batch) and the audit log's `processed_at`
//! (the event service's processing transaction). The two tables live in two
//! databases, so both are read and joined here by `event_id`. A run's events
//! are the outbox rows with its correlation id, above the ids seen at its start.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;
use crate::stats::{self, LatencySummary};

/// Where a run starts in both databases.
#[derive(Clone, Debug)]
pub struct RunMarks {
    /// The correlation id of every request of the run.
    pub correlation_id: Uuid,
    /// Largest outbox id before the run.
    pub outbox_after_id: i64,
    /// Largest audit log id before the run.
    pub audit_after_id: i64,
    /// The database clock at the start (both databases share one server).
    pub t0: DateTime<Utc>,
}

/// Records where the run starts.
pub async fn mark(backend: &PgPool, events: &PgPool, correlation_id: Uuid) -> Result<RunMarks> {
    let outbox_after_id = todo_outbox::read::last_id(backend).await?;
    let audit_after_id = todo_audit::log::last_row_id(events).await?;
    let t0: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(backend)
        .await?;
    Ok(RunMarks {
        correlation_id,
        outbox_after_id,
        audit_after_id,
        t0,
    })
}

/// (events written to the outbox, of those published, events in the audit log).
pub async fn counts(backend: &PgPool, events: &PgPool, m: &RunMarks) -> Result<(i64, i64, i64)> {
    let (produced, published) =
        todo_outbox::read::written_and_published(backend, m.outbox_after_id, m.correlation_id)
            .await?;
    let processed =
        todo_audit::log::count_after(events, m.audit_after_id, m.correlation_id).await?;
    Ok((produced, published, processed))
}

/// Waits until every event of the run is in the audit log, or `timeout`.
/// Returns the last counts and how long it waited.
pub async fn wait_drained(
    backend: &PgPool,
    events: &PgPool,
    m: &RunMarks,
    timeout: Duration,
    progress: &ProgressBar,
) -> Result<((i64, i64, i64), Duration)> {
    let started = std::time::Instant::now();
    loop {
        let c = counts(backend, events, m).await?;
        progress.set_message(format!(
            "draining: produced {} published {} processed {}",
            c.0, c.1, c.2
        ));
        if c.2 >= c.0 || started.elapsed() >= timeout {
            return Ok((c, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One event's times, in seconds from the run's start (database clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventTimes {
    /// Outbox insert (the API transaction).
    pub created: f64,
    /// Marked published by the relay.
    pub published: Option<f64>,
    /// Processed by the event service.
    pub processed: Option<f64>,
    /// Failed publish attempts before success.
    pub attempts: i32,
}

/// Reads the run's events from both databases and joins them.
pub async fn fetch(backend: &PgPool, events: &PgPool, m: &RunMarks) -> Result<Vec<EventTimes>> {
    let outbox =
        todo_outbox::read::event_times(backend, m.outbox_after_id, m.correlation_id).await?;
    let audit: HashMap<Uuid, DateTime<Utc>> =
        todo_audit::log::processed_after(events, m.audit_after_id, m.correlation_id)
            .await?
            .into_iter()
            .collect();
    let secs = |t: DateTime<Utc>| (t - m.t0).num_microseconds().unwrap_or(0) as f64 / 1e6;
    Ok(outbox
        .into_iter()
        .map(|o| EventTimes {
            created: secs(o.created_at),
            published: o.published_at.map(secs),
            processed: audit.get(&o.event_id).copied().map(secs),
            attempts: o.attempts,
        })
        .collect())
}

/// One second of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineSecond {
    /// Second from the start of the run.
    pub t_s: u64,
    /// Events written to the outbox in this second.
    pub created: u64,
    /// Events marked published in this second.
    pub published: u64,
    /// Events processed in this second.
    pub processed: u64,
    /// At the end of the second: written but not yet published.
    pub unpublished: u64,
    /// At the end of the second: written but not yet processed.
    pub unprocessed: u64,
    /// End-to-end latency of the events written in this second.
    pub e2e_p50_ms: f64,
    /// 95th percentile.
    pub e2e_p95_ms: f64,
    /// 99th percentile.
    pub e2e_p99_ms: f64,
    /// Largest.
    pub e2e_max_ms: f64,
}

/// What happened to a run's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// Events the run wrote (outbox rows with its correlation id).
    pub produced: u64,
    /// Of those, published to Kafka.
    pub published: u64,
    /// Of those, processed by the event service (in the audit log).
    pub processed: u64,
    /// Written but not processed when the run stopped waiting.
    pub missing: u64,
    /// Failed publish attempts (retried) over the run's events.
    pub publish_failed_attempts: u64,
    /// Published / (published + failed attempts), in percent.
    pub publish_success_pct: f64,
    /// Commit (outbox insert) to processed by the event service.
    pub e2e: LatencySummary,
    /// Commit to marked published (the relay's share, including its batch wait).
    pub relay: LatencySummary,
    /// Marked published to processed (can be negative: the relay marks a batch
    /// after its last acknowledgement; those count as 0 here).
    pub consume: LatencySummary,
    /// Events processed before the relay marked them published.
    pub processed_before_marked_published: u64,
    /// Events processed by the end of the send window plus one second,
    /// divided by the send window.
    pub sustained_events_per_s: f64,
    /// Processed events / (last processed - first written).
    pub processed_rate_events_per_s: f64,
    /// Per second, from the database timestamps.
    pub per_second: Vec<PipelineSecond>,
}

/// Grace after the send window in which an event still counts as sustained.
pub const SUSTAIN_GRACE_S: f64 = 1.0;

/// The report for `events` sent over a window of `window_s` seconds.
pub fn analyse(events: &[EventTimes], window_s: f64) -> PipelineReport {
    let mut e2e = stats::histogram();
    let mut relay = stats::histogram();
    let mut consume = stats::histogram();
    let mut before_marked = 0;
    let mut failed_attempts = 0u64;
    let (mut published, mut processed) = (0u64, 0u64);
    let last_t = events
        .iter()
        .flat_map(|e| [Some(e.created), e.published, e.processed])
        .flatten()
        .fold(0.0f64, f64::max);
    let seconds = (last_t.max(0.0).floor() as usize) + 1;
    let mut per = vec![PipelineSecond::default(); seconds];
    let mut per_hist: Vec<Option<Histogram<u64>>> = vec![None; seconds];
    let sec = |t: f64| (t.max(0.0).floor() as usize).min(seconds - 1);
    let mut sustained = 0u64;
    let mut first_created = f64::INFINITY;
    let mut last_processed = f64::NEG_INFINITY;
    for e in events {
        failed_attempts += e.attempts.max(0) as u64;
        first_created = first_created.min(e.created);
        per[sec(e.created)].created += 1;
        if let Some(p) = e.published {
            published += 1;
            per[sec(p)].published += 1;
            stats::record_micros(&mut relay, ((p - e.created) * 1e6) as i64);
        }
        if let Some(d) = e.processed {
            processed += 1;
            last_processed = last_processed.max(d);
            per[sec(d)].processed += 1;
            let us = ((d - e.created) * 1e6) as i64;
            stats::record_micros(&mut e2e, us);
            per_hist[sec(e.created)]
                .get_or_insert_with(|| {
                    Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds")
                })
                .saturating_record(us.clamp(1, 60_000_000) as u64);
            if let Some(p) = e.published {
                if d < p {
                    before_marked += 1;
                }
                stats::record_micros(&mut consume, ((d - p) * 1e6).max(0.0) as i64);
            }
            if d <= window_s + SUSTAIN_GRACE_S {
                sustained += 1;
            }
        }
    }
    let (mut created_c, mut published_c, mut processed_c) = (0, 0, 0);
    for (i, s) in per.iter_mut().enumerate() {
        s.t_s = i as u64;
        created_c += s.created;
        published_c += s.published;
        processed_c += s.processed;
        s.unpublished = created_c - published_c.min(created_c);
        s.unprocessed = created_c - processed_c.min(created_c);
        if let Some(h) = &per_hist[i] {
            let l = LatencySummary::of(h);
            (s.e2e_p50_ms, s.e2e_p95_ms, s.e2e_p99_ms, s.e2e_max_ms) =
                (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms);
        }
    }
    let produced = events.len() as u64;
    PipelineReport {
        produced,
        published,
        processed,
        missing: produced - processed,
        publish_failed_attempts: failed_attempts,
        publish_success_pct: if published + failed_attempts == 0 {
            0.0
        } else {
            stats::round3(100.0 * published as f64 / (published + failed_attempts) as f64)
        },
        e2e: LatencySummary::of(&e2e),
        relay: LatencySummary::of(&relay),
        consume: LatencySummary::of(&consume),
        processed_before_marked_published: before_marked,
        sustained_events_per_s: if window_s > 0.0 {
            stats::round3(sustained as f64 / window_s)
        } else {
            0.0
        },
        processed_rate_events_per_s: if processed > 1 && last_processed > first_created {
            stats::round3(processed as f64 / (last_processed - first_created))
        } else {
            0.0
        },
        per_second: per,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(created: f64, published: f64, processed: f64) -> EventTimes {
        EventTimes {
            created,
            published: Some(published),
            processed: Some(processed),
            attempts: 0,
        }
    }

    #[test]
    fn end_to_end_latency_runs_from_commit_to_processing() {
        let events: Vec<EventTimes> = (0..100)
            .map(|i| {
                let t = i as f64 / 100.0;
                ev(t, t + 0.002, t + 0.010)
            })
            .collect();
        let r = analyse(&events, 1.0);
        assert_eq!(
            (r.produced, r.published, r.processed, r.missing),
            (100, 100, 100, 0)
        );
        assert!((r.e2e.p50_ms - 10.0).abs() < 0.05, "{:?}", r.e2e);
        assert!((r.relay.p99_ms - 2.0).abs() < 0.05, "{:?}", r.relay);
        assert!((r.consume.p50_ms - 8.0).abs() < 0.05, "{:?}", r.consume);
        assert_eq!(r.sustained_events_per_s, 100.0);
        assert_eq!(r.publish_success_pct, 100.0);
        assert_eq!(r.per_second[0].created, 100);
        assert_eq!(
            r.per_second[0].unprocessed, 1,
            "the last event is processed in second 1"
        );
        assert_eq!(r.per_second[1].unprocessed, 0);
    }

    #[test]
    fn unprocessed_events_are_missing_and_late_ones_do_not_count_as_sustained() {
        let mut events = vec![ev(0.0, 0.1, 0.2), ev(0.5, 0.6, 5.0)];
        events.push(EventTimes {
            created: 0.9,
            published: None,
            processed: None,
            attempts: 3,
        });
        let r = analyse(&events, 1.0);
        assert_eq!(r.missing, 1);
        assert_eq!(r.publish_failed_attempts, 3);
        assert_eq!(r.publish_success_pct, 40.0);
        assert_eq!(
            r.sustained_events_per_s, 1.0,
            "only the first is processed within 2 s"
        );
        assert_eq!(r.per_second.len(), 6);
        assert_eq!(r.per_second[2].unpublished, 1);
    }

    #[test]
    fn events_processed_before_the_relay_marks_them_count_zero_consume_time() {
        let r = analyse(&[ev(0.0, 0.05, 0.03)], 1.0);
        assert_eq!(r.processed_before_marked_published, 1);
        assert!(r.consume.max_ms <= 0.001);
    }
}
