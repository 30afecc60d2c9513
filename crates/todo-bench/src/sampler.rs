//! About once a second while a scenario runs: consumer lag (from Kafka: high
//! watermark minus the event service group's committed offset), outbox depth
//! (from the backend's database), and the services' /metrics counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::load::Live;
use crate::stats::{self, PromSample};

/// One sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds from the start of the run.
    pub t_s: f64,
    /// Requests sent so far (cumulative).
    pub requests_sent: u64,
    /// 2xx answers so far.
    pub requests_ok: u64,
    /// Failed requests so far.
    pub requests_failed: u64,
    /// Outbox rows not yet published (whole outbox).
    pub outbox_depth: Option<i64>,
    /// Sum over the task topics' partitions of high watermark minus the
    /// consumer group's committed offset.
    pub consumer_lag: Option<i64>,
    /// The largest per-partition lag.
    pub consumer_lag_max_partition: Option<i64>,
    /// The event service's own `consumer_lag` gauge, summed (sampled by the
    /// service every few seconds).
    pub consumer_lag_metric: Option<f64>,
    /// Backend `events_published_total`, summed over event types.
    pub events_published_total: Option<f64>,
    /// Backend `events_published_failures_total`.
    pub events_publish_failures_total: Option<f64>,
    /// Event service `events_consumed_total`, summed.
    pub events_consumed_total: Option<f64>,
    /// Share of the machine's CPU time that was busy since the previous
    /// sample (all processes, from /proc/stat).
    pub cpu_busy_pct: Option<f64>,
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
pub fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

/// Reads the consumer group's lag straight from Kafka (does not join the group).
pub struct LagProbe {
    consumer: BaseConsumer,
    partitions: Vec<(String, i32)>,
}

impl LagProbe {
    /// A probe of `group` over `topics`; blocking (metadata call).
    pub fn new(kafka: &todo_kafka::KafkaArgs, group: &str, topics: &[String]) -> Result<Self> {
        let cfg = kafka
            .client_config(&[
                ("group.id", group.to_owned()),
                ("enable.auto.commit", "false".into()),
            ])
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        let consumer: BaseConsumer = cfg.create()?;
        let mut partitions = Vec::new();
        for t in topics {
            for (p, _) in todo_kafka::topic_partitions(&consumer, t, Duration::from_secs(5))? {
                partitions.push((t.clone(), p));
            }
        }
        Ok(Self {
            consumer,
            partitions,
        })
    }

    /// Partitions of the topics it watches.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// (total lag, largest partition lag); blocking.
    pub fn sample(&self) -> Result<(i64, i64)> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &self.partitions {
            tpl.add_partition(t, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(2))?;
        let mut total = 0;
        let mut max = 0;
        for e in committed.elements() {
            let (low, high) =
                self.consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))?;
            let from = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            let lag = (high - from).max(0);
            total += lag;
            max = max.max(lag);
        }
        Ok((total, max))
    }
}

/// Where the sampler looks.
#[derive(Clone)]
pub struct Sources {
    /// Backend database (outbox depth).
    pub backend_db: PgPool,
    /// The backends' /metrics URLs.
    pub backend_metrics: Vec<String>,
    /// The event services' /metrics URLs.
    pub events_metrics: Vec<String>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Kafka lag probe, when Kafka is reachable.
    pub lag: Option<Arc<LagProbe>>,
}

/// Scrapes one /metrics endpoint (`None` when it does not answer).
pub async fn scrape(http: &reqwest::Client, url: &str) -> Option<Vec<PromSample>> {
    let r = http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    Some(stats::parse_prometheus(&r.text().await.ok()?))
}

/// Scrapes the /metrics endpoints of every instance of one service, at once:
/// their samples together, so that sums and histogram buckets add up over
/// the instances. `None` unless every one answered: a sum that misses an
/// instance would read as a counter reset or as events not consumed.
pub async fn scrape_all(http: &reqwest::Client, urls: &[String]) -> Option<Vec<PromSample>> {
    let scraped = futures::future::join_all(urls.iter().map(|u| scrape(http, u))).await;
    let answered: Option<Vec<Vec<PromSample>>> = scraped.into_iter().collect();
    answered.map(|a| a.concat())
}

/// Outbox rows not yet published.
pub async fn outbox_depth(pool: &PgPool) -> Option<i64> {
    todo_outbox::backlog::unpublished_count(pool).await.ok()
}

impl Sources {
    /// One sample at `t_s`.
    pub async fn sample(&self, t_s: f64, live: &Live) -> TimelinePoint {
        let lag = self
            .lag
            .clone()
            .map(|probe| tokio::task::spawn_blocking(move || probe.sample().ok()));
        let (depth, backend, events) = tokio::join!(
            outbox_depth(&self.backend_db),
            scrape_all(&self.http, &self.backend_metrics),
            scrape_all(&self.http, &self.events_metrics),
        );
        let lag = match lag {
            Some(h) => h.await.ok().flatten(),
            None => None,
        };
        TimelinePoint {
            t_s: stats::round3(t_s),
            requests_sent: live.sent.load(Ordering::Relaxed),
            requests_ok: live.ok.load(Ordering::Relaxed),
            requests_failed: live.failed.load(Ordering::Relaxed),
            outbox_depth: depth,
            consumer_lag: lag.map(|l| l.0),
            consumer_lag_max_partition: lag.map(|l| l.1),
            consumer_lag_metric: events
                .as_ref()
                .and_then(|s| stats::sum_of(s, "consumer_lag")),
            events_published_total: backend
                .as_ref()
                .and_then(|s| stats::sum_of(s, "events_published_total")),
            events_publish_failures_total: backend
                .as_ref()
                .map(|s| stats::sum_of(s, "events_published_failures_total").unwrap_or(0.0)),
            events_consumed_total: events
                .as_ref()
                .and_then(|s| stats::sum_of(s, "events_consumed_total")),
            cpu_busy_pct: None,
        }
    }
}

/// A running sampler: samples every second into `points` until stopped.
pub struct Sampler {
    /// The samples so far.
    pub points: Arc<Mutex<Vec<TimelinePoint>>>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling; `progress` gets a message per sample.
    pub fn start(
        sources: Sources,
        live: Arc<Live>,
        start: Instant,
        progress: Option<ProgressBar>,
    ) -> Self {
        let points = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let handle = tokio::spawn({
            let points = points.clone();
            let cancel = cancel.clone();
            async move {
                let mut prev_ok = 0;
                let mut prev_cpu = cpu_jiffies();
                let mut next = start;
                loop {
                    // NB: about once a second, with jitter: a fixed 1 s period
                    // beats against the consumer's periodic offset commits and
                    // would sample the committed-offset lag at one phase only.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(next) => {}
                    }
                    next = Instant::now() + Duration::from_millis(rand::random_range(700..=1_300));
                    let t = start.elapsed().as_secs_f64();
                    let mut p = sources.sample(t, &live).await;
                    let cpu = cpu_jiffies();
                    if let (Some((b0, t0)), Some((b1, t1))) = (prev_cpu, cpu) {
                        if t1 > t0 {
                            p.cpu_busy_pct =
                                Some(stats::round3(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64));
                        }
                    }
                    prev_cpu = cpu;
                    if let Some(pb) = &progress {
                        pb.set_position(t as u64);
                        pb.set_message(format!(
                            "{} ok, {} failed, lag {}, outbox {}, cpu {}%",
                            p.requests_ok - prev_ok.min(p.requests_ok),
                            p.requests_failed,
                            p.consumer_lag.map_or("?".into(), |l| l.to_string()),
                            p.outbox_depth.map_or("?".into(), |l| l.to_string()),
                            p.cpu_busy_pct.map_or("?".into(), |c| format!("{c:.0}")),
                        ));
                    }
                    prev_ok = p.requests_ok;
                    points.lock().expect("points lock").push(p);
                }
            }
        });
        Self {
            points,
            cancel,
            handle,
        }
    }

    /// The latest sample.
    pub fn last(&self) -> Option<TimelinePoint> {
        self.points.lock().expect("points lock").last().cloned()
    }

    /// Stops and returns every sample.
    pub async fn stop(self) -> Vec<TimelinePoint> {
        self.cancel.cancel();
        let _ = self.handle.await;
        let points = self.points.lock().expect("points lock").clone();
        points
    }
}
