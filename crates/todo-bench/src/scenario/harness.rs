//! The harness every scenario runs its load through: drive, sample, wait
//! for the events, and summarise what the databases recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::probes::{cpu_busy_over, own_cpu_s, wait_quiet};
use super::warmup::{warm_up, WarmedUp};
use super::{progress, Ctx};
use crate::client::{Api, Target};
use crate::error::{Error, Result};
use crate::load::{self, Driver, Recorder, DEFAULT_MAX_IN_FLIGHT};
use crate::pipeline::{self, EventTimes, PipelineReport};
use crate::report::{CpuFigures, LagReport, LoadRun, ProcessingReport};
use crate::sampler::{self, Sampler, TimelinePoint};
use crate::schedule::Schedule;
use crate::stats;

/// How load is driven.
pub enum Load {
    /// By the clock.
    Open(Schedule),
    /// Back to back.
    Closed {
        /// Workers.
        concurrency: usize,
        /// Longest duration.
        duration: Duration,
        /// Stop after this many requests.
        limit: Option<u64>,
    },
}

/// Everything one load run measured.
pub struct Measured {
    /// The unrecorded warm-up before the run.
    pub warmed: WarmedUp,
    /// The run's correlation id.
    pub correlation_id: uuid::Uuid,
    /// Per target.
    pub recorders: Vec<Recorder>,
    /// Send window.
    pub window: Duration,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
    /// The run's events with their times.
    pub events: Vec<EventTimes>,
    /// Seconds waited for the last events.
    pub drain_wait: Duration,
    /// Event service processing time over the run.
    pub processing: ProcessingReport,
    /// The relay's send-to-acknowledgement time over the run.
    pub publish: ProcessingReport,
    /// The relay's pickup time (an event's write to its read) over the run.
    pub pickup: ProcessingReport,
    /// Kafka delivery (the producer's send to the event service's read) over the run.
    pub delivery: ProcessingReport,
    /// Steps run (ramp).
    pub steps_run: usize,
    /// Verdict per step (ramp).
    pub step_verdicts: Vec<(bool, String)>,
    /// Machine CPU busy in the 2 s before the load.
    pub cpu_busy_before_pct: Option<f64>,
    /// Our own CPU seconds during the run.
    pub bench_cpu_s: Option<f64>,
}

impl Measured {
    /// The answers of every target as one (a load spread round robin over
    /// several backends is one load).
    pub fn together(&self) -> Recorder {
        Recorder::merged(&self.recorders)
    }

    /// The machine's CPU around the run, as every run reports it.
    pub fn cpu(&self) -> CpuFigures {
        CpuFigures {
            cpu_busy_pct_mean: cpu_mean(&self.timeline),
            cpu_busy_before_pct: self.cpu_busy_before_pct,
            bench_cpu_s: self.bench_cpu_s,
        }
    }
}

/// Hooks a scenario can put around the load.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Runs after the load, before waiting for the events (backlog: restart
    /// the relay). Returns seconds from the start when it ran.
    #[allow(clippy::type_complexity)]
    pub after_load: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'a, Result<()>> + 'a>>,
    /// Judges a ramp step from the latest sample, the requests ok and failed
    /// so far and how long the step really took in seconds (longer than
    /// planned when sending fell behind): `(bounded, why)`.
    #[allow(clippy::type_complexity)]
    pub judge_step:
        Option<Box<dyn FnMut(usize, &Schedule, &Sampler, u64, u64, f64) -> (bool, String) + 'a>>,
    /// Measure from the first request, with no warm-up (settle).
    pub skip_warmup: bool,
    /// Told the instant the measured load starts (after any warm-up): a
    /// scenario that acts during the load (scale's rebalances) times its
    /// actions from it.
    pub started: Option<tokio::sync::oneshot::Sender<Instant>>,
}

/// Runs one load against `targets` and measures it end to end.
pub async fn measure(
    ctx: &Ctx,
    label: &str,
    targets: Vec<Arc<Target>>,
    load: Load,
    mut hooks: Hooks<'_>,
) -> Result<(Measured, f64)> {
    let correlation_id = uuid::Uuid::new_v4();
    let api = Api::new(correlation_id, Duration::from_millis(ctx.common.timeout_ms));
    let names = targets.iter().map(|t| t.name.clone()).collect();
    if let Some(limit) = ctx.common.quiet_below_pct {
        wait_quiet(limit, Duration::from_secs(ctx.common.quiet_wait_s)).await;
    }
    let cpu_busy_before_pct = cpu_busy_over(Duration::from_secs(2)).await;
    // NB: after the idle machine's CPU is read, and right before the run.
    let warmed = match &load {
        Load::Open(s) if !hooks.skip_warmup => warm_up(ctx, &targets, s.steps[0].rate).await,
        _ => WarmedUp::default(),
    };
    let driver = Driver::new(api, targets, ctx.common.mix.clone());
    let before = sampler::scrape_all(&ctx.http, &ctx.events_metrics_urls()).await;
    let publish_before = sampler::scrape_all(&ctx.http, &ctx.backend_metrics_urls()).await;
    let cpu_at_start = own_cpu_s();
    // NB: the marks (and the database clock's t0) right before the start:
    // every database timestamp is read as seconds from t0.
    let marks = pipeline::mark(&ctx.backend_db, &ctx.events_db, correlation_id).await?;
    let len = match &load {
        Load::Open(s) => s.duration().as_secs_f64(),
        Load::Closed { duration, .. } => duration.as_secs_f64(),
    };
    let pb = progress(len.ceil() as u64, label);
    let start = Instant::now();
    if let Some(started) = hooks.started.take() {
        // NB: the scenario may have given up waiting; the load runs anyway.
        let _ = started.send(start);
    }
    let (tx, collector) = load::collect(names, start);
    let sampler = Sampler::start(ctx.sources(), driver.live.clone(), start, Some(pb.clone()));
    let mut steps_run = 0;
    let mut step_verdicts = Vec::new();
    let window = match load {
        Load::Open(schedule) => {
            let in_flight = Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT));
            for step in 0..schedule.steps.len() {
                let slots = schedule.slots().filter(move |s| s.step == step);
                load::open_loop(&driver, start, slots, &in_flight, &tx).await;
                steps_run += 1;
                if let Some(judge) = hooks.judge_step.as_mut() {
                    // Judged at once, on the latest sample (at most a second
                    // old): waiting would delay the next step's sends.
                    let ok = driver.live.ok.load(std::sync::atomic::Ordering::Relaxed);
                    let failed = driver
                        .live
                        .failed
                        .load(std::sync::atomic::Ordering::Relaxed);
                    // NB: when the stack stops keeping up, the requests in
                    // flight hit their cap and sends start late: the step ends
                    // late, and its requests count over the time it took.
                    let took = start
                        .elapsed()
                        .saturating_sub(schedule.step_start(step))
                        .as_secs_f64();
                    let verdict = judge(step, &schedule, &sampler, ok, failed, took);
                    let bounded = verdict.0;
                    step_verdicts.push(verdict);
                    if !bounded {
                        break;
                    }
                }
            }
            let window = schedule.step_start(steps_run);
            load::wait_in_flight(&in_flight, DEFAULT_MAX_IN_FLIGHT).await;
            window
        }
        Load::Closed {
            concurrency,
            duration,
            limit,
        } => {
            load::closed_loop(&driver, concurrency, duration, limit, &tx).await;
            start.elapsed()
        }
    };
    drop(tx);
    let recorders = collector.await.map_err(|e| Error::Process(e.to_string()))?;
    let mut after_load_s = 0.0;
    if let Some(after) = hooks.after_load.take() {
        after_load_s = start.elapsed().as_secs_f64();
        after().await?;
    }
    pb.set_length(pb.position().max(len.ceil() as u64) + ctx.common.drain_timeout_s);
    let (_, drain_wait) = pipeline::wait_drained(
        &ctx.backend_db,
        &ctx.events_db,
        &marks,
        Duration::from_secs(ctx.common.drain_timeout_s),
        &pb,
    )
    .await?;
    // One more sample after the drain, so plots end at rest.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let timeline = sampler.stop().await;
    pb.finish_and_clear();
    let after = sampler::scrape_all(&ctx.http, &ctx.events_metrics_urls()).await;
    let processing = histogram_report(
        "event_processing_duration_seconds",
        before.as_deref(),
        after.as_deref(),
    );
    let delivery = histogram_report(
        "event_delivery_duration_seconds",
        before.as_deref(),
        after.as_deref(),
    );
    let publish_after = sampler::scrape_all(&ctx.http, &ctx.backend_metrics_urls()).await;
    let publish = histogram_report(
        "event_publish_duration_seconds",
        publish_before.as_deref(),
        publish_after.as_deref(),
    );
    let pickup = histogram_report(
        "outbox_relay_pickup_seconds",
        publish_before.as_deref(),
        publish_after.as_deref(),
    );
    let events = pipeline::fetch(&ctx.backend_db, &ctx.events_db, &marks).await?;
    Ok((
        Measured {
            warmed,
            correlation_id,
            recorders,
            window,
            timeline,
            events,
            drain_wait,
            processing,
            publish,
            pickup,
            delivery,
            steps_run,
            step_verdicts,
            cpu_busy_before_pct,
            bench_cpu_s: own_cpu_s()
                .zip(cpu_at_start)
                .map(|(b, a)| stats::round3(b - a)),
        },
        after_load_s,
    ))
}

/// Percentiles of Prometheus histogram `name` over what it observed between
/// two scrapes.
fn histogram_report(
    name: &str,
    before: Option<&[stats::PromSample]>,
    after: Option<&[stats::PromSample]>,
) -> ProcessingReport {
    let Some(after) = after else {
        return ProcessingReport::default();
    };
    let b = before
        .map(|b| stats::buckets_of(b, name))
        .unwrap_or_default();
    let d = stats::bucket_delta(&b, &stats::buckets_of(after, name));
    let q = |q: f64| stats::bucket_quantile(&d, q).map(|s| stats::round3(s * 1_000.0));
    ProcessingReport {
        count: d.last().map(|x| x.1).unwrap_or(0.0),
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
    }
}

fn lag_report(timeline: &[TimelinePoint], pipeline: &PipelineReport) -> LagReport {
    let mut lags: Vec<i64> = timeline.iter().filter_map(|p| p.consumer_lag).collect();
    lags.sort_unstable();
    LagReport {
        samples: timeline.len() as u64,
        consumer_lag_max: lags.last().copied(),
        consumer_lag_p50: (!lags.is_empty()).then(|| lags[lags.len() / 2]),
        consumer_lag_max_partition: timeline
            .iter()
            .filter_map(|p| p.consumer_lag_max_partition)
            .max(),
        outbox_depth_max: timeline.iter().filter_map(|p| p.outbox_depth).max(),
        unprocessed_max: pipeline
            .per_second
            .iter()
            .map(|s| s.unprocessed)
            .max()
            .unwrap_or(0),
    }
}

/// Mean machine CPU busy share over the samples.
pub fn cpu_mean(timeline: &[TimelinePoint]) -> Option<f64> {
    let v: Vec<f64> = timeline.iter().filter_map(|p| p.cpu_busy_pct).collect();
    (!v.is_empty()).then(|| stats::round3(v.iter().sum::<f64>() / v.len() as f64))
}

pub(super) fn load_run(
    m: &Measured,
    mode: &str,
    rate: Option<f64>,
    concurrency: Option<u64>,
    mix: &str,
) -> LoadRun {
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    LoadRun {
        warmup_s: m.warmed.seconds,
        warmup_settled: m.warmed.settled,
        warmup_window_means_ms: m.warmed.window_means_ms.clone(),
        mode: mode.into(),
        rate_per_s: rate,
        concurrency,
        duration_s: stats::round3(m.window.as_secs_f64()),
        mix: mix.into(),
        correlation_id: m.correlation_id.to_string(),
        api: m.together().report(m.window),
        lag: lag_report(&m.timeline, &pipeline),
        pipeline,
        processing: m.processing.clone(),
        publish: m.publish.clone(),
        pickup: m.pickup.clone(),
        delivery: m.delivery.clone(),
        drain_wait_s: stats::round3(m.drain_wait.as_secs_f64()),
        cpu: m.cpu(),
        timeline: m.timeline.clone(),
    }
}

/// The stack's backend, and the extra ones of `scale` (`backend-2`, ...):
/// the load goes to them round robin.
pub(super) fn backend_targets(ctx: &Ctx) -> Vec<Arc<Target>> {
    ctx.backends
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let name = match i {
                0 => "backend".to_owned(),
                i => format!("backend-{}", i + 1),
            };
            Arc::new(Target::new(&name, url))
        })
        .collect()
}
