//! The load drivers: open loop (sends scheduled by the clock, latency from the
//! intended send time) and closed loop (N workers, each sending its next
//! request when the previous one answered: maximum throughput, but latency
//! hides the waiting the workers did not do; use it for throughput only).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::client::{Api, Outcome, Target};
use crate::mix::{Mix, Op, Planned};
use crate::schedule::Slot;
use crate::stats::{self, LatencySummary};

/// Counters the progress bar and the sampler read while the load runs.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests sent.
    pub sent: AtomicU64,
    /// 2xx answers.
    pub ok: AtomicU64,
    /// Everything else.
    pub failed: AtomicU64,
}

/// What the drivers share: the client, the targets, the mix.
#[derive(Debug)]
pub struct Driver {
    /// HTTP client.
    pub api: Api,
    /// Backends; request `seq` goes to target `seq % len` (the overhead
    /// scenario interleaves two).
    pub targets: Vec<Arc<Target>>,
    /// Request mix.
    pub mix: Mix,
    /// Live counters.
    pub live: Arc<Live>,
    seq: AtomicU64,
}

/// One finished request, as the collector receives it.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// Target index.
    pub arm: usize,
    /// Schedule step (ramp), 0 otherwise.
    pub step: usize,
    /// What was sent.
    pub planned: Planned,
    /// How it ended.
    pub outcome: Outcome,
    /// Intended send time (open loop) or actual send time (closed loop).
    pub intended: Instant,
    /// Actual send time.
    pub sent: Instant,
    /// Answer received.
    pub done: Instant,
}

impl Driver {
    /// A driver over `targets`.
    pub fn new(api: Api, targets: Vec<Arc<Target>>, mix: Mix) -> Arc<Self> {
        Arc::new(Self {
            api,
            targets,
            mix,
            live: Arc::new(Live::default()),
            seq: AtomicU64::new(0),
        })
    }

    /// Plans, sends and settles one request.
    async fn one(&self, step: usize, intended: Instant) -> Done {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let arm = (seq % self.targets.len() as u64) as usize;
        let target = &self.targets[arm];
        let planned = {
            let mut rng = rand::rng();
            let op = self.mix.pick(rng.random());
            let r: f64 = rng.random();
            target.pool.lock().expect("pool lock").plan(op, r)
        };
        self.live.sent.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let outcome = self.api.send(target, planned, seq).await;
        let done = Instant::now();
        target
            .pool
            .lock()
            .expect("pool lock")
            .settle(planned, outcome.is_ok(), outcome.created());
        if outcome.is_ok() {
            self.live.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.live.failed.fetch_add(1, Ordering::Relaxed);
        }
        Done {
            arm,
            step,
            planned,
            outcome,
            intended,
            sent,
            done,
        }
    }
}

/// Largest number of requests in flight in open loop. A send that finds them
/// all busy waits for one, and that wait counts in its latency.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2_048;

/// Sends on `slots` (times from `start`) without waiting for answers, up to
/// `in_flight` requests at once. Returns when the last slot is sent; answers
/// go to `tx`. Await [`wait_in_flight`] for the stragglers.
pub async fn open_loop(
    driver: &Arc<Driver>,
    start: Instant,
    slots: impl Iterator<Item = Slot>,
    in_flight: &Arc<Semaphore>,
    tx: &mpsc::UnboundedSender<Done>,
) {
    for slot in slots {
        let intended = start + slot.at;
        tokio::time::sleep_until(intended).await;
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let driver = driver.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let done = driver.one(slot.step, intended).await;
            drop(permit);
            let _ = tx.send(done);
        });
    }
}

/// Waits until no request started by [`open_loop`] is in flight.
pub async fn wait_in_flight(in_flight: &Arc<Semaphore>, max: usize) {
    let _all = in_flight
        .acquire_many(max as u32)
        .await
        .expect("semaphore is never closed");
}

/// `concurrency` workers send back to back until `duration` passes or
/// `limit` requests were sent.
pub async fn closed_loop(
    driver: &Arc<Driver>,
    concurrency: usize,
    duration: Duration,
    limit: Option<u64>,
    tx: &mpsc::UnboundedSender<Done>,
) {
    let deadline = Instant::now() + duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let driver = driver.clone();
        let tx = tx.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Some(limit) = limit {
                    if issued.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                }
                let now = Instant::now();
                let done = driver.one(0, now).await;
                let _ = tx.send(done);
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

/// [`closed_loop`] from now, each target's answers recorded: the recorders
/// and how long the run took.
pub async fn closed_run(
    driver: &Arc<Driver>,
    concurrency: usize,
    duration: Duration,
) -> crate::Result<(Vec<Recorder>, Duration)> {
    let start = Instant::now();
    let names = driver.targets.iter().map(|t| t.name.clone()).collect();
    let (tx, collector) = collect(names, start);
    closed_loop(driver, concurrency, duration, None, &tx).await;
    let took = start.elapsed();
    drop(tx);
    let recorders = collector
        .await
        .map_err(|e| crate::Error::Process(e.to_string()))?;
    Ok((recorders, took))
}

/// Per-second figures of one target, by intended send second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Second from the start of the run.
    pub t_s: u64,
    /// Requests whose intended send time falls in this second.
    pub sent: u64,
    /// Of those, 2xx.
    pub ok: u64,
    /// Of those, anything else.
    pub failed: u64,
    /// Latency percentiles of the successful ones.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// API figures of one target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiReport {
    /// Target name.
    pub target: String,
    /// Requests sent.
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    /// Count per status code or error kind (`timeout`, `connect`, `error`).
    pub statuses: BTreeMap<String, u64>,
    /// Successful requests per op.
    pub ok_per_op: BTreeMap<String, u64>,
    /// Successful requests per second over the send window.
    pub achieved_rps: f64,
    /// Latency of successful requests from the intended send time (open loop;
    /// the actual send time in closed loop).
    pub latency: LatencySummary,
    /// Latency from the actual send time (service time as the client saw it).
    pub service_time: LatencySummary,
    /// Latency per op.
    pub latency_per_op: BTreeMap<String, LatencySummary>,
    /// Per second.
    pub per_second: Vec<SecondPoint>,
}

/// Accumulates the answers of one target.
#[derive(Clone, Debug)]
pub struct Recorder {
    name: String,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    per_op: Vec<Histogram<u64>>,
    per_step: BTreeMap<usize, (Histogram<u64>, u64, u64)>,
    per_second: Vec<(Histogram<u64>, u64, u64)>,
    statuses: BTreeMap<String, u64>,
    ok_per_op: [u64; Op::ALL.len()],
    sent: u64,
    ok: u64,
}

fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds are valid")
}

impl Recorder {
    /// An empty recorder for target `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            latency: stats::histogram(),
            service: stats::histogram(),
            per_op: Op::ALL.iter().map(|_| stats::histogram()).collect(),
            per_step: BTreeMap::new(),
            per_second: Vec::new(),
            statuses: BTreeMap::new(),
            ok_per_op: [0; Op::ALL.len()],
            sent: 0,
            ok: 0,
        }
    }

    /// Adds one answer; `start` is the start of the run.
    pub fn record(&mut self, d: &Done, start: Instant) {
        self.sent += 1;
        *self.statuses.entry(d.outcome.key(d.planned)).or_default() += 1;
        let second = d.intended.saturating_duration_since(start).as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second
                .resize_with(second + 1, || (second_histogram(), 0, 0));
        }
        let step = self
            .per_step
            .entry(d.step)
            .or_insert_with(|| (stats::histogram(), 0, 0));
        let latency = d.done.saturating_duration_since(d.intended).as_micros() as i64;
        if d.outcome.is_ok() {
            self.ok += 1;
            self.ok_per_op[d.planned.op().index()] += 1;
            stats::record_micros(&mut self.latency, latency);
            stats::record_micros(
                &mut self.service,
                d.done.saturating_duration_since(d.sent).as_micros() as i64,
            );
            stats::record_micros(&mut self.per_op[d.planned.op().index()], latency);
            stats::record_micros(&mut step.0, latency);
            step.1 += 1;
            let s = &mut self.per_second[second];
            stats::record_micros(&mut s.0, latency);
            s.1 += 1;
        } else {
            step.2 += 1;
            self.per_second[second].2 += 1;
        }
    }

    /// The answers of several targets as one (`name`: `a+b`), for a load
    /// spread over several instances of one service.
    pub fn merged(recorders: &[Recorder]) -> Recorder {
        let names: Vec<&str> = recorders.iter().map(|r| r.name.as_str()).collect();
        let mut all = Recorder::new(&names.join("+"));
        for r in recorders {
            all.add(r);
        }
        all
    }

    fn add(&mut self, other: &Recorder) {
        let add = |to: &mut Histogram<u64>, from: &Histogram<u64>| {
            to.add(from).expect("histograms of one layout add up");
        };
        add(&mut self.latency, &other.latency);
        add(&mut self.service, &other.service);
        for (to, from) in self.per_op.iter_mut().zip(&other.per_op) {
            add(to, from);
        }
        for (step, (h, ok, failed)) in &other.per_step {
            let to = self
                .per_step
                .entry(*step)
                .or_insert_with(|| (stats::histogram(), 0, 0));
            add(&mut to.0, h);
            to.1 += ok;
            to.2 += failed;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second
                .resize_with(other.per_second.len(), || (second_histogram(), 0, 0));
        }
        for (to, (h, ok, failed)) in self.per_second.iter_mut().zip(&other.per_second) {
            add(&mut to.0, h);
            to.1 += ok;
            to.2 += failed;
        }
        for (status, n) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += n;
        }
        for (to, n) in self.ok_per_op.iter_mut().zip(other.ok_per_op) {
            *to += n;
        }
        self.sent += other.sent;
        self.ok += other.ok;
    }

    /// Latency and counts (ok, failed) of schedule step `step`.
    pub fn step(&self, step: usize) -> (LatencySummary, u64, u64) {
        self.per_step
            .get(&step)
            .map(|(h, ok, failed)| (LatencySummary::of(h), *ok, *failed))
            .unwrap_or_default()
    }

    /// The report over a send window of `window`.
    pub fn report(&self, window: Duration) -> ApiReport {
        let mut latency_per_op = BTreeMap::new();
        let mut ok_per_op = BTreeMap::new();
        for op in Op::ALL {
            ok_per_op.insert(op.name().to_owned(), self.ok_per_op[op.index()]);
            if self.ok_per_op[op.index()] > 0 {
                latency_per_op.insert(
                    op.name().to_owned(),
                    LatencySummary::of(&self.per_op[op.index()]),
                );
            }
        }
        ApiReport {
            target: self.name.clone(),
            requests: self.sent,
            ok: self.ok,
            failed: self.sent - self.ok,
            statuses: self.statuses.clone(),
            ok_per_op,
            achieved_rps: stats::round3(self.ok as f64 / window.as_secs_f64().max(1e-9)),
            latency: LatencySummary::of(&self.latency),
            service_time: LatencySummary::of(&self.service),
            latency_per_op,
            per_second: self
                .per_second
                .iter()
                .enumerate()
                .map(|(t, (h, ok, failed))| {
                    let s = LatencySummary::of(h);
                    SecondPoint {
                        t_s: t as u64,
                        sent: ok + failed,
                        ok: *ok,
                        failed: *failed,
                        p50_ms: s.p50_ms,
                        p95_ms: s.p95_ms,
                        p99_ms: s.p99_ms,
                        max_ms: s.max_ms,
                    }
                })
                .collect(),
        }
    }
}

/// Receives answers until every sender is gone; one recorder per target.
pub fn collect(
    names: Vec<String>,
    start: Instant,
) -> (
    mpsc::UnboundedSender<Done>,
    tokio::task::JoinHandle<Vec<Recorder>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let handle = tokio::spawn(async move {
        let mut recorders: Vec<Recorder> = names.iter().map(|n| Recorder::new(n)).collect();
        while let Some(d) = rx.recv().await {
            recorders[d.arm].record(&d, start);
        }
        recorders
    });
    (tx, handle)
}

/// The one-line summary of `load`: `requests N ok N failed N p99 X ms`.
pub fn summary_line(r: &ApiReport) -> String {
    format!(
        "requests {} ok {} failed {} p99 {:.1} ms",
        r.requests, r.ok, r.failed, r.latency.p99_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::TransportError;

    fn done(intended_ms: u64, latency_ms: u64, outcome: Outcome, start: Instant) -> Done {
        let intended = start + Duration::from_millis(intended_ms);
        Done {
            arm: 0,
            step: 0,
            planned: Planned::Create,
            outcome,
            intended,
            // Sent late: service time is shorter than latency.
            sent: intended + Duration::from_millis(latency_ms / 2),
            done: intended + Duration::from_millis(latency_ms),
        }
    }

    #[test]
    fn the_targets_of_one_load_merge_into_one_report() {
        let start = Instant::now();
        let mut a = Recorder::new("backend");
        a.record(&done(0, 10, Outcome::Ok { created: Some(1) }, start), start);
        a.record(&done(200, 5, Outcome::Status(503), start), start);
        let mut b = Recorder::new("backend-2");
        b.record(
            &done(2_100, 40, Outcome::Ok { created: Some(2) }, start),
            start,
        );
        let all = Recorder::merged(&[a, b]);
        let rep = all.report(Duration::from_secs(3));
        assert_eq!(rep.target, "backend+backend-2");
        assert_eq!((rep.requests, rep.ok, rep.failed), (3, 2, 1));
        assert_eq!(rep.statuses["201"], 2);
        assert_eq!(rep.statuses["503"], 1);
        assert!((rep.latency.max_ms - 40.0).abs() < 0.1);
        // Seconds 0 and 2 from the two targets, 1 empty.
        let per_second: Vec<(u64, u64)> = rep.per_second.iter().map(|s| (s.ok, s.failed)).collect();
        assert_eq!(per_second, [(1, 1), (0, 0), (1, 0)]);
        assert_eq!(all.step(0).1, 2);
    }

    #[test]
    fn latency_counts_from_the_intended_send_time_and_failures_are_counted_apart() {
        let start = Instant::now();
        let mut r = Recorder::new("backend");
        r.record(&done(0, 10, Outcome::Ok { created: Some(1) }, start), start);
        r.record(
            &done(500, 30, Outcome::Ok { created: Some(2) }, start),
            start,
        );
        r.record(&done(1_200, 5, Outcome::Status(503), start), start);
        r.record(
            &done(1_300, 5, Outcome::Transport(TransportError::Timeout), start),
            start,
        );
        let rep = r.report(Duration::from_secs(2));
        assert_eq!((rep.requests, rep.ok, rep.failed), (4, 2, 2));
        assert_eq!(rep.statuses["201"], 2);
        assert_eq!(rep.statuses["503"], 1);
        assert_eq!(rep.statuses["timeout"], 1);
        assert!((rep.latency.max_ms - 30.0).abs() < 0.1);
        assert!((rep.service_time.max_ms - 15.0).abs() < 0.1);
        assert_eq!(rep.per_second.len(), 2);
        assert_eq!((rep.per_second[0].ok, rep.per_second[1].failed), (2, 2));
        assert_eq!(rep.achieved_rps, 1.0);
    }

    #[test]
    fn the_load_summary_line_keeps_its_format() {
        let rep = ApiReport {
            requests: 10,
            ok: 9,
            failed: 1,
            latency: LatencySummary {
                p99_ms: 12.345,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(summary_line(&rep), "requests 10 ok 9 failed 1 p99 12.3 ms");
    }
}
