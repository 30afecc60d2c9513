//! The report: JSON with stable field names (`schema_version` changes when a
//! field is renamed or removed), a Markdown summary, and the target table.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::load::ApiReport;
use crate::pipeline::PipelineReport;
use crate::sampler::TimelinePoint;

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
    /// Lag and outbox depth.
    pub lag: LagReport,
    /// Seconds waited after the send window for the last events.
    pub drain_wait_s: f64,
    /// Mean share of the machine's CPU busy during the run (every process,
    /// ours and others').
    pub cpu_busy_pct_mean: Option<f64>,
    /// Share of the machine's CPU busy in the 2 s before the load (other
    /// work on the machine: builds, tests).
    pub cpu_busy_before_pct: Option<f64>,
    /// CPU seconds todo-bench itself used during the run (it shares the machine).
    pub bench_cpu_s: Option<f64>,
    /// Samples, once a second.
    pub timeline: Vec<TimelinePoint>,
}

/// The events-on vs events-off comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OverheadRun {
    /// How the events-off side was run.
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
    /// Mean share of the machine's CPU busy (all processes).
    pub cpu_busy_pct_mean: Option<f64>,
    /// Share of the machine's CPU busy in the 2 s before the load (other
    /// work on the machine: builds, tests).
    pub cpu_busy_before_pct: Option<f64>,
    /// CPU seconds todo-bench itself used during the run (it shares the machine).
    pub bench_cpu_s: Option<f64>,
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
    /// Mean share of the machine's CPU busy (all processes).
    pub cpu_busy_pct_mean: Option<f64>,
    /// Share of the machine's CPU busy in the 2 s before the load (other
    /// work on the machine: builds, tests).
    pub cpu_busy_before_pct: Option<f64>,
    /// CPU seconds todo-bench itself used during the run (it shares the machine).
    pub bench_cpu_s: Option<f64>,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
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
    /// Mean share of the machine's CPU busy (all processes).
    pub cpu_busy_pct_mean: Option<f64>,
    /// Share of the machine's CPU busy in the 2 s before the load (other
    /// work on the machine: builds, tests).
    pub cpu_busy_before_pct: Option<f64>,
    /// CPU seconds todo-bench itself used during the run (it shares the machine).
    pub bench_cpu_s: Option<f64>,
    /// Samples.
    pub timeline: Vec<TimelinePoint>,
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
    /// `steady`, `ramp`, `backlog`, `overhead`, `max` or `all`.
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
    /// Events on vs off.
    pub overhead: Option<OverheadRun>,
    /// Outbox backlog drain.
    pub backlog: Option<BacklogRun>,
    /// Whole-stack reconciliation at the end.
    pub verify: Option<VerifyReport>,
    /// Scenarios of `all` that could not finish, with the reason (the others
    /// still report).
    pub errors: Vec<String>,
    /// Targets with measured values.
    pub targets: Vec<TargetResult>,
}

struct T<'a> {
    id: &'a str,
    origin: &'a str,
    name: &'a str,
    threshold: &'a str,
    unit: &'a str,
}

fn target(t: T, measured: Option<(f64, String)>, pass: impl Fn(f64) -> bool) -> TargetResult {
    TargetResult {
        id: t.id.into(),
        origin: t.origin.into(),
        name: t.name.into(),
        threshold: t.threshold.into(),
        unit: t.unit.into(),
        pass: measured.as_ref().map(|(v, _)| pass(*v)),
        source: measured
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| "not measured by this scenario".into()),
        measured: measured.map(|(v, _)| v),
    }
}

/// The spec's targets, then ours, against what `r` measured.
pub fn evaluate(r: &Report) -> Vec<TargetResult> {
    let overhead_p99 = r
        .overhead
        .as_ref()
        .map(|o| {
            (
                o.overhead_p99_ms.max(0.0),
                "overhead: p99(events on) - p99(events off)".to_owned(),
            )
        })
        .or_else(|| {
            r.steady.as_ref().map(|s| {
                (
                    s.api.latency.p99_ms,
                    "steady: whole-request p99 (an upper bound on the overhead)".to_owned(),
                )
            })
        });
    // The run that stands for "under the spec's load": steady, else overhead's
    // events-on side, else the ramp.
    let processing = r
        .steady
        .as_ref()
        .and_then(|s| {
            s.processing.p95_ms.map(|v| {
                (
                    v,
                    "steady: event_processing_duration_seconds p95".to_owned(),
                )
            })
        })
        .or_else(|| {
            r.max.as_ref().and_then(|s| {
                s.processing
                    .p95_ms
                    .map(|v| (v, "max: event_processing_duration_seconds p95".to_owned()))
            })
        });
    let sustained = r
        .steady
        .as_ref()
        .map(|s| {
            (
                s.pipeline.sustained_events_per_s,
                format!(
                    "steady: events processed within the {} s window (+1 s) / window",
                    s.duration_s
                ),
            )
        })
        .or_else(|| {
            r.ramp.as_ref().map(|ramp| {
                (
                    ramp.highest_sustained_events_per_s,
                    "ramp: highest step that stayed bounded".to_owned(),
                )
            })
        });
    let lag = r.steady.as_ref().and_then(|s| {
        s.lag.consumer_lag_max.map(|v| {
            (
                v as f64,
                "steady: max consumer lag, sampled every second (committed offsets)".to_owned(),
            )
        })
    });
    let pipelines: Vec<(&str, &PipelineReport)> = [
        r.steady.as_ref().map(|s| ("steady", &s.pipeline)),
        r.max.as_ref().map(|s| ("max", &s.pipeline)),
        r.ramp.as_ref().map(|s| ("ramp", &s.pipeline)),
        r.overhead.as_ref().map(|s| ("overhead", &s.pipeline)),
        r.backlog.as_ref().map(|s| ("backlog", &s.pipeline)),
    ]
    .into_iter()
    .flatten()
    .filter(|(_, p)| p.produced > 0)
    .collect();
    let names = pipelines
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ");
    let success = pipelines
        .iter()
        .map(|(_, p)| p.publish_success_pct)
        .reduce(f64::min)
        .map(|v| {
            (
                v,
                format!("{names}: outbox rows published / (published + failed attempts)"),
            )
        });
    let missing = (!pipelines.is_empty()).then(|| {
        (
            pipelines.iter().map(|(_, p)| p.missing).sum::<u64>() as f64,
            format!("{names}: run events written but not in the audit log"),
        )
    });
    let ours_sustained = [
        r.ramp.as_ref().map(|x| {
            (
                x.highest_sustained_events_per_s,
                "ramp: highest bounded step, events processed/s".to_owned(),
            )
        }),
        r.steady.as_ref().map(|s| {
            (
                s.pipeline.sustained_events_per_s,
                "steady: events processed/s".to_owned(),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .reduce(|a, b| if b.0 > a.0 { b } else { a });
    let e2e = r.steady.as_ref().map(|s| {
        (
            s.pipeline.e2e.p99_ms,
            format!(
                "steady at {} req/s: outbox created_at -> audit_log processed_at",
                s.rate_per_s.unwrap_or(0.0)
            ),
        )
    });
    let overhead_p50 = r.overhead.as_ref().map(|o| {
        (
            o.overhead_p50_ms,
            "overhead: p50(events on) - p50(events off)".to_owned(),
        )
    });
    vec![
        target(
            T {
                id: "spec_publish_overhead_ms",
                origin: "spec",
                name: "publish overhead",
                threshold: "< 50 ms",
                unit: "ms",
            },
            overhead_p99,
            |v| v < 50.0,
        ),
        target(
            T {
                id: "spec_processing_p95_ms",
                origin: "spec",
                name: "processing p95",
                threshold: "< 100 ms",
                unit: "ms",
            },
            processing,
            |v| v < 100.0,
        ),
        target(
            T {
                id: "spec_sustained_events_per_s",
                origin: "spec",
                name: "sustained throughput",
                threshold: ">= 1000 events/s",
                unit: "events/s",
            },
            sustained,
            |v| v >= 1_000.0,
        ),
        target(
            T {
                id: "spec_consumer_lag_max",
                origin: "spec",
                name: "consumer lag",
                threshold: "< 100",
                unit: "messages",
            },
            lag,
            |v| v < 100.0,
        ),
        target(
            T {
                id: "spec_publish_success_pct",
                origin: "spec",
                name: "publish success",
                threshold: "> 99 %",
                unit: "%",
            },
            success,
            |v| v > 99.0,
        ),
        target(
            T {
                id: "spec_zero_loss_missing",
                origin: "spec",
                name: "zero loss",
                threshold: "0 missing",
                unit: "events",
            },
            missing,
            |v| v == 0.0,
        ),
        target(
            T {
                id: "ours_sustained_events_per_s",
                origin: "ours",
                name: "sustained end to end",
                threshold: ">= 5000 events/s",
                unit: "events/s",
            },
            ours_sustained,
            |v| v >= 5_000.0,
        ),
        target(
            T {
                id: "ours_e2e_p99_ms_at_1000",
                origin: "ours",
                name: "end-to-end p99 at 1000 events/s",
                threshold: "<= 50 ms",
                unit: "ms",
            },
            e2e,
            |v| v <= 50.0,
        ),
        target(
            T {
                id: "ours_overhead_p50_ms",
                origin: "ours",
                name: "overhead p50",
                threshold: "<= 1 ms",
                unit: "ms",
            },
            overhead_p50,
            |v| v <= 1.0,
        ),
    ]
}

/// The target table as plain text lines (printed at the end of a run).
pub fn target_lines(targets: &[TargetResult]) -> Vec<String> {
    targets
        .iter()
        .map(|t| {
            let verdict = match t.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "----",
            };
            let measured = t
                .measured
                .map(|v| format!("{v:.2} {}", t.unit))
                .unwrap_or_else(|| "not measured".into());
            format!(
                "{verdict}  [{}] {:<34} {:<18} measured {:<22} ({})",
                t.origin, t.name, t.threshold, measured, t.source
            )
        })
        .collect()
}

fn lat_row(out: &mut String, name: &str, l: &crate::stats::LatencySummary) {
    let _ = writeln!(
        out,
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
    );
}

fn lat_header(out: &mut String) {
    out.push_str("| latency | count | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n");
}

fn pipeline_md(out: &mut String, p: &PipelineReport) {
    let _ = writeln!(
        out,
        "\nEvents: produced {}, published {}, processed {}, missing {}; publish success {:.3} %; \
         sustained {:.1} events/s; processed rate {:.1} events/s.\n",
        p.produced,
        p.published,
        p.processed,
        p.missing,
        p.publish_success_pct,
        p.sustained_events_per_s,
        p.processed_rate_events_per_s
    );
    lat_header(out);
    lat_row(out, "end to end (commit → processed)", &p.e2e);
    lat_row(out, "relay (commit → marked published)", &p.relay);
    lat_row(out, "consume (marked published → processed)", &p.consume);
}

fn api_md(out: &mut String, a: &ApiReport) {
    let _ = writeln!(
        out,
        "\nAPI `{}`: {} requests, {} ok, {} failed ({:?}), {:.1} ok/s.\n",
        a.target, a.requests, a.ok, a.failed, a.statuses, a.achieved_rps
    );
    lat_header(out);
    lat_row(out, "API (from intended send)", &a.latency);
    lat_row(out, "API service time (from actual send)", &a.service_time);
    for (op, l) in &a.latency_per_op {
        lat_row(out, &format!("API {op}"), l);
    }
}

fn run_md(out: &mut String, title: &str, r: &LoadRun, plots: &str) {
    let _ = writeln!(
        out,
        "\n## {title}\n\n{} loop, {}, {:.0} s, mix `{}`, correlation id `{}`; waited {:.1} s for the last events; \
         machine CPU busy {} % on average (all processes; {} % in the 2 s before the load); todo-bench used {} CPU s.",
        r.mode,
        match (r.rate_per_s, r.concurrency) {
            (Some(rate), _) => format!("{rate} req/s offered"),
            (None, Some(c)) => format!("{c} workers"),
            _ => String::new(),
        },
        r.duration_s,
        r.mix,
        r.correlation_id,
        r.drain_wait_s,
        opt(r.cpu_busy_pct_mean.map(|c| format!("{c:.0}"))),
        opt(r.cpu_busy_before_pct.map(|c| format!("{c:.0}"))),
        opt(r.bench_cpu_s.map(|c| format!("{c:.1}")))
    );
    api_md(out, &r.api);
    pipeline_md(out, &r.pipeline);
    let _ = writeln!(
        out,
        "\nEvent service processing time (its histogram): p50 {} ms, p95 {} ms, p99 {} ms ({} events). \
         Consumer lag (committed offsets, sampled each second): max {}, median {}, max per partition {}; \
         outbox depth max {}; written-but-unprocessed max {}. Relay send-to-acknowledgement \
         (backend histogram): p50 {} ms, p95 {} ms, p99 {} ms.",
        opt(r.processing.p50_ms),
        opt(r.processing.p95_ms),
        opt(r.processing.p99_ms),
        r.processing.count,
        opt(r.lag.consumer_lag_max),
        opt(r.lag.consumer_lag_p50),
        opt(r.lag.consumer_lag_max_partition),
        opt(r.lag.outbox_depth_max),
        r.lag.unprocessed_max,
        opt(r.publish.p50_ms),
        opt(r.publish.p95_ms),
        opt(r.publish.p99_ms)
    );
    out.push_str(plots);
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
}

fn plots_md(prefix: &str) -> String {
    format!(
        "\n![latency]({prefix}-latency.svg)\n![lag]({prefix}-lag.svg)\n![throughput]({prefix}-throughput.svg)\n"
    )
}

/// The Markdown summary.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# todo-bench: {}{}\n\n{} → {}; {} CPUs ({}), {:.1} GiB, kernel {}.\n",
        r.scenario,
        if r.quick { " (quick)" } else { "" },
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.finished_at.format("%H:%M:%S UTC"),
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.memory_gib,
        r.machine.kernel
    );
    out.push_str("## Targets\n\n| | origin | target | threshold | measured | source |\n|---|---|---|---|---:|---|\n");
    for t in &r.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            match t.pass {
                Some(true) => "PASS",
                Some(false) => "**FAIL**",
                None => "–",
            },
            t.origin,
            t.name,
            t.threshold,
            t.measured
                .map(|v| format!("{v:.2} {}", t.unit))
                .unwrap_or_else(|| "not measured".into()),
            t.source
        );
    }
    if let Some(s) = &r.steady {
        run_md(&mut out, "steady", s, &plots_md("steady"));
    }
    if let Some(s) = &r.max {
        run_md(&mut out, "max (closed loop)", s, &plots_md("max"));
    }
    if let Some(o) = &r.overhead {
        let _ = writeln!(
            out,
            "\n## overhead\n\n{}\n\n{} req/s per side, {:.0} s. Overhead (on − off): p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms.",
            o.method, o.rate_per_side, o.duration_s, o.overhead_p50_ms, o.overhead_p95_ms, o.overhead_p99_ms
        );
        api_md(&mut out, &o.events_on);
        api_md(&mut out, &o.events_off);
        pipeline_md(&mut out, &o.pipeline);
        out.push_str(&plots_md("overhead"));
    }
    if let Some(ramp) = &r.ramp {
        let _ = writeln!(
            out,
            "\n## ramp\n\n{:.0} s per step. Highest bounded rate: {} req/s ({:.1} events/s processed).\n\n\
             | rate | ok/s | failed | API p99 ms | processed/s | e2e p99 ms | unprocessed at end | bounded |\n|---:|---:|---:|---:|---:|---:|---:|---|",
            ramp.step_s, opt(ramp.highest_bounded_rate), ramp.highest_sustained_events_per_s
        );
        for s in &ramp.steps {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {:.2} | {:.1} | {:.2} | {} | {} |",
                s.rate,
                s.achieved_rps,
                s.failed,
                s.api_p99_ms,
                s.processed_per_s,
                s.e2e_p99_ms,
                s.unprocessed_at_end,
                if s.bounded {
                    "yes".to_owned()
                } else {
                    format!("no: {}", s.why)
                }
            );
        }
        pipeline_md(&mut out, &ramp.pipeline);
        out.push_str(&plots_md("ramp"));
    }
    if let Some(b) = &r.backlog {
        let _ = writeln!(
            out,
            "\n## backlog\n\n{}\n\nFilled {} rows (asked {}) in {:.1} s ({:.0} req/s). Relay restarted at {:.1} s; \
             relay drain {:.0} rows/s; event service {:.0} events/s; backlog gone {:.1} s after the relay started.",
            b.method, b.filled_rows, b.target_rows, b.fill_s, b.fill_rps, b.relay_started_s,
            b.relay_rows_per_s, b.consume_events_per_s, b.drain_s
        );
        pipeline_md(&mut out, &b.pipeline);
        out.push_str(&plots_md("backlog"));
    }
    for e in &r.errors {
        let _ = writeln!(out, "\n**Not finished:** {e}");
    }
    if let Some(v) = &r.verify {
        let _ = writeln!(
            out,
            "\n## todoctl verify (whole stack)\n\nexpected {}, delivered {}, missing {}, duplicated effects {}, unpublished {}, mismatched {}: {}.",
            v.expected, v.delivered, v.missing, v.duplicated_effects, v.unpublished, v.mismatched,
            if v.clean { "clean" } else { "GAPS" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
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
                "errors",
                "finished_at",
                "machine",
                "max",
                "overhead",
                "quick",
                "ramp",
                "scenario",
                "schema_version",
                "started_at",
                "steady",
                "targets",
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
                "drain_wait_s",
                "duration_s",
                "lag",
                "mix",
                "mode",
                "pipeline",
                "processing",
                "publish",
                "rate_per_s",
                "timeline"
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
        assert_eq!(
            keys(&v["steady"]["api"]["latency"]),
            ["count", "max_ms", "mean_ms", "p50_ms", "p95_ms", "p999_ms", "p99_ms"]
        );
    }

    #[test]
    fn targets_keep_their_ids_and_unmeasured_ones_neither_pass_nor_fail() {
        let t = evaluate(&Report::default());
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "spec_publish_overhead_ms",
                "spec_processing_p95_ms",
                "spec_sustained_events_per_s",
                "spec_consumer_lag_max",
                "spec_publish_success_pct",
                "spec_zero_loss_missing",
                "ours_sustained_events_per_s",
                "ours_e2e_p99_ms_at_1000",
                "ours_overhead_p50_ms"
            ]
        );
        assert!(t.iter().all(|t| t.pass.is_none() && t.measured.is_none()));
    }

    #[test]
    fn a_steady_run_is_judged_against_the_spec() {
        let mut run = LoadRun {
            rate_per_s: Some(1_000.0),
            duration_s: 60.0,
            ..Default::default()
        };
        run.pipeline.produced = 60_000;
        run.pipeline.processed = 60_000;
        run.pipeline.sustained_events_per_s = 1_000.0;
        run.pipeline.publish_success_pct = 100.0;
        run.pipeline.e2e.p99_ms = 60.0;
        run.processing.p95_ms = Some(12.0);
        run.lag.consumer_lag_max = Some(150);
        run.api.latency.p99_ms = 8.0;
        let t = evaluate(&Report {
            steady: Some(run),
            ..Default::default()
        });
        let pass = |id: &str| t.iter().find(|t| t.id == id).unwrap().pass;
        assert_eq!(pass("spec_publish_overhead_ms"), Some(true));
        assert_eq!(pass("spec_processing_p95_ms"), Some(true));
        assert_eq!(pass("spec_sustained_events_per_s"), Some(true));
        assert_eq!(pass("spec_consumer_lag_max"), Some(false));
        assert_eq!(pass("spec_zero_loss_missing"), Some(true));
        assert_eq!(pass("ours_sustained_events_per_s"), Some(false));
        assert_eq!(pass("ours_e2e_p99_ms_at_1000"), Some(false));
        assert_eq!(pass("ours_overhead_p50_ms"), None);
    }
}
