//! `ramp`: rising rates, step by step, until the stack stops keeping up;
//! and the hold (`all`, after the ramp): around the highest rate that kept
//! up, a minute per step.

use std::time::Duration;

use super::harness::{backend_targets, measure, Hooks, Load};
use super::plots::plot_run;
use super::Ctx;
use crate::cli::RampArgs;
use crate::error::{Error, Result};
use crate::pipeline;
use crate::report::{RampRun, RampStep, SUSTAINED_FOR_S};
use crate::sampler::{self, Sampler};
use crate::schedule::Schedule;
use crate::stats::{self, LatencySummary};

/// Whether a ramp step kept up: almost every request succeeded at almost
/// the offered rate over the time the step really took (`took_s`: longer
/// than `step_s` when the API fell so far behind that sends were late), and
/// at the step's end the pipeline was less than half a second of events
/// behind (written by us minus processed by the service).
pub fn step_verdict(
    rate: f64,
    step_s: f64,
    took_s: f64,
    ok: u64,
    failed: u64,
    behind: i64,
) -> (bool, String) {
    let sent = ok + failed;
    let achieved = ok as f64 / took_s.max(step_s);
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
            // Steps of 500 up to 6 000 (10 % or less near the top, so the
            // hold starts close to the rate the stack keeps), then 8 000.
            vec![
                500.0, 1_000.0, 1_500.0, 2_000.0, 2_500.0, 3_000.0, 3_500.0, 4_000.0, 4_500.0,
                5_000.0, 5_500.0, 6_000.0, 8_000.0,
            ]
        }
    } else {
        args.rates.clone()
    };
    let step_s = args
        .step_s
        .unwrap_or(if ctx.common.quick { 4.0 } else { 15.0 });
    ramp_over(ctx, "ramp", &rates, step_s).await
}

/// The hold's rates after a ramp whose highest bounded rate was `bounded`:
/// 10 % below it (a rate kept for 15 s is not always kept for a minute, and
/// the hold stops at its first step that does not keep up), that rate, then
/// 5 and 10 % above it, to the nearest 50.
fn hold_rates(bounded: f64) -> Vec<f64> {
    [0.9, 1.0, 1.05, 1.10]
        .iter()
        .map(|f| (bounded * f / 50.0).round() * 50.0)
        .collect()
}

/// The hold (`all`, after `ramp`): a ramp over the [`hold_rates`] of the ramp's
/// highest bounded rate, [`SUSTAINED_FOR_S`] per step (the target's minute;
/// the ramp's steps of 15 s show only where to look; 5 s with --quick, a
/// smoke test).
pub async fn hold(ctx: &Ctx, ramp: &RampRun) -> Result<RampRun> {
    let Some(rate) = ramp.highest_bounded_rate else {
        return Err(Error::Config(
            "the ramp had no bounded step, so there is no rate to hold".into(),
        ));
    };
    let step_s = if ctx.common.quick {
        5.0
    } else {
        SUSTAINED_FOR_S
    };
    ramp_over(ctx, "hold", &hold_rates(rate), step_s).await
}

/// A ramp over `rates`, `step_s` each, against the context's backends,
/// reported and plotted as `label`.
pub(super) async fn ramp_over(
    ctx: &Ctx,
    label: &str,
    rates: &[f64],
    step_s: f64,
) -> Result<RampRun> {
    let schedule = Schedule::ramp(rates, Duration::from_secs_f64(step_s));
    let consumed_base = sampler::scrape_all(&ctx.http, &ctx.events_metrics_urls())
        .await
        .and_then(|s| stats::sum_of(&s, "events_consumed_total"))
        .unwrap_or(0.0);
    let mut prev = (0u64, 0u64);
    let judge = move |step: usize, sch: &Schedule, s: &Sampler, ok: u64, failed: u64, took_s| {
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
            took_s,
            step_ok,
            step_failed,
            behind,
        )
    };
    let (m, _) = measure(
        ctx,
        label,
        backend_targets(ctx),
        Load::Open(schedule.clone()),
        Hooks {
            judge_step: Some(Box::new(judge)),
            ..Default::default()
        },
    )
    .await?;
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let api = m.together();
    let mut steps = Vec::new();
    for (i, (bounded, why)) in m.step_verdicts.iter().enumerate() {
        let from = schedule.step_start(i).as_secs_f64();
        let to = from + step_s;
        let (lat, ok, failed) = api.step(i);
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
        api: api.report(m.window),
        cpu: m.cpu(),
        timeline: m.timeline.clone(),
        pipeline,
        steps,
    };
    plot_run(
        &ctx.out,
        label,
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_bounded_when_requests_succeed_and_the_pipeline_keeps_up() {
        assert!(step_verdict(1_000.0, 10.0, 10.0, 10_000, 0, 120).0);
        let (ok, why) = step_verdict(1_000.0, 10.0, 10.0, 10_000, 0, 900);
        assert!(!ok && why.contains("behind"), "{why}");
        let (ok, why) = step_verdict(1_000.0, 10.0, 10.0, 9_000, 0, 0);
        assert!(!ok && why.contains("achieved"), "{why}");
        let (ok, why) = step_verdict(1_000.0, 10.0, 10.0, 9_800, 200, 0);
        assert!(!ok && why.contains("failed"), "{why}");
        // Small rates get a floor of 200 events.
        assert!(step_verdict(100.0, 10.0, 10.0, 1_000, 0, 150).0);
    }

    #[test]
    fn the_hold_goes_from_ten_percent_below_the_highest_bounded_rate_to_ten_percent_above() {
        assert_eq!(hold_rates(5_000.0), [4_500.0, 5_000.0, 5_250.0, 5_500.0]);
        assert_eq!(hold_rates(4_000.0), [3_600.0, 4_000.0, 4_200.0, 4_400.0]);
        assert_eq!(hold_rates(1_500.0), [1_350.0, 1_500.0, 1_600.0, 1_650.0]);
    }

    #[test]
    fn a_step_whose_sends_fell_behind_is_not_bounded_though_all_its_requests_succeeded() {
        // Every request of a 10 s step at 4 000/s succeeded, but sending
        // them took 15 s: the API served 2 667/s.
        let (ok, why) = step_verdict(4_000.0, 10.0, 15.0, 40_000, 0, 0);
        assert!(!ok && why.contains("achieved 2667"), "{why}");
        // A step that ends a little late (a scheduler hiccup) still counts.
        assert!(step_verdict(4_000.0, 10.0, 10.2, 40_000, 0, 0).0);
    }
}
