//! The report's JSON model: stable field names (`schema_version` changes when
//! a field is renamed or removed).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::load::ApiReport;
use crate::pipeline::PipelineReport;
use crate::sampler::TimelinePoint;
use crate::stats::LatencySummary;

/// Version of the JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The machine the figures come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// How fast the machine was when the run started (absent in reports of
    /// builds before it was measured).
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// The machine's speed before the load (`calibrate`): lower is faster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Milliseconds of a fixed single-thread workload (sorting, hashing,
    /// allocating, formatting), the median of 15 runs.
    pub cpu_ms: f64,
    /// Median microseconds of an 8 KiB write and `fdatasync` in the report
    /// directory (a database commit's floor on this disk).
    pub fsync_us: Option<f64>,
}

/// Percentiles of a service's Prometheus histogram, counted over the run:
/// the event service's `event_processing_duration_seconds` (read to
/// committed) or the backend's `event_publish_duration_seconds` (batch handed
/// to the producer to each acknowledgement).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessingReport {
    /// Events observed by the histogram during the run.
    pub count: f64,
    /// Median (bucket-interpolated).
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Lag and outbox depth over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LagReport {
    /// Samples taken.
    pub samples: u64,
    /// Largest consumer lag (sum over partitions, committed offsets).
    pub consumer_lag_max: Option<i64>,
    /// Median consumer lag.
    pub consumer_lag_p50: Option<i64>,
    /// Largest single-partition lag.
    pub consumer_lag_max_partition: Option<i64>,
    /// Largest outbox depth.
    pub outbox_depth_max: Option<i64>,
    /// Largest count of written-but-unprocessed events at a second's end
    /// (from the database timestamps: the pipeline's true backlog).
    pub unprocessed_max: u64,
}

/// The machine's CPU around one run: every run reports these, because the
/// machine is shared and its other work moves the figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuFigures {
    /// Mean share of the machine's CPU busy during the run (every process,
    /// ours and others').
    pub cpu_busy_pct_mean: Option<f64>,
    /// Share of the machine's CPU busy in the 2 s before the load (other
    /// work on the machine: builds, tests).
    pub cpu_busy_before_pct: Option<f64>,
    /// CPU seconds todo-bench itself used during the run (it shares the machine).
    pub bench_cpu_s: Option<f64>,
}

/// One load run (steady, max, or the fill of backlog).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadRun {
    /// `open` (scheduled by the clock) or `closed` (back to back).
    pub mode: String,
    /// Offered rate (open loop).
    pub rate_per_s: Option<f64>,
    /// Workers (closed loop).
    pub concurrency: Option<u64>,
    /// Send window.
    pub duration_s: f64,
    /// Unrecorded load at the same rate before the window (0 in reports
    /// from before warm-ups).
    #[serde(default)]
    pub warmup_s: f64,
    /// How the warm-up ended: `true` once the pipeline's latency had
    /// settled, `false` when it was still falling at the warm-up's maximum,
    /// `null` for a warm-up of fixed length (`--warmup-s`, `--quick`).
    #[serde(default)]
    pub warmup_settled: Option<bool>,
    /// The pipeline's mean latency in ms per 5 s window of the warm-up
    /// (write to effects: relay pickup, delivery and processing, from the
    /// services' histograms); `null` for a window without events.
    #[serde(default)]
    pub warmup_window_means_ms: Vec<Option<f64>>,
    /// Request mix.
    pub mix: String,
    /// The run's correlation id (outbox and audit log rows carry it).
    pub correlation_id: String,
    /// API figures.
    pub api: ApiReport,
    /// Pipeline figures.
    pub pipeline: PipelineReport,
    /// Event service processing time.
    pub processing: ProcessingReport,
    /// Relay publish time (send to Kafka acknowledgement).
    pub publish: ProcessingReport,
    /// Relay pickup time: an event's write (outbox `created_at`) to the
    /// relay reading it (none in reports from before it was measured).
    #[serde(default)]
    pub pickup: ProcessingReport,
    /// Kafka delivery: a record's Kafka timestamp (the relay's send) to the
    /// event service reading it.
    #[serde(default)]
    pub delivery: ProcessingReport,
    /// Lag and outbox depth.
    pub lag: LagReport,
    /// Seconds waited after the send window for the last events.
    pub drain_wait_s: f64,
    /// The machine's CPU around the run (the JSON keeps the three fields flat).
    #[serde(flatten)]
    pub cpu: CpuFigures,
    /// Samples, once a second.
    pub timeline: Vec<TimelinePoint>,
}

/// The events-on vs events-off comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OverheadRun {
    /// What differs between the sides: `events` (EVENTS_ENABLED) or
    /// `export` (span export, `--traces`).
    #[serde(default)]
    pub compared: String,
    /// With `--traces`: export requests the sink received (0 would mean the
    /// "on" side exported nothing).
    #[serde(default)]
    pub exports_received: Option<u64>,
    /// How the two sides were run.
    pub method: String,
    /// Offered rate per side.
    pub rate_per_side: f64,
    /// Send window.
    pub duration_s: f64,
    /// Events on.
    pub events_on: ApiReport,
    /// Events off.
    pub events_off: ApiReport,
    /// p50(on) - p50(off).
    pub overhead_p50_ms: f64,
    /// p95(on) - p95(off).
    pub overhead_p95_ms: f64,
    /// p99(on) - p99(off).
    pub overhead_p99_ms: f64,
    /// Events of the events-on side.
    pub pipeline: PipelineReport,
    /// The machine's CPU around the run (the JSON keeps the three fields flat).
    #[serde(flatten)]
    pub cpu: CpuFigures,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
}

/// One rate of the ramp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RampStep {
    /// Offered rate.
    pub rate: f64,
    /// Successful requests per second.
    pub achieved_rps: f64,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub failed: u64,
    /// API latency p99 (from the intended send time).
    pub api_p99_ms: f64,
    /// Events processed per second inside the step's window.
    pub processed_per_s: f64,
    /// End-to-end p99 of the events written in the step.
    pub e2e_p99_ms: f64,
    /// Written but unprocessed at the step's end.
    pub unprocessed_at_end: u64,
    /// Whether the pipeline kept up.
    pub bounded: bool,
    /// Why not, if not.
    pub why: String,
}

/// The ramp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RampRun {
    /// Length of each step.
    pub step_s: f64,
    /// The steps run (the ramp stops after the first unbounded one).
    pub steps: Vec<RampStep>,
    /// Highest offered rate at which the pipeline kept up.
    pub highest_bounded_rate: Option<f64>,
    /// Events processed per second in that step.
    pub highest_sustained_events_per_s: f64,
    /// API figures over the whole ramp.
    pub api: ApiReport,
    /// Pipeline figures over the whole ramp.
    pub pipeline: PipelineReport,
    /// The machine's CPU around the run (the JSON keeps the three fields flat).
    #[serde(flatten)]
    pub cpu: CpuFigures,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
}

/// The steady load right after a restart (`settle`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SettleRun {
    /// What `./dev` restarted, in start order.
    pub restarted: Vec<String>,
    /// Seconds the restart took (stop, then start until healthy).
    pub restart_s: f64,
    /// When the run reached its steady state.
    pub settling: Settling,
    /// The load, measured from its first request.
    pub run: LoadRun,
}

/// When a run's per-second end-to-end p99 came down to its steady state
/// for good (see `scenario::settling`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settling {
    /// The steady state: the median per-second p99 of the run's second half.
    pub steady_e2e_p99_ms: Option<f64>,
    /// A second is settled when its p99 is at most this.
    pub bound_ms: Option<f64>,
    /// Seconds from the first request to the first second after which
    /// every second is settled.
    pub settled_after_s: Option<f64>,
    /// The worst per-second p99 before that.
    pub worst_e2e_p99_ms_before: Option<f64>,
    /// False when the run's last second was still above the bound.
    pub settled_in_run: bool,
}

/// Instances of the services on the three-broker stack (`scale`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleRun {
    /// Brokers in the cluster.
    pub brokers: usize,
    /// Partitions of the task topics together.
    pub partitions: usize,
    /// One ramp per configuration.
    pub configs: Vec<ScaleConfig>,
    /// Event services joining and leaving under a constant load.
    pub rebalance: Option<RebalanceRun>,
}

/// One configuration of `scale`: its ramp, summed up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleConfig {
    /// Backends (the load goes to them round robin; one relay leads).
    pub backends: usize,
    /// Event services in the consumer group.
    pub event_services: usize,
    /// Seconds from starting the extra instances until every event service
    /// had partitions and all of them were assigned (`None`: not within 60 s).
    pub balanced_after_s: Option<f64>,
    /// Highest offered rate at which the pipeline kept up.
    pub highest_bounded_rate: Option<f64>,
    /// Events processed per second at that rate.
    pub events_per_s: f64,
    /// End-to-end p99 of the events written at that rate.
    pub e2e_p99_ms: Option<f64>,
    /// Largest consumer lag (summed over partitions) sampled while the
    /// ramp kept up.
    pub consumer_lag_max: Option<i64>,
    /// Why the ramp stopped (empty when every rate kept up).
    pub stopped_because: String,
    /// The ramp.
    pub ramp: RampRun,
}

/// Event services joining and leaving the group under a constant load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RebalanceRun {
    /// Offered rate.
    pub rate: f64,
    /// The steady state before the first change: median per-second
    /// end-to-end p99.
    pub steady_e2e_p99_ms: Option<f64>,
    /// A second counts as absorbed at or below this p99.
    pub bound_ms: Option<f64>,
    /// The changes, in order.
    pub changes: Vec<MembershipChange>,
    /// The load (stage histograms: the stack's own event service only).
    pub run: LoadRun,
}

/// One change of the consumer group's members, and how the pipeline took it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// Seconds from the start of the load.
    pub at_s: f64,
    /// What happened.
    pub what: String,
    /// Event services running after it.
    pub instances_after: usize,
    /// Seconds from the change until the per-second end-to-end p99 was back
    /// within the bound for good (judged on 5-second windows, as `settle`);
    /// `None`: not before the next change or the end.
    pub absorbed_after_s: Option<f64>,
    /// Seconds whose end-to-end p99 was above the bound until the next
    /// change (a short stall shows here even when the windows absorb it).
    pub seconds_over_bound: u64,
    /// The worst per-second end-to-end p99 until the next change.
    pub worst_e2e_p99_ms: Option<f64>,
    /// The largest consumer lag sampled until the next change.
    pub consumer_lag_max: Option<i64>,
    /// The fewest events processed in one second until the next change.
    pub min_processed_per_s: Option<u64>,
}

/// The backlog drain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BacklogRun {
    /// How the relay was stopped and restarted.
    pub method: String,
    /// Rows asked for.
    pub target_rows: u64,
    /// Outbox rows written by the fill.
    pub filled_rows: u64,
    /// Fill time.
    pub fill_s: f64,
    /// Fill rate (API requests per second, closed loop).
    pub fill_rps: f64,
    /// Seconds from the start when the relay started again.
    pub relay_started_s: f64,
    /// Published rows / (last published_at - first published_at).
    pub relay_rows_per_s: f64,
    /// Processed events / (last processed_at - first processed_at).
    pub consume_events_per_s: f64,
    /// From the relay's start to the last event processed.
    pub drain_s: f64,
    /// API figures of the fill.
    pub api: ApiReport,
    /// Pipeline figures.
    pub pipeline: PipelineReport,
    /// The machine's CPU around the run (the JSON keeps the three fields flat).
    #[serde(flatten)]
    pub cpu: CpuFigures,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
}

/// One batch size of the PostgreSQL ceiling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchStep {
    /// Tasks (each with its outbox row) per statement.
    pub batch: usize,
    /// Statements committed.
    pub statements: u64,
    /// Tasks written (= events).
    pub rows: u64,
    /// Tasks written per second.
    pub rows_per_s: f64,
    /// Time of one statement, round trip and commit included.
    pub statement: LatencySummary,
    /// Machine CPU busy during the step (every process).
    pub cpu_busy_pct: Option<f64>,
}

/// PostgreSQL alone: the backend's create statement, no HTTP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PostgresCeiling {
    /// What ran where.
    pub method: String,
    /// Concurrent statements (`--ceiling-writers`).
    pub writers: usize,
    /// Seconds per batch size.
    pub step_s: f64,
    /// One entry per batch size, in the order run.
    pub steps: Vec<BatchStep>,
    /// The batch size with the most tasks per second.
    pub best_batch: Option<usize>,
    /// Its tasks (= events) per second: the PostgreSQL ceiling.
    pub best_rows_per_s: f64,
}

/// Kafka alone: the services' producer and consumer settings, no database.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KafkaCeiling {
    /// What ran where.
    pub method: String,
    /// The scratch topic (deleted afterwards).
    pub topic: String,
    /// Its partitions (those of the tasks topics).
    pub partitions: usize,
    /// Its replication factor (that of the tasks topics).
    pub replication_factor: usize,
    /// Records per phase.
    pub records: u64,
    /// Mean record size: key, value and headers.
    pub record_bytes_mean: f64,
    /// Produce alone, nothing consuming: acknowledged records per second.
    pub produce_per_s: f64,
    /// Consume alone, from that backlog: records per second from the first
    /// record read to the last.
    pub consume_per_s: f64,
    /// Produce and consume at once: records per second from the first send
    /// to the last record read: the Kafka ceiling.
    pub end_to_end_per_s: f64,
    /// In that phase, acknowledged records per second.
    pub produce_while_consuming_per_s: f64,
    /// Machine CPU busy during the end-to-end phase.
    pub cpu_busy_pct: Option<f64>,
}

/// The HTTP stack alone: a trivial endpoint under the load generator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpCeiling {
    /// The endpoint.
    pub endpoint: String,
    /// Closed-loop workers.
    pub concurrency: usize,
    /// Seconds.
    pub duration_s: f64,
    /// Answers and latency (`achieved_rps` is the HTTP ceiling).
    pub api: ApiReport,
    /// Machine CPU busy during the run.
    pub cpu_busy_pct: Option<f64>,
}

/// Each component's ceiling, and the pipeline against the lowest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CeilingRun {
    /// PostgreSQL alone.
    pub postgres: Option<PostgresCeiling>,
    /// Kafka alone.
    pub kafka: Option<KafkaCeiling>,
    /// The HTTP stack alone.
    pub http: Option<HttpCeiling>,
    /// The lowest of the three: `postgres`, `kafka` or `http`.
    pub lowest: Option<String>,
    /// Its events (or requests) per second.
    pub lowest_per_s: Option<f64>,
    /// The pipeline's sustained events per second.
    pub pipeline_events_per_s: Option<f64>,
    /// Where that figure comes from.
    pub pipeline_source: String,
    /// Pipeline / lowest ceiling, in percent.
    pub pipeline_pct_of_lowest: Option<f64>,
    /// What the three allow together on the shared CPUs, events per second:
    /// 1 / (1/postgres + 1/kafka + 1/http), the rate of a pipeline that did
    /// each component's work per event and nothing else (every event needs
    /// all three). `None` unless all three were measured.
    pub combined_per_s: Option<f64>,
    /// Pipeline / combined ceiling, in percent: the share of the pipeline's
    /// CPU that goes to the components' own work.
    pub pipeline_pct_of_combined: Option<f64>,
    /// Ceilings that could not be measured, with the reason.
    pub errors: Vec<String>,
}

/// `todoctl verify` over the whole stack (all events ever, not just this run's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Event ids in the outbox.
    pub expected: u64,
    /// Of those, in the audit log.
    pub delivered: u64,
    /// Not in the audit log.
    pub missing: u64,
    /// Effects applied more than once.
    pub duplicated_effects: i64,
    /// Outbox rows not yet published.
    pub unpublished: i64,
    /// Tasks whose projection differs.
    pub mismatched: u64,
    /// Nothing missing, nothing twice, nothing mismatched.
    pub clean: bool,
}

/// One target with its measured value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// Stable id.
    pub id: String,
    /// `spec` or `ours`.
    pub origin: String,
    /// What is measured.
    pub name: String,
    /// The threshold, as text (`< 50 ms`).
    pub threshold: String,
    /// The measured value; `None` when this run did not measure it.
    pub measured: Option<f64>,
    /// Unit of `measured`.
    pub unit: String,
    /// Pass, fail, or `None` when not measured.
    pub pass: Option<bool>,
    /// Where the figure comes from.
    pub source: String,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Layout version.
    pub schema_version: u32,
    /// `steady`, `ramp`, `backlog`, `overhead`, `max`, `ceiling` or `all`.
    pub scenario: String,
    /// Shortened run.
    pub quick: bool,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Where it ran.
    pub machine: Machine,
    /// Open loop at a constant rate.
    pub steady: Option<LoadRun>,
    /// Closed loop, maximum throughput.
    pub max: Option<LoadRun>,
    /// Rising rates.
    pub ramp: Option<RampRun>,
    /// 10 % below the ramp's highest bounded rate, that rate, and 5 and 10 %
    /// above it, a minute each (`all`).
    #[serde(default)]
    pub hold: Option<RampRun>,
    /// Events on vs off.
    pub overhead: Option<OverheadRun>,
    /// Span export on vs off (`overhead --traces`; not a spec target).
    #[serde(default)]
    pub trace_overhead: Option<OverheadRun>,
    /// Outbox backlog drain.
    pub backlog: Option<BacklogRun>,
    /// The steady load right after a restart.
    #[serde(default)]
    pub settle: Option<SettleRun>,
    /// Each component alone, and the pipeline against the lowest.
    #[serde(default)]
    pub ceiling: Option<CeilingRun>,
    /// Instances of the services on the three-broker stack.
    #[serde(default)]
    pub scale: Option<ScaleRun>,
    /// Whole-stack reconciliation at the end.
    pub verify: Option<VerifyReport>,
    /// Scenarios of `all` that could not finish, with the reason (the others
    /// still report).
    pub errors: Vec<String>,
    /// Targets with measured values.
    pub targets: Vec<TargetResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn a_report_from_before_the_calibration_still_reads() {
        let old =
            serde_json::json!({"cpus": 2, "cpu_model": "x", "memory_gib": 23.5, "kernel": "6"});
        let m: Machine = serde_json::from_value(old).unwrap();
        assert_eq!(m.calibration, None);
        let new = Machine {
            calibration: Some(Calibration {
                cpu_ms: 41.5,
                fsync_us: None,
            }),
            ..m
        };
        let back: Machine = serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }

    #[test]
    fn the_report_keeps_its_field_names() {
        let r = Report {
            steady: Some(LoadRun::default()),
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            keys(&v),
            [
                "backlog",
                "ceiling",
                "errors",
                "finished_at",
                "hold",
                "machine",
                "max",
                "overhead",
                "quick",
                "ramp",
                "scale",
                "scenario",
                "schema_version",
                "settle",
                "started_at",
                "steady",
                "targets",
                "trace_overhead",
                "verify"
            ]
        );
        assert_eq!(
            keys(&v["steady"]),
            [
                "api",
                "bench_cpu_s",
                "concurrency",
                "correlation_id",
                "cpu_busy_before_pct",
                "cpu_busy_pct_mean",
                "delivery",
                "drain_wait_s",
                "duration_s",
                "lag",
                "mix",
                "mode",
                "pickup",
                "pipeline",
                "processing",
                "publish",
                "rate_per_s",
                "timeline",
                "warmup_s",
                "warmup_settled",
                "warmup_window_means_ms"
            ]
        );
        assert_eq!(
            keys(&v["steady"]["pipeline"]),
            [
                "consume",
                "e2e",
                "missing",
                "per_second",
                "processed",
                "processed_before_marked_published",
                "processed_rate_events_per_s",
                "produced",
                "publish_failed_attempts",
                "publish_success_pct",
                "published",
                "relay",
                "sustained_events_per_s"
            ]
        );
        let c = serde_json::to_value(CeilingRun {
            postgres: Some(PostgresCeiling::default()),
            kafka: Some(KafkaCeiling::default()),
            http: Some(HttpCeiling::default()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            keys(&c),
            [
                "combined_per_s",
                "errors",
                "http",
                "kafka",
                "lowest",
                "lowest_per_s",
                "pipeline_events_per_s",
                "pipeline_pct_of_combined",
                "pipeline_pct_of_lowest",
                "pipeline_source",
                "postgres"
            ]
        );
        assert_eq!(
            keys(&c["kafka"]),
            [
                "consume_per_s",
                "cpu_busy_pct",
                "end_to_end_per_s",
                "method",
                "partitions",
                "produce_per_s",
                "produce_while_consuming_per_s",
                "record_bytes_mean",
                "records",
                "replication_factor",
                "topic"
            ]
        );
        assert_eq!(
            keys(&v["steady"]["api"]["latency"]),
            ["count", "max_ms", "mean_ms", "p50_ms", "p95_ms", "p999_ms", "p99_ms"]
        );
    }
}
