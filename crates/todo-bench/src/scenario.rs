//! The scenarios: each drives load, samples the stack, waits for the events,
//! and turns what the databases recorded into its part of the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::{BacklogArgs, Common, MaxArgs, OverheadArgs, RampArgs, SteadyArgs};
use crate::client::{Api, Target};
use crate::error::{Error, Result};
use crate::instance::{self, BackendSpec};
use crate::load::{self, ApiReport, Driver, Recorder, DEFAULT_MAX_IN_FLIGHT};
use crate::pipeline::{self, EventTimes, PipelineReport};
use crate::plot::{self, Series};
use crate::report::{
    BacklogRun, LagReport, LoadRun, OverheadRun, ProcessingReport, RampRun, RampStep,
};
use crate::sampler::{self, LagProbe, Sampler, Sources, TimelinePoint};
use crate::schedule::Schedule;
use crate::stats::{self, LatencySummary};

/// What every scenario needs.
pub struct Ctx {
    /// Options.
    pub common: Common,
    /// Backend database.
    pub backend_db: PgPool,
    /// Event service database.
    pub events_db: PgPool,
    /// Client for /metrics and health.
    pub http: reqwest::Client,
    /// Consumer lag from Kafka.
    pub lag: Option<Arc<LagProbe>>,
    /// Report directory.
    pub out: PathBuf,
}

impl Ctx {
    /// Connects to both databases and Kafka.
    pub async fn connect(common: Common, out: PathBuf) -> Result<Self> {
        let opts = || {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
        };
        let backend_db = opts().connect(&common.database_url).await?;
        let events_db = opts().connect(&common.event_database_url).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let kafka = common.kafka.clone();
        let group = common.consumer_group.clone();
        let topics = todo_kafka::TopicNames::new(kafka.topic_prefix.clone()).task_topics();
        let lag = tokio::task::spawn_blocking(move || LagProbe::new(&kafka, &group, &topics))
            .await
            .map_err(|e| Error::Process(e.to_string()))?;
        let lag = match lag {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                eprintln!("consumer lag from Kafka unavailable ({e}); using /metrics only");
                None
            }
        };
        Ok(Self {
            common,
            backend_db,
            events_db,
            http,
            lag,
            out,
        })
    }

    fn sources(&self) -> Sources {
        Sources {
            backend_db: self.backend_db.clone(),
            backend_metrics: format!("{}/metrics", self.common.backend_url.trim_end_matches('/')),
            events_metrics: format!(
                "{}/metrics",
                self.common.event_service_url.trim_end_matches('/')
            ),
            http: self.http.clone(),
            lag: self.lag.clone(),
        }
    }

    fn backend_metrics_url(&self) -> String {
        format!("{}/metrics", self.common.backend_url.trim_end_matches('/'))
    }

    fn events_metrics_url(&self) -> String {
        format!(
            "{}/metrics",
            self.common.event_service_url.trim_end_matches('/')
        )
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len_s: u64, prefix: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len_s), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos:>4}/{len}s {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_owned());
    pb
}

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
    /// Steps run (ramp).
    pub steps_run: usize,
    /// Verdict per step (ramp).
    pub step_verdicts: Vec<(bool, String)>,
    /// Machine CPU busy in the 2 s before the load.
    pub cpu_busy_before_pct: Option<f64>,
    /// Our own CPU seconds during the run.
    pub bench_cpu_s: Option<f64>,
}

/// Machine CPU busy share over `over`.
pub async fn cpu_busy_over(over: Duration) -> Option<f64> {
    let a = sampler::cpu_jiffies()?;
    tokio::time::sleep(over).await;
    let b = sampler::cpu_jiffies()?;
    (b.1 > a.1).then(|| stats::round3(100.0 * (b.0 - a.0) as f64 / (b.1 - a.1) as f64))
}

/// Waits until the machine's CPU is less than `limit` percent busy over 3 s,
/// or `longest` passed.
pub async fn wait_quiet(limit: f64, longest: Duration) {
    let deadline = Instant::now() + longest;
    loop {
        let busy = cpu_busy_over(Duration::from_secs(3)).await.unwrap_or(0.0);
        if busy < limit {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("machine still {busy:.0} % busy after {longest:?}; running anyway");
            return;
        }
        eprintln!("machine {busy:.0} % busy (other work); waiting for < {limit:.0} %");
    }
}

/// CPU seconds (user + system) this process used so far.
pub fn own_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // NB: USER_HZ is 100 on every Linux we run on.
    Some(ticks / 100.0)
}

/// Hooks a scenario can put around the load.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Runs after the load, before waiting for the events (backlog: restart
    /// the relay). Returns seconds from the start when it ran.
    #[allow(clippy::type_complexity)]
    pub after_load: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'a, Result<()>> + 'a>>,
    /// Judges a ramp step from the latest sample: `(bounded, why)`.
    #[allow(clippy::type_complexity)]
    pub judge_step:
        Option<Box<dyn FnMut(usize, &Schedule, &Sampler, u64, u64) -> (bool, String) + 'a>>,
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
    let driver = Driver::new(api, targets, ctx.common.mix.clone());
    if let Some(limit) = ctx.common.quiet_below_pct {
        wait_quiet(limit, Duration::from_secs(ctx.common.quiet_wait_s)).await;
    }
    let before = sampler::scrape(&ctx.http, &ctx.events_metrics_url()).await;
    let publish_before = sampler::scrape(&ctx.http, &ctx.backend_metrics_url()).await;
    let cpu_busy_before_pct = cpu_busy_over(Duration::from_secs(2)).await;
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
                    let verdict = judge(step, &schedule, &sampler, ok, failed);
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
    let after = sampler::scrape(&ctx.http, &ctx.events_metrics_url()).await;
    let processing = histogram_report(
        "event_processing_duration_seconds",
        before.as_deref(),
        after.as_deref(),
    );
    let publish_after = sampler::scrape(&ctx.http, &ctx.backend_metrics_url()).await;
    let publish = histogram_report(
        "event_publish_duration_seconds",
        publish_before.as_deref(),
        publish_after.as_deref(),
    );
    let events = pipeline::fetch(&ctx.backend_db, &ctx.events_db, &marks).await?;
    Ok((
        Measured {
            correlation_id,
            recorders,
            window,
            timeline,
            events,
            drain_wait,
            processing,
            publish,
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

fn load_run(
    m: &Measured,
    mode: &str,
    rate: Option<f64>,
    concurrency: Option<u64>,
    mix: &str,
) -> LoadRun {
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    LoadRun {
        mode: mode.into(),
        rate_per_s: rate,
        concurrency,
        duration_s: stats::round3(m.window.as_secs_f64()),
        mix: mix.into(),
        correlation_id: m.correlation_id.to_string(),
        api: m.recorders[0].report(m.window),
        lag: lag_report(&m.timeline, &pipeline),
        pipeline,
        processing: m.processing.clone(),
        publish: m.publish.clone(),
        drain_wait_s: stats::round3(m.drain_wait.as_secs_f64()),
        cpu_busy_pct_mean: cpu_mean(&m.timeline),
        cpu_busy_before_pct: m.cpu_busy_before_pct,
        bench_cpu_s: m.bench_cpu_s,
        timeline: m.timeline.clone(),
    }
}

fn backend_target(ctx: &Ctx) -> Arc<Target> {
    Arc::new(Target::new("backend", &ctx.common.backend_url))
}

/// `steady`.
pub async fn steady(ctx: &Ctx, args: &SteadyArgs) -> Result<LoadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 15.0 } else { 60.0 });
    let schedule = Schedule::constant(args.rate, Duration::from_secs_f64(duration));
    let (m, _) = measure(
        ctx,
        "steady",
        vec![backend_target(ctx)],
        Load::Open(schedule),
        Hooks::default(),
    )
    .await?;
    let run = load_run(
        &m,
        "open",
        Some(args.rate),
        None,
        &ctx.common.mix.to_string(),
    );
    plot_run(
        &ctx.out,
        "steady",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

/// `max`.
pub async fn max(ctx: &Ctx, args: &MaxArgs) -> Result<LoadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 10.0 } else { 30.0 });
    let (m, _) = measure(
        ctx,
        "max",
        vec![backend_target(ctx)],
        Load::Closed {
            concurrency: args.concurrency,
            duration: Duration::from_secs_f64(duration),
            limit: None,
        },
        Hooks::default(),
    )
    .await?;
    let run = load_run(
        &m,
        "closed",
        None,
        Some(args.concurrency as u64),
        &ctx.common.mix.to_string(),
    );
    plot_run(
        &ctx.out,
        "max",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

/// Whether a ramp step kept up: almost every request succeeded at almost
/// the offered rate, and at the step's end the pipeline was less than half a
/// second of events behind (written by us minus processed by the service).
pub fn step_verdict(rate: f64, step_s: f64, ok: u64, failed: u64, behind: i64) -> (bool, String) {
    let sent = ok + failed;
    let achieved = ok as f64 / step_s;
    let allowed = (rate * 0.5).max(200.0);
    if sent > 0 && failed as f64 > 0.01 * sent as f64 {
        (false, format!("{failed} of {sent} requests failed"))
    } else if achieved < 0.95 * rate {
        (false, format!("API achieved {achieved:.0} req/s"))
    } else if behind as f64 > allowed {
        (
            false,
            format!("{behind} events behind at the step's end (> {allowed:.0})"),
        )
    } else {
        (true, String::new())
    }
}

/// `ramp`.
pub async fn ramp(ctx: &Ctx, args: &RampArgs) -> Result<RampRun> {
    let rates = if args.rates.is_empty() {
        if ctx.common.quick {
            vec![1_000.0, 2_000.0, 3_000.0, 4_000.0, 5_000.0]
        } else {
            vec![
                500.0, 1_000.0, 1_500.0, 2_000.0, 2_500.0, 3_000.0, 4_000.0, 5_000.0, 6_000.0,
                8_000.0,
            ]
        }
    } else {
        args.rates.clone()
    };
    let step_s = args
        .step_s
        .unwrap_or(if ctx.common.quick { 4.0 } else { 15.0 });
    let schedule = Schedule::ramp(&rates, Duration::from_secs_f64(step_s));
    let consumed_base = sampler::scrape(&ctx.http, &ctx.events_metrics_url())
        .await
        .and_then(|s| stats::sum_of(&s, "events_consumed_total"))
        .unwrap_or(0.0);
    let mut prev = (0u64, 0u64);
    let judge = move |step: usize, sch: &Schedule, s: &Sampler, ok: u64, failed: u64| {
        let (step_ok, step_failed) = (ok - prev.0, failed - prev.1);
        prev = (ok, failed);
        let behind = s
            .last()
            .and_then(|p| {
                p.events_consumed_total
                    .map(|c| p.requests_ok as i64 - (c - consumed_base) as i64)
            })
            .unwrap_or(0);
        step_verdict(
            sch.steps[step].rate,
            sch.steps[step].duration.as_secs_f64(),
            step_ok,
            step_failed,
            behind,
        )
    };
    let (m, _) = measure(
        ctx,
        "ramp",
        vec![backend_target(ctx)],
        Load::Open(schedule.clone()),
        Hooks {
            judge_step: Some(Box::new(judge)),
            ..Default::default()
        },
    )
    .await?;
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let mut steps = Vec::new();
    for (i, (bounded, why)) in m.step_verdicts.iter().enumerate() {
        let from = schedule.step_start(i).as_secs_f64();
        let to = from + step_s;
        let (lat, ok, failed) = m.recorders[0].step(i);
        let processed = m
            .events
            .iter()
            .filter(|e| e.processed.is_some_and(|p| p >= from && p < to))
            .count();
        let mut e2e = stats::histogram();
        for e in m
            .events
            .iter()
            .filter(|e| e.created >= from && e.created < to)
        {
            if let Some(p) = e.processed {
                stats::record_micros(&mut e2e, ((p - e.created) * 1e6) as i64);
            }
        }
        let end_second = (to.ceil() as usize).saturating_sub(1);
        steps.push(RampStep {
            rate: schedule.steps[i].rate,
            achieved_rps: stats::round3(ok as f64 / step_s),
            ok,
            failed,
            api_p99_ms: lat.p99_ms,
            processed_per_s: stats::round3(processed as f64 / step_s),
            e2e_p99_ms: LatencySummary::of(&e2e).p99_ms,
            unprocessed_at_end: pipeline
                .per_second
                .get(end_second)
                .map(|s| s.unprocessed)
                .unwrap_or(0),
            bounded: *bounded,
            why: why.clone(),
        });
    }
    let best = steps
        .iter()
        .filter(|s| s.bounded)
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    let run = RampRun {
        step_s,
        highest_bounded_rate: best.map(|s| s.rate),
        highest_sustained_events_per_s: best.map(|s| s.processed_per_s).unwrap_or(0.0),
        api: m.recorders[0].report(m.window),
        cpu_busy_pct_mean: cpu_mean(&m.timeline),
        cpu_busy_before_pct: m.cpu_busy_before_pct,
        bench_cpu_s: m.bench_cpu_s,
        timeline: m.timeline.clone(),
        pipeline,
        steps,
    };
    plot_run(
        &ctx.out,
        "ramp",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

/// Seconds of unrecorded load before `overhead` measures (fresh processes
/// open their connection pools and fill their caches first).
pub fn overhead_warmup_s(quick: bool) -> f64 {
    if quick {
        2.0
    } else {
        5.0
    }
}

/// `overhead`.
pub async fn overhead(ctx: &Ctx, args: &OverheadArgs) -> Result<OverheadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 15.0 } else { 60.0 });
    let spec = |events_enabled: bool, log: &str| BackendSpec {
        bin: &ctx.common.backend_bin,
        database_url: &ctx.common.database_url,
        kafka_bootstrap_servers: &ctx.common.kafka.bootstrap_servers,
        events_enabled,
        relay_enabled: false,
        log: ctx.out.join(log),
    };
    let on = instance::spawn_backend(spec(true, "backend-events-on.log"), &ctx.http).await?;
    let off = match instance::spawn_backend(spec(false, "backend-events-off.log"), &ctx.http).await
    {
        Ok(off) => off,
        Err(e) => {
            on.stop().await;
            return Err(e);
        }
    };
    let on_target = Arc::new(Target::new("events_on", &on.url));
    let off_target = Arc::new(Target::new("events_off", &off.url));
    let warmup = overhead_warmup_s(ctx.common.quick);
    let method = format!(
        "Two todo-backend instances started by todo-bench from the same binary against the same \
         database, identical but for EVENTS_ENABLED (true on {}, false on {}); neither runs a \
         relay (RELAY_ENABLED=false: the stack's backend publishes the events-on side's rows), so \
         the only difference on the request path is the outbox write. Requests alternate between \
         the two, {} req/s each, so both sides share the machine's load at the same moment. {} s \
         of unrecorded warm-up first. The events-off side's tasks are deleted through it at the \
         end (no events), so the event service's projection never misses them. End-to-end \
         figures of this scenario include the stack relay's poll interval (its wake-up signal \
         only comes from its own process's writes).",
        on.url, off.url, args.rate, warmup
    );
    let targets = vec![on_target, off_target.clone()];
    let result = async {
        warm_up(ctx, &targets, 2.0 * args.rate, warmup).await;
        let schedule = Schedule::constant(2.0 * args.rate, Duration::from_secs_f64(duration));
        measure(
            ctx,
            "overhead",
            targets.clone(),
            Load::Open(schedule),
            Hooks::default(),
        )
        .await
    }
    .await;
    // Clean up the events-off tasks whatever happened.
    let leftovers = off_target.pool.lock().expect("pool lock").drain();
    let http = ctx.http.clone();
    futures::stream::iter(leftovers)
        .for_each_concurrent(16, |id| {
            let http = http.clone();
            let url = format!("{}/tasks/{id}", off.url);
            async move {
                let _ = http.delete(url).send().await;
            }
        })
        .await;
    off.stop().await;
    on.stop().await;
    let (m, _) = result?;
    let on = m.recorders[0].report(m.window);
    let offr = m.recorders[1].report(m.window);
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let run = OverheadRun {
        method,
        rate_per_side: args.rate,
        duration_s: stats::round3(m.window.as_secs_f64()),
        overhead_p50_ms: stats::round3(on.latency.p50_ms - offr.latency.p50_ms),
        overhead_p95_ms: stats::round3(on.latency.p95_ms - offr.latency.p95_ms),
        overhead_p99_ms: stats::round3(on.latency.p99_ms - offr.latency.p99_ms),
        events_on: on,
        events_off: offr,
        pipeline,
        cpu_busy_pct_mean: cpu_mean(&m.timeline),
        cpu_busy_before_pct: m.cpu_busy_before_pct,
        bench_cpu_s: m.bench_cpu_s,
        timeline: m.timeline,
    };
    plot_run(
        &ctx.out,
        "overhead",
        &run.events_on,
        Some(&run.events_off),
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

/// Unrecorded load on `targets` (their task pools are kept).
async fn warm_up(ctx: &Ctx, targets: &[Arc<Target>], rate: f64, seconds: f64) {
    if seconds <= 0.0 {
        return;
    }
    let api = Api::new(
        uuid::Uuid::new_v4(),
        Duration::from_millis(ctx.common.timeout_ms),
    );
    let driver = Driver::new(api, targets.to_vec(), ctx.common.mix.clone());
    let schedule = Schedule::constant(rate, Duration::from_secs_f64(seconds));
    let start = Instant::now();
    let (tx, collector) = load::collect(targets.iter().map(|t| t.name.clone()).collect(), start);
    let in_flight = Arc::new(Semaphore::new(DEFAULT_MAX_IN_FLIGHT));
    load::open_loop(&driver, start, schedule.slots(), &in_flight, &tx).await;
    load::wait_in_flight(&in_flight, DEFAULT_MAX_IN_FLIGHT).await;
    drop(tx);
    let _ = collector.await;
}

/// `backlog`.
pub async fn backlog(ctx: &Ctx, args: &BacklogArgs) -> Result<BacklogRun> {
    let rows = args
        .rows
        .unwrap_or(if ctx.common.quick { 10_000 } else { 100_000 });
    let dev = ctx.common.dev_script.clone();
    eprintln!("backlog: stopping the stack's backend (its relay) with ./dev stop backend");
    instance::dev(&dev, &["stop", "backend"]).await?;
    if args.isolate {
        eprintln!("backlog: stopping the event service until the relay has drained the outbox");
        instance::dev(&dev, &["stop", "event-service"]).await?;
    }
    let result = backlog_inner(ctx, args, rows, &dev).await;
    // Whatever happened, the stack's services run again at the end.
    for service in ["backend", "event-service"] {
        if instance::dev(&dev, &["start", service]).await.is_err() {
            eprintln!("backlog: could not restart {service}; run ./dev start {service}");
        }
    }
    result
}

async fn backlog_inner(ctx: &Ctx, args: &BacklogArgs, rows: u64, dev: &Path) -> Result<BacklogRun> {
    let filler = instance::spawn_backend(
        BackendSpec {
            bin: &ctx.common.backend_bin,
            database_url: &ctx.common.database_url,
            kafka_bootstrap_servers: &ctx.common.kafka.bootstrap_servers,
            events_enabled: true,
            relay_enabled: false,
            log: ctx.out.join("backend-relay-off.log"),
        },
        &ctx.http,
    )
    .await?;
    let method = format!(
        "`./dev stop backend` stops the stack's backend and with it the only relay; todo-bench \
         starts a second backend with RELAY_ENABLED=false on {} and fills the outbox through the \
         API ({} closed-loop workers, the usual mix); then it stops that instance and runs \
         `./dev start backend`, whose relay drains the outbox.{} Rates come from the outbox's \
         published_at and the audit log's processed_at.",
        filler.url,
        args.concurrency,
        if args.isolate {
            " The event service is stopped until the outbox is empty, then started: each \
             rate is measured with the machine to itself."
        } else {
            " The event service consumes while the relay drains, on the same cores."
        }
    );
    let target = Arc::new(Target::new("backend_relay_off", &filler.url));
    let filler_cell = std::sync::Mutex::new(Some(filler));
    let fill_end = std::sync::Mutex::new(0.0f64);
    let fill_started = Instant::now();
    let hooks = Hooks {
        after_load: Some(Box::new(|| {
            Box::pin(async {
                *fill_end.lock().expect("lock") = fill_started.elapsed().as_secs_f64();
                let f = filler_cell.lock().expect("lock").take();
                if let Some(f) = f {
                    f.stop().await;
                }
                eprintln!("backlog: outbox filled; starting the relay with ./dev start backend");
                instance::dev(dev, &["start", "backend"]).await?;
                if args.isolate {
                    let deadline = Instant::now() + Duration::from_secs(ctx.common.drain_timeout_s);
                    while sampler::outbox_depth(&ctx.backend_db).await != Some(0) {
                        if Instant::now() > deadline {
                            return Err(crate::Error::Process(format!(
                                "the relay did not drain the outbox in {} s",
                                ctx.common.drain_timeout_s
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    eprintln!("backlog: outbox drained; starting the event service");
                    instance::dev(dev, &["start", "event-service"]).await?;
                }
                Ok(())
            })
        })),
        ..Default::default()
    };
    let measured = measure(
        ctx,
        "backlog",
        vec![target],
        Load::Closed {
            concurrency: args.concurrency,
            duration: Duration::from_secs(1_800),
            limit: Some(rows),
        },
        hooks,
    )
    .await;
    let leftover = filler_cell.lock().expect("lock").take();
    if let Some(f) = leftover {
        f.stop().await;
    }
    let (m, relay_started_s) = measured?;
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let span = |v: Vec<f64>| -> (f64, f64, usize) {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi, v.len())
    };
    let (p_lo, p_hi, p_n) = span(m.events.iter().filter_map(|e| e.published).collect());
    let (c_lo, c_hi, c_n) = span(m.events.iter().filter_map(|e| e.processed).collect());
    let rate = |n: usize, lo: f64, hi: f64| {
        if n > 1 && hi > lo {
            stats::round3(n as f64 / (hi - lo))
        } else {
            0.0
        }
    };
    let api = m.recorders[0].report(m.window);
    let run = BacklogRun {
        method,
        target_rows: rows,
        filled_rows: m.events.len() as u64,
        fill_s: stats::round3(m.window.as_secs_f64()),
        fill_rps: api.achieved_rps,
        relay_started_s: stats::round3(relay_started_s),
        relay_rows_per_s: rate(p_n, p_lo, p_hi),
        consume_events_per_s: rate(c_n, c_lo, c_hi),
        drain_s: if c_n > 0 {
            stats::round3(c_hi - relay_started_s)
        } else {
            0.0
        },
        api,
        pipeline,
        cpu_busy_pct_mean: cpu_mean(&m.timeline),
        cpu_busy_before_pct: m.cpu_busy_before_pct,
        bench_cpu_s: m.bench_cpu_s,
        timeline: m.timeline,
    };
    plot_run(
        &ctx.out,
        "backlog",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

/// The three plots of a run: latency percentiles, lag and depth, throughput.
pub fn plot_run(
    dir: &Path,
    prefix: &str,
    api: &ApiReport,
    other: Option<&ApiReport>,
    pipeline: &PipelineReport,
    timeline: &[TimelinePoint],
) -> Result<()> {
    let pts = |f: &dyn Fn(&load::SecondPoint) -> f64, a: &ApiReport| -> Vec<(f64, f64)> {
        a.per_second
            .iter()
            .filter(|s| s.ok > 0)
            .map(|s| (s.t_s as f64 + 0.5, f(s)))
            .collect()
    };
    let name = |a: &ApiReport, what: &str| {
        if other.is_some() {
            format!("{} {what}", a.target)
        } else {
            format!("API {what}")
        }
    };
    let mut latency = vec![
        Series::new(&name(api, "p50"), pts(&|s| s.p50_ms, api)),
        Series::new(&name(api, "p99"), pts(&|s| s.p99_ms, api)),
    ];
    if let Some(o) = other {
        latency.push(Series::new(&name(o, "p50"), pts(&|s| s.p50_ms, o)));
        latency.push(Series::new(&name(o, "p99"), pts(&|s| s.p99_ms, o)));
    } else {
        latency.push(Series::new(&name(api, "p95"), pts(&|s| s.p95_ms, api)));
    }
    let e2e: Vec<(f64, f64)> = pipeline
        .per_second
        .iter()
        .filter(|s| s.created > 0)
        .map(|s| (s.t_s as f64 + 0.5, s.e2e_p99_ms))
        .collect();
    latency.push(Series::new("end-to-end p99", e2e));
    plot::line_chart(
        &dir.join(format!("{prefix}-latency.svg")),
        &format!("{prefix}: latency per second (log scale)"),
        "seconds",
        "ms",
        &latency,
        true,
    )?;
    let tl = |f: &dyn Fn(&TimelinePoint) -> Option<f64>| -> Vec<(f64, f64)> {
        timeline
            .iter()
            .filter_map(|p| f(p).map(|v| (p.t_s, v)))
            .collect()
    };
    plot::line_chart(
        &dir.join(format!("{prefix}-lag.svg")),
        &format!("{prefix}: consumer lag and outbox depth"),
        "seconds",
        "events",
        &[
            Series::new(
                "consumer lag (Kafka, committed)",
                tl(&|p| p.consumer_lag.map(|v| v as f64)),
            ),
            Series::new("outbox depth", tl(&|p| p.outbox_depth.map(|v| v as f64))),
            Series::new(
                "written, not yet processed (DB)",
                pipeline
                    .per_second
                    .iter()
                    .map(|s| (s.t_s as f64 + 1.0, s.unprocessed as f64))
                    .collect(),
            ),
        ],
        false,
    )?;
    let per = |f: &dyn Fn(&pipeline::PipelineSecond) -> u64| -> Vec<(f64, f64)> {
        pipeline
            .per_second
            .iter()
            .map(|s| (s.t_s as f64 + 0.5, f(s) as f64))
            .collect()
    };
    let mut throughput = vec![Series::new(
        "API ok/s",
        api.per_second
            .iter()
            .map(|s| (s.t_s as f64 + 0.5, s.ok as f64))
            .collect(),
    )];
    throughput.push(Series::new("events written/s", per(&|s| s.created)));
    throughput.push(Series::new("published/s", per(&|s| s.published)));
    throughput.push(Series::new("processed/s", per(&|s| s.processed)));
    plot::line_chart(
        &dir.join(format!("{prefix}-throughput.svg")),
        &format!("{prefix}: throughput"),
        "seconds",
        "per second",
        &throughput,
        false,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_bounded_when_requests_succeed_and_the_pipeline_keeps_up() {
        assert!(step_verdict(1_000.0, 10.0, 10_000, 0, 120).0);
        let (ok, why) = step_verdict(1_000.0, 10.0, 10_000, 0, 900);
        assert!(!ok && why.contains("behind"), "{why}");
        let (ok, why) = step_verdict(1_000.0, 10.0, 9_000, 0, 0);
        assert!(!ok && why.contains("achieved"), "{why}");
        let (ok, why) = step_verdict(1_000.0, 10.0, 9_800, 200, 0);
        assert!(!ok && why.contains("failed"), "{why}");
        // Small rates get a floor of 200 events.
        assert!(step_verdict(100.0, 10.0, 1_000, 0, 150).0);
    }
}
