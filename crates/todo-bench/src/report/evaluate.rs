//! The target table: the spec's targets and ours, judged against what a
//! report measured.

use super::model::{Report, TargetResult};
use crate::pipeline::PipelineReport;

/// How long the highest rate must be kept to pass `ours_sustained_events_per_s`
/// (the length of the hold's steps, too).
pub const SUSTAINED_FOR_S: f64 = 60.0;

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
        r.hold.as_ref().map(|s| ("hold", &s.pipeline)),
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
    // The highest rate kept: the hold's (a minute per step), else the ramp's,
    // else a max run's; never the steady rate, which says only that the stack
    // kept up with the rate it was given. Only a run of at least
    // `SUSTAINED_FOR_S` can pass. (rate, source, seconds it was kept)
    let highest = r
        .hold
        .as_ref()
        .map(|x| ("hold", x))
        .or(r.ramp.as_ref().map(|x| ("ramp", x)))
        .map(|(name, x)| {
            let source = format!(
                "{name}: highest bounded step of {:.0} s, events processed/s",
                x.step_s
            );
            (x.highest_sustained_events_per_s, source, x.step_s)
        })
        .or_else(|| {
            r.max.as_ref().map(|m| {
                let source = format!(
                    "max: events processed/s, closed loop, {:.0} s",
                    m.duration_s
                );
                (m.pipeline.sustained_events_per_s, source, m.duration_s)
            })
        });
    let held_s = highest.as_ref().map_or(0.0, |h| h.2);
    let ours_sustained = highest.map(|(v, source, _)| (v, source));
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
    let share_of_ceiling = r.ceiling.as_ref().and_then(|c| {
        c.pipeline_pct_of_lowest.map(|v| {
            (
                v,
                format!(
                    "ceiling: pipeline {:.0} events/s ({}) / lowest ceiling ({} {:.0}/s)",
                    c.pipeline_events_per_s.unwrap_or(0.0),
                    c.pipeline_source,
                    c.lowest.as_deref().unwrap_or("none"),
                    c.lowest_per_s.unwrap_or(0.0)
                ),
            )
        })
    });
    let share_of_combined = r.ceiling.as_ref().and_then(|c| {
        c.pipeline_pct_of_combined.map(|v| {
            (
                v,
                format!(
                    "ceiling: pipeline {:.0} events/s / combined ceiling {:.0}/s (1 / the sum of 1/ceiling: each component's work per event, nothing else)",
                    c.pipeline_events_per_s.unwrap_or(0.0),
                    c.combined_per_s.unwrap_or(0.0)
                ),
            )
        })
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
                threshold: ">= 5000 events/s for 60 s",
                unit: "events/s",
            },
            ours_sustained,
            |v| v >= 5_000.0 && held_s >= SUSTAINED_FOR_S,
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
        target(
            T {
                id: "ours_pipeline_pct_of_lowest_ceiling",
                origin: "ours",
                name: "pipeline / lowest component ceiling",
                threshold: ">= 50 %",
                unit: "%",
            },
            share_of_ceiling,
            |v| v >= 50.0,
        ),
        target(
            T {
                id: "ours_pipeline_pct_of_combined_ceiling",
                origin: "ours",
                name: "pipeline / combined component ceiling",
                threshold: ">= 50 %",
                unit: "%",
            },
            share_of_combined,
            |v| v >= 50.0,
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
                "{verdict}  [{}] {:<34} {:<25} measured {:<22} ({})",
                t.origin, t.name, t.threshold, measured, t.source
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LoadRun;

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
                "ours_overhead_p50_ms",
                "ours_pipeline_pct_of_lowest_ceiling",
                "ours_pipeline_pct_of_combined_ceiling"
            ]
        );
        assert!(t.iter().all(|t| t.pass.is_none() && t.measured.is_none()));
    }

    #[test]
    fn a_steady_run_is_judged_against_the_spec() {
        let mut run = LoadRun {
            rate_per_s: Some(1_000.0),
            duration_s: 60.0,
            warmup_s: 10.0,
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
        assert_eq!(
            pass("ours_sustained_events_per_s"),
            None,
            "the steady rate says nothing of the highest rate"
        );
        assert_eq!(pass("ours_e2e_p99_ms_at_1000"), Some(false));
        assert_eq!(pass("ours_overhead_p50_ms"), None);
        assert_eq!(pass("ours_pipeline_pct_of_lowest_ceiling"), None);
        assert_eq!(pass("ours_pipeline_pct_of_combined_ceiling"), None);
    }

    #[test]
    fn the_highest_rate_comes_from_a_hold_or_ramp_of_60_s_else_a_max_run_never_the_steady_rate() {
        let mut steady = LoadRun::default();
        steady.pipeline.sustained_events_per_s = 1_000.0;
        let mut max = LoadRun::default();
        max.pipeline.sustained_events_per_s = 3_100.0;
        let ramp = crate::report::RampRun {
            step_s: 15.0,
            highest_sustained_events_per_s: 5_300.0,
            ..Default::default()
        };
        let hold = crate::report::RampRun {
            step_s: 60.0,
            highest_sustained_events_per_s: 5_143.0,
            ..Default::default()
        };
        let sustained = |r: Report| {
            let t = evaluate(&r)
                .into_iter()
                .find(|t| t.id == "ours_sustained_events_per_s")
                .unwrap();
            (t.measured, t.pass)
        };
        let all = Report {
            steady: Some(steady.clone()),
            max: Some(max.clone()),
            ramp: Some(ramp.clone()),
            hold: Some(hold),
            ..Default::default()
        };
        assert_eq!(sustained(all), (Some(5_143.0), Some(true)));
        let short_steps = Report {
            max: Some(max.clone()),
            ramp: Some(ramp),
            ..Default::default()
        };
        assert_eq!(
            sustained(short_steps),
            (Some(5_300.0), Some(false)),
            "15 s at 5 300/s is not 60 s"
        );
        let without_ramp = Report {
            steady: Some(steady),
            max: Some(max),
            ..Default::default()
        };
        assert_eq!(sustained(without_ramp), (Some(3_100.0), Some(false)));
    }

    #[test]
    fn the_pipeline_is_judged_against_its_lowest_ceiling() {
        let ceiling = |pct| crate::report::CeilingRun {
            lowest: Some("http".into()),
            lowest_per_s: Some(8_000.0),
            pipeline_events_per_s: Some(8_000.0 * pct / 100.0),
            pipeline_pct_of_lowest: Some(pct),
            ..Default::default()
        };
        let verdict = |pct| {
            evaluate(&Report {
                ceiling: Some(ceiling(pct)),
                ..Default::default()
            })
            .into_iter()
            .find(|t| t.id == "ours_pipeline_pct_of_lowest_ceiling")
            .unwrap()
        };
        assert_eq!(verdict(37.5).pass, Some(false));
        let met = verdict(50.0);
        assert_eq!((met.pass, met.measured), (Some(true), Some(50.0)));
        assert!(met.source.contains("http 8000/s"), "{}", met.source);
    }

    #[test]
    fn the_pipeline_is_also_judged_against_the_combined_ceiling() {
        let verdict = |pct| {
            evaluate(&Report {
                ceiling: Some(crate::report::CeilingRun {
                    combined_per_s: Some(4_000.0),
                    pipeline_events_per_s: Some(4_000.0 * pct / 100.0),
                    pipeline_pct_of_combined: Some(pct),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .into_iter()
            .find(|t| t.id == "ours_pipeline_pct_of_combined_ceiling")
            .unwrap()
        };
        assert_eq!(verdict(15.0).pass, Some(false));
        let met = verdict(50.0);
        assert_eq!((met.pass, met.measured), (Some(true), Some(50.0)));
        assert!(
            met.source.contains("combined ceiling 4000/s"),
            "{}",
            met.source
        );
    }
}
