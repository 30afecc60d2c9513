//! The unrecorded load before an open-loop scenario measures: fresh
//! processes open their connection pools and fill their caches, a restarted
//! broker's JVM compiles its hot paths, and the pipeline reaches its steady
//! state.
//!
//! By default the first open-loop run of a `todo-bench` process warms up
//! until the pipeline's latency has stopped falling, for at least a minute:
//! on the reference machine a freshly started stack takes 40–75 s of load to
//! settle, and a restarted broker about 50 s, while the broker's JVM compiles
//! its hot paths on the same two cores. Its latency can stay flat for 25–35 s
//! and then halve, so no trend seen in the first half minute says that it is
//! settled. Later runs of the process find the stack warm, and warm up 10 s.
//!
//! Settled is judged on the services' own histograms, so the warm-up needs no
//! marks in the databases: every [`WINDOW`], the mean time an event spent
//! from its write to its effects (relay pickup, Kafka delivery, processing)
//! over that window. The criterion asks only that the latency stop falling,
//! never that it be low: a stack whose steady state misses a target still
//! misses it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Ctx;
use crate::client::{Api, Target};
use crate::load::{self, Driver, DEFAULT_MAX_IN_FLIGHT};
use crate::sampler;
use crate::schedule::Schedule;
use crate::stats::{self, PromSample};

/// How long an open-loop scenario warms up before it measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Warmup {
    /// Exactly this many seconds (`--warmup-s`, and `--quick`).
    Fixed(f64),
    /// Until the pipeline's latency has settled, within these bounds.
    UntilSettled {
        /// Seconds at least.
        min_s: f64,
        /// Seconds at most.
        max_s: f64,
    },
}

/// The default's first warm-up of a process.
pub const FIRST: Warmup = Warmup::UntilSettled {
    min_s: 60.0,
    max_s: 180.0,
};

/// The default's later warm-ups: the stack has just carried a scenario.
pub const LATER: Warmup = Warmup::Fixed(10.0);

/// Length of the windows the latency is averaged over.
pub const WINDOW: Duration = Duration::from_secs(5);

/// The windows compared are this many apart (20 s): a broker's JIT lowers
/// the latency by about 10 % per window, which next windows would take for
/// noise.
const LOOKBACK: usize = 4;

/// Largest fall, as a share, from a window's mean latency to that of the
/// window [`LOOKBACK`] after it, for the pipeline to count as settled: one
/// noisy window (a slow second weighs on a 5 s mean) delays the end by a
/// window at most.
const SETTLED_FALL: f64 = 0.15;

/// What a warm-up did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WarmedUp {
    /// Seconds of load.
    pub seconds: f64,
    /// The pipeline's mean latency per window in ms (`None`: no event in
    /// that window, or the metrics could not be read). Empty for a fixed
    /// warm-up.
    pub window_means_ms: Vec<Option<f64>>,
    /// `Some(true)`: ended because the latency settled; `Some(false)`: it
    /// was still falling at the maximum; `None`: a fixed warm-up.
    pub settled: Option<bool>,
}

/// Whether the latency has settled, given the window means so far (oldest
/// first): the latest is at most [`SETTLED_FALL`] below the one [`LOOKBACK`]
/// windows before it. A latest window without a figure counts as settled:
/// with no events (a `health` mix) or no metrics there is nothing to wait for
/// beyond the minimum. An earlier one without a figure (a fresh process
/// shows a histogram from its first event on) is no basis: wait on.
pub fn settled(means: &[Option<f64>]) -> bool {
    let Some(&latest) = means.last() else {
        return false;
    };
    let Some(latest) = latest else {
        return true;
    };
    match means.len().checked_sub(LOOKBACK + 1).map(|i| means[i]) {
        Some(Some(earlier)) => latest >= (1.0 - SETTLED_FALL) * earlier,
        _ => false,
    }
}

/// The histograms whose means add up to an event's time from its write to
/// its effects: the backend's pickup, then the event service's delivery and
/// processing.
const BACKEND_STAGES: [&str; 1] = ["outbox_relay_pickup_seconds"];
const EVENT_SERVICE_STAGES: [&str; 2] = [
    "event_delivery_duration_seconds",
    "event_processing_duration_seconds",
];

/// Per stage, its histogram's (sum of seconds, count) at one scrape.
type Totals = Vec<Option<(f64, f64)>>;

fn totals_of(samples: Option<&[PromSample]>, names: &[&str]) -> Totals {
    names
        .iter()
        .map(|name| {
            let s = samples?;
            Some((
                stats::sum_of(s, &format!("{name}_sum"))?,
                stats::sum_of(s, &format!("{name}_count"))?,
            ))
        })
        .collect()
}

async fn scrape_totals(ctx: &Ctx) -> Totals {
    let backend = sampler::scrape_all(&ctx.http, &ctx.backend_metrics_urls()).await;
    let events = sampler::scrape_all(&ctx.http, &ctx.events_metrics_urls()).await;
    let mut t = totals_of(backend.as_deref(), &BACKEND_STAGES);
    t.extend(totals_of(events.as_deref(), &EVENT_SERVICE_STAGES));
    t
}

/// The mean latency in ms between two scrapes: the sum of each stage's mean.
/// `None` when a stage is unknown or saw no event (a restarted process's
/// counters start again: that window has no figure either).
fn window_mean_ms(before: &Totals, after: &Totals) -> Option<f64> {
    let mut total = 0.0;
    for (b, a) in before.iter().zip(after) {
        let ((sum_b, n_b), (sum_a, n_a)) = ((*b)?, (*a)?);
        let n = n_a - n_b;
        if n <= 0.0 || sum_a < sum_b {
            return None;
        }
        total += (sum_a - sum_b) / n;
    }
    Some(stats::round3(total * 1_000.0))
}

/// Unrecorded load on `targets` at `rate`, as long as `ctx`'s warm-up says
/// ([`FIRST`] then [`LATER`] unless chosen; their task pools are kept).
pub(super) async fn warm_up(ctx: &Ctx, targets: &[Arc<Target>], rate: f64) -> WarmedUp {
    let warmup = ctx.common.warmup().unwrap_or_else(|| {
        if ctx.warmed_up.swap(true, Ordering::Relaxed) {
            LATER
        } else {
            FIRST
        }
    });
    let (min_s, max_s) = match warmup {
        Warmup::Fixed(s) => (s, s),
        Warmup::UntilSettled { min_s, max_s } => (min_s, max_s.max(min_s)),
    };
    if max_s <= 0.0 {
        return WarmedUp::default();
    }
    let api = Api::new(
        uuid::Uuid::new_v4(),
        Duration::from_millis(ctx.common.timeout_ms),
    );
    let driver = Driver::new(api, targets.to_vec(), ctx.common.mix.clone());
    let schedule = Schedule::constant(rate, Duration::from_secs_f64(max_s));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (tx, collector) = load::collect(targets.iter().map(|t| t.name.clone()).collect(), start);
    let in_flight = Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT));
    let slots = {
        let stop = stop.clone();
        schedule
            .slots()
            .take_while(move |_| !stop.load(Ordering::Relaxed))
    };
    let send = load::open_loop(&driver, start, slots, &in_flight, &tx);
    let watch = async {
        let mut means = Vec::new();
        if let Warmup::Fixed(_) = warmup {
            return (means, None);
        }
        let mut before = scrape_totals(ctx).await;
        loop {
            tokio::time::sleep_until(start + WINDOW * (means.len() as u32 + 1)).await;
            let after = scrape_totals(ctx).await;
            means.push(window_mean_ms(&before, &after));
            before = after;
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed + 0.5 >= min_s && settled(&means) {
                stop.store(true, Ordering::Relaxed);
                return (means, Some(true));
            }
            if elapsed + 0.5 >= max_s {
                return (means, Some(false));
            }
        }
    };
    let ((), (means, settled)) = tokio::join!(send, watch);
    let seconds = stats::round3(start.elapsed().as_secs_f64());
    load::wait_in_flight(&in_flight, DEFAULT_MAX_IN_FLIGHT).await;
    drop(tx);
    let _ = collector.await;
    WarmedUp {
        seconds,
        window_means_ms: means,
        settled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first window after which `means` count as settled.
    fn settled_after(means: &[f64]) -> Option<usize> {
        let means: Vec<Option<f64>> = means.iter().copied().map(Some).collect();
        (1..=means.len()).find(|&n| settled(&means[..n]))
    }

    #[test]
    fn a_plateau_then_a_fall_is_waited_out() {
        // A broker restarted 10 s before the load (ms per 5 s window): flat
        // for 15 s, then its compiled code takes over.
        let means = [
            82.5, 68.4, 73.4, 60.0, 50.0, 45.0, 40.0, 25.0, 20.0, 18.0, 19.0, 18.0, 18.5,
        ];
        assert_eq!(settled_after(&means), Some(13));
    }

    #[test]
    fn a_slow_decline_is_waited_out() {
        // The first minute of load on a freshly started stack.
        let means = [
            36.0, 34.0, 30.0, 28.0, 25.0, 22.0, 21.0, 20.0, 19.0, 19.0, 18.0,
        ];
        assert_eq!(settled_after(&means), Some(10));
    }

    #[test]
    fn a_flat_or_rising_latency_is_settled_once_it_can_be_compared() {
        assert_eq!(
            settled_after(&[15.0, 14.0, 16.0, 15.0, 14.0, 14.5]),
            Some(5)
        );
        assert_eq!(settled_after(&[20.0, 25.0, 30.0, 35.0, 40.0]), Some(5));
        assert_eq!(settled_after(&[15.0, 14.0, 13.8, 14.1]), None, "too early");
    }

    #[test]
    fn a_latest_window_with_no_figure_ends_the_wait_and_an_earlier_one_does_not() {
        assert!(settled(&[Some(30.0), Some(20.0), None]));
        assert!(settled(&[None]));
        assert!(!settled(&[]));
        // A fresh event service: no histogram before its first event.
        let fresh = [None, Some(104.1), Some(78.6), Some(77.6), Some(74.6)];
        assert!(!settled(&fresh));
        assert!(!settled(&[&fresh[..], &[Some(61.0)]].concat()));
        assert!(settled(&[&fresh[..], &[Some(61.0), Some(74.7)]].concat()));
    }

    fn totals(stages: &[(f64, f64)]) -> Totals {
        stages.iter().map(|s| Some(*s)).collect()
    }

    #[test]
    fn the_window_mean_is_the_sum_of_each_stages_mean() {
        let before = totals(&[(1.0, 100.0), (2.0, 100.0), (0.5, 100.0)]);
        // 10 ms, 5 ms and 3 ms per event over the window.
        let after = totals(&[(2.0, 200.0), (2.5, 200.0), (0.8, 200.0)]);
        assert_eq!(window_mean_ms(&before, &after), Some(18.0));
    }

    #[test]
    fn a_window_without_events_or_with_a_restarted_process_has_no_mean() {
        let before = totals(&[(1.0, 100.0), (2.0, 100.0)]);
        assert_eq!(window_mean_ms(&before, &before), None, "no event");
        let restarted = totals(&[(0.1, 10.0), (2.5, 200.0)]);
        assert_eq!(window_mean_ms(&before, &restarted), None);
        let unknown = vec![None, Some((2.5, 200.0))];
        assert_eq!(window_mean_ms(&before, &unknown), None);
    }

    #[test]
    fn stage_totals_come_from_the_histograms_sum_and_count() {
        let text = "outbox_relay_pickup_seconds_sum 1.5\noutbox_relay_pickup_seconds_count 30\n";
        let samples = stats::parse_prometheus(text);
        assert_eq!(
            totals_of(Some(&samples), &BACKEND_STAGES),
            vec![Some((1.5, 30.0))]
        );
        assert_eq!(totals_of(None, &BACKEND_STAGES), vec![None]);
        assert_eq!(
            totals_of(Some(&samples), &EVENT_SERVICE_STAGES),
            vec![None, None]
        );
    }

    #[test]
    fn the_first_default_warm_up_lasts_long_enough_to_compare_windows() {
        let Warmup::UntilSettled { min_s, max_s } = FIRST else {
            panic!("the first warm-up waits for the pipeline");
        };
        assert!(min_s >= (LOOKBACK + 1) as f64 * WINDOW.as_secs_f64());
        assert!(max_s > min_s);
    }
}
