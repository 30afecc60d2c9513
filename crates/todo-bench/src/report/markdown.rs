//! The Markdown summary of a report.

use std::fmt::Write as _;

use super::model::{Calibration, CeilingRun, LoadRun, RampRun, Report, ScaleRun};
use crate::load::ApiReport;
use crate::pipeline::PipelineReport;

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

/// A ramp's section (`ramp`, and the `hold` of `all`), titled `title`.
fn ramp_md(out: &mut String, title: &str, ramp: &RampRun) {
    let _ = writeln!(
        out,
        "\n## {title}\n\n{:.0} s per step. Highest bounded rate: {} req/s ({:.1} events/s processed).\n\n\
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
    pipeline_md(out, &ramp.pipeline);
    out.push_str(&plots_md(title));
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

/// How the warm-up ended, and the pipeline's latency over it.
fn warmup_md(r: &LoadRun) -> String {
    let means = r
        .warmup_window_means_ms
        .iter()
        .map(|m| opt(m.map(|m| format!("{m:.1}"))))
        .collect::<Vec<_>>()
        .join(", ");
    match r.warmup_settled {
        None => String::new(),
        Some(settled) => format!(
            " ({}; the pipeline's mean latency per 5 s: {means} ms)",
            if settled {
                "until the pipeline's latency settled"
            } else {
                "the pipeline's latency still falling at the warm-up's maximum"
            }
        ),
    }
}

fn run_md(out: &mut String, title: &str, r: &LoadRun, plots: &str) {
    let _ = writeln!(
        out,
        "\n## {title}\n\n{} loop, {}, {:.0} s after {:.0} s of unrecorded warm-up{}, mix `{}`, correlation id `{}`; waited {:.1} s for the last events; \
         machine CPU busy {} % on average (all processes; {} % in the 2 s before the load); todo-bench used {} CPU s.",
        r.mode,
        match (r.rate_per_s, r.concurrency) {
            (Some(rate), _) => format!("{rate} req/s offered"),
            (None, Some(c)) => format!("{c} workers"),
            _ => String::new(),
        },
        r.duration_s,
        r.warmup_s,
        warmup_md(r),
        r.mix,
        r.correlation_id,
        r.drain_wait_s,
        opt(r.cpu.cpu_busy_pct_mean.map(|c| format!("{c:.0}"))),
        opt(r.cpu.cpu_busy_before_pct.map(|c| format!("{c:.0}"))),
        opt(r.cpu.bench_cpu_s.map(|c| format!("{c:.1}")))
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
    stages_md(out, r);
    out.push_str(plots);
}

/// Where an event's time goes, stage by stage, from the services' own
/// histograms (bucket-interpolated; the stages from the relay's send overlap).
fn stages_md(out: &mut String, r: &LoadRun) {
    out.push_str(
        "\n| stage (service histogram) | events | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|\n",
    );
    for (stage, h) in [
        (
            "write → relay read (`outbox_relay_pickup_seconds`)",
            &r.pickup,
        ),
        (
            "relay send → Kafka ack (`event_publish_duration_seconds`)",
            &r.publish,
        ),
        (
            "relay send → event service read (`event_delivery_duration_seconds`)",
            &r.delivery,
        ),
        (
            "read → effects committed (`event_processing_duration_seconds`)",
            &r.processing,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {stage} | {} | {} | {} | {} |",
            h.count,
            opt(h.p50_ms),
            opt(h.p95_ms),
            opt(h.p99_ms)
        );
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
}

fn plots_md(prefix: &str) -> String {
    format!(
        "\n![latency]({prefix}-latency.svg)\n![lag]({prefix}-lag.svg)\n![throughput]({prefix}-throughput.svg)\n"
    )
}

fn scale_md(out: &mut String, s: &ScaleRun) {
    let _ = writeln!(
        out,
        "\n## scale\n\n{} broker(s), {} partitions over the task topics. One ramp per configuration \
         (the load round robin over the backends; one relay leads).\n\n\
         | backends | event services | group balanced after | highest bounded rate | events/s | e2e p99 ms | lag max | CPU % | stopped |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---|",
        s.brokers, s.partitions
    );
    for c in &s.configs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            c.backends,
            c.event_services,
            match (c.balanced_after_s, s.partitions) {
                (Some(t), _) => format!("{t:.1} s"),
                (None, 0) => "not known (no partition count)".into(),
                (None, _) => "not within 60 s".into(),
            },
            opt(c.highest_bounded_rate),
            c.events_per_s,
            opt(c.e2e_p99_ms),
            opt(c.consumer_lag_max),
            opt(c.ramp.cpu.cpu_busy_pct_mean.map(|v| v.round())),
            if c.stopped_because.is_empty() {
                "kept up at every rate"
            } else {
                &c.stopped_because
            }
        );
    }
    if let Some(r) = &s.rebalance {
        let _ = writeln!(
            out,
            "\n### Rebalances under {} req/s\n\nSteady state before the first change: e2e p99 {} ms; \
             a second counts as absorbed at or below {} ms (5-second windows, as `settle`).\n\n\
             | at | change | event services after | absorbed after | seconds over the bound | worst e2e p99 ms | lag max | fewest processed/s |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|",
            r.rate,
            opt(r.steady_e2e_p99_ms),
            opt(r.bound_ms)
        );
        for c in &r.changes {
            let _ = writeln!(
                out,
                "| {:.1} s | {} | {} | {} | {} | {} | {} | {} |",
                c.at_s,
                c.what,
                c.instances_after,
                c.absorbed_after_s
                    .map_or("not before the next change or the end".into(), |t| {
                        format!("{t:.1} s")
                    }),
                c.seconds_over_bound,
                opt(c.worst_e2e_p99_ms),
                opt(c.consumer_lag_max),
                opt(c.min_processed_per_s)
            );
        }
        run_md(
            out,
            "scale: the rebalance load",
            &r.run,
            &plots_md("scale-rebalance"),
        );
    }
}

fn ceiling_md(out: &mut String, c: &CeilingRun) {
    out.push_str("\n## ceiling\n\nEach component alone, on the same machine (the rest of the stack idle but running).\n\n| component | ceiling (events/s) | how |\n|---|---:|---|\n");
    if let Some(p) = &c.postgres {
        let _ = writeln!(
            out,
            "| PostgreSQL | {:.0} | the create statement, best batch {} of {} tried, {} writers |",
            p.best_rows_per_s,
            opt(p.best_batch),
            p.steps.len(),
            p.writers
        );
    }
    if let Some(k) = &c.kafka {
        let _ = writeln!(
            out,
            "| Kafka | {:.0} | produce and consume at once, {} records |",
            k.end_to_end_per_s, k.records
        );
    }
    if let Some(h) = &c.http {
        let _ = writeln!(
            out,
            "| HTTP | {:.0} | {}, {} workers, {:.0} s |",
            h.api.achieved_rps, h.endpoint, h.concurrency, h.duration_s
        );
    }
    let _ = writeln!(
        out,
        "\nLowest: {} ({} /s). Pipeline: {} events/s ({}): **{} %** of the lowest ceiling.",
        opt(c.lowest.as_ref()),
        opt(c.lowest_per_s.map(|v| format!("{v:.0}"))),
        opt(c.pipeline_events_per_s.map(|v| format!("{v:.0}"))),
        c.pipeline_source,
        opt(c.pipeline_pct_of_lowest.map(|v| format!("{v:.1}")))
    );
    let _ = writeln!(
        out,
        "\nCombined: {} /s, what the three allow together on the shared CPUs (1 / the sum of \
         1/ceiling: each component's work per event and nothing else; {} % of the lowest, the \
         most a pipeline could reach by that measure). Pipeline: **{} %** of the combined ceiling.",
        opt(c.combined_per_s.map(|v| format!("{v:.0}"))),
        opt(c
            .combined_per_s
            .zip(c.lowest_per_s)
            .map(|(m, l)| format!("{:.1}", 100.0 * m / l))),
        opt(c.pipeline_pct_of_combined.map(|v| format!("{v:.1}")))
    );
    if let Some(p) = &c.postgres {
        let _ = writeln!(
            out,
            "\n### PostgreSQL\n\n{}\n\n{} writers, {:.0} s per batch size.\n\n\
             | batch | statements | rows/s | statement p50 ms | p99 ms | max ms | CPU busy % |\n|---:|---:|---:|---:|---:|---:|---:|",
            p.method, p.writers, p.step_s
        );
        for s in &p.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                s.batch,
                s.statements,
                s.rows_per_s,
                s.statement.p50_ms,
                s.statement.p99_ms,
                s.statement.max_ms,
                opt(s.cpu_busy_pct.map(|c| format!("{c:.0}")))
            );
        }
    }
    if let Some(k) = &c.kafka {
        let _ = writeln!(
            out,
            "\n### Kafka\n\n{}.\n\nTopic `{}` ({} partitions, replication {}), records of {:.0} bytes on average \
             (key, value, headers). Produce alone {:.0}/s; consume alone {:.0}/s; produce and consume at once \
             {:.0}/s end to end (produce {:.0}/s meanwhile; machine CPU busy {} %).",
            k.method,
            k.topic,
            k.partitions,
            k.replication_factor,
            k.record_bytes_mean,
            k.produce_per_s,
            k.consume_per_s,
            k.end_to_end_per_s,
            k.produce_while_consuming_per_s,
            opt(k.cpu_busy_pct.map(|c| format!("{c:.0}")))
        );
    }
    if let Some(h) = &c.http {
        let _ = writeln!(
            out,
            "\n### HTTP\n\nMachine CPU busy {} %.",
            opt(h.cpu_busy_pct.map(|c| format!("{c:.0}")))
        );
        api_md(out, &h.api);
    }
    for e in &c.errors {
        let _ = writeln!(out, "\n**Not measured:** {e}");
    }
}

/// The machine's speed, for the header: empty when not measured.
fn calibration_md(c: Option<&Calibration>) -> String {
    let Some(c) = c else {
        return String::new();
    };
    let fsync = c
        .fsync_us
        .map(|us| format!(", durable 8 KiB write {us:.0} µs"))
        .unwrap_or_default();
    format!(
        " Machine speed before the load (lower is faster): CPU workload {:.0} ms{fsync}.",
        c.cpu_ms
    )
}

/// The Markdown summary.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# todo-bench: {}{}\n\n{} → {}; {} CPUs ({}), {:.1} GiB, kernel {}.{}\n",
        r.scenario,
        if r.quick { " (quick)" } else { "" },
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.finished_at.format("%H:%M:%S UTC"),
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.memory_gib,
        r.machine.kernel,
        calibration_md(r.machine.calibration.as_ref())
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
    for (title, o) in [
        ("overhead", &r.overhead),
        ("trace-overhead", &r.trace_overhead),
    ] {
        let Some(o) = o else { continue };
        let _ = writeln!(
            out,
            "\n## {title}\n\n{}\n\n{} req/s per side, {:.0} s. Overhead (on − off): p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms.",
            o.method, o.rate_per_side, o.duration_s, o.overhead_p50_ms, o.overhead_p95_ms, o.overhead_p99_ms
        );
        if let Some(n) = o.exports_received {
            let _ = writeln!(out, "\nExport requests the sink received: {n}.");
        }
        api_md(&mut out, &o.events_on);
        api_md(&mut out, &o.events_off);
        pipeline_md(&mut out, &o.pipeline);
        out.push_str(&plots_md(title));
    }
    if let Some(ramp) = &r.ramp {
        ramp_md(&mut out, "ramp", ramp);
    }
    if let Some(hold) = &r.hold {
        ramp_md(&mut out, "hold", hold);
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
    if let Some(s) = &r.settle {
        let t = &s.settling;
        let _ = writeln!(
            out,
            "\n## settle: right after a restart\n\nRestarted {} with `./dev` in {:.1} s; the load started right after, with no warm-up.\n\n\
             **Settling:** {}. Steady state (median per-second end-to-end p99 of the second half): {} ms; \
             a second is settled at or below {} ms; worst per-second p99 before: {} ms.",
            s.restarted.join(", "),
            s.restart_s,
            match (t.settled_after_s, t.settled_in_run) {
                (Some(at), true) => format!("settled {at:.0} s after the first request"),
                (Some(_), false) => "not settled by the end of the run".into(),
                (None, _) => "not measured (too short a run)".into(),
            },
            opt(t.steady_e2e_p99_ms),
            opt(t.bound_ms),
            opt(t.worst_e2e_p99_ms_before)
        );
        run_md(&mut out, "settle: the load", &s.run, &plots_md("settle"));
    }
    if let Some(c) = &r.ceiling {
        ceiling_md(&mut out, c);
    }
    if let Some(s) = &r.scale {
        scale_md(&mut out, s);
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

    #[test]
    fn the_header_gives_the_machine_speed_when_measured() {
        let mut r = Report::default();
        assert!(!markdown(&r).contains("Machine speed"));
        r.machine.calibration = Some(Calibration {
            cpu_ms: 123.4,
            fsync_us: Some(231.2),
        });
        let header = markdown(&r);
        assert!(
            header.contains("CPU workload 123 ms, durable 8 KiB write 231 µs."),
            "{header}"
        );
    }

    #[test]
    fn a_run_says_how_its_warm_up_ended() {
        let mut r = LoadRun {
            warmup_s: 10.0,
            ..Default::default()
        };
        assert_eq!(warmup_md(&r), "", "a fixed warm-up has nothing to add");
        r.warmup_settled = Some(true);
        r.warmup_window_means_ms = vec![Some(36.04), None, Some(18.0)];
        assert_eq!(
            warmup_md(&r),
            " (until the pipeline's latency settled; the pipeline's mean latency per 5 s: \
             36.0, n/a, 18.0 ms)"
        );
        r.warmup_settled = Some(false);
        assert!(warmup_md(&r).contains("still falling"));
    }
}
