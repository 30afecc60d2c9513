//! The plots of a run.

use std::path::Path;

use crate::error::Result;
use crate::load::{self, ApiReport};
use crate::pipeline::{self, PipelineReport};
use crate::plot::{self, Series};
use crate::sampler::TimelinePoint;

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
