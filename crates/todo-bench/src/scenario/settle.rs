//! `settle`: the stack right after a restart. The services (and with
//! `--infra` PostgreSQL, Redis and Kafka too) are restarted with `./dev`,
//! then the constant open-loop load starts at once, with no warm-up, and the
//! report says how long the pipeline took to reach its steady state.

use std::time::Instant;

use super::harness::Hooks;
use super::steady::constant_rate;
use super::Ctx;
use crate::cli::SettleArgs;
use crate::error::Result;
use crate::instance;
use crate::pipeline::PipelineSecond;
use crate::report::{SettleRun, Settling};
use crate::stats;

/// A second is settled when its end-to-end p99 is within this factor of
/// the steady state's...
pub const SETTLED_FACTOR: f64 = 2.0;
/// ...or within this many milliseconds of it, whichever is larger (a
/// steady state of a few milliseconds is not held to a few more).
pub const SETTLED_MARGIN_MS: f64 = 10.0;

/// `settle`.
pub async fn settle(ctx: &Ctx, args: &SettleArgs) -> Result<SettleRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 20.0 } else { 60.0 });
    let dev = &ctx.common.dev_script;
    let mut restarted: Vec<&str> = Vec::new();
    if args.infra {
        restarted.extend(["kafka", "postgres", "redis"]);
    }
    restarted.extend(["backend", "event-service"]);
    eprintln!("settle: restarting {} with ./dev", restarted.join(", "));
    let began = Instant::now();
    for c in restarted.iter().rev() {
        instance::dev(dev, &["stop", c]).await?;
    }
    for c in &restarted {
        instance::dev(dev, &["start", c]).await?;
    }
    // NB: the benchmark's pools test a connection before handing it out, so
    // those PostgreSQL's restart cut are replaced, not used.
    let restart_s = stats::round3(began.elapsed().as_secs_f64());
    let hooks = Hooks {
        skip_warmup: true,
        ..Hooks::default()
    };
    let run = constant_rate(ctx, "settle", args.rate, duration, hooks).await?;
    Ok(SettleRun {
        restarted: restarted.iter().map(|s| s.to_string()).collect(),
        restart_s,
        settling: settling(&run.pipeline.per_second),
        run,
    })
}

/// The per-second p99 at or below which a second counts as settled, for a
/// steady state of `steady_ms`.
pub fn settled_bound(steady_ms: f64) -> f64 {
    (steady_ms * SETTLED_FACTOR).max(steady_ms + SETTLED_MARGIN_MS)
}

/// The index of the first second of `p99` (per-second p99s) after which the
/// median of every [`WINDOW_S`]-second window stays at or below `bound`:
/// one slow second is noise, a slow stretch is not. `p99.len()` when the
/// last window is still above it, or when there is not one whole window.
pub fn settled_from(p99: &[f64], bound: f64) -> usize {
    // Windows starting at each second; the last unsettled one ends the
    // unsettled stretch.
    let windows: Vec<f64> = p99.windows(WINDOW_S).map(median).collect();
    match windows.last() {
        None => return p99.len(),
        Some(&last) if last > bound => return p99.len(),
        Some(_) => {}
    }
    windows.iter().rposition(|&w| w > bound).map_or(0, |i| {
        // The stretch ends after that window's last second above the bound.
        let last_slow = (i..i + WINDOW_S).rev().find(|&j| p99[j] > bound);
        last_slow.map_or(i + WINDOW_S, |j| j + 1)
    })
}

/// The median of `xs` (the upper one of an even count); 0 when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Seconds per window when judging whether the stack has settled: one slow
/// second on a shared machine is noise, a slow stretch is not.
pub const WINDOW_S: usize = 5;

/// When the end-to-end p99 (by the second an event was written) came down
/// to the steady state for good. The steady state is the median per-second
/// p99 of the run's second half; the stack is settled from the first second
/// after which the median p99 of every [`WINDOW_S`]-second window stays
/// within [`SETTLED_FACTOR`] (or [`SETTLED_MARGIN_MS`]) of it.
pub fn settling(per_second: &[PipelineSecond]) -> Settling {
    let loaded: Vec<&PipelineSecond> = per_second.iter().filter(|s| s.created > 0).collect();
    if loaded.len() < 2 * WINDOW_S {
        return Settling::default();
    }
    let p99: Vec<f64> = loaded.iter().map(|s| s.e2e_p99_ms).collect();
    let steady = median(&p99[p99.len() / 2..]);
    let bound = settled_bound(steady);
    let settled_from = settled_from(&p99, bound);
    let settled_in_run = settled_from < loaded.len();
    Settling {
        steady_e2e_p99_ms: Some(stats::round3(steady)),
        bound_ms: Some(stats::round3(bound)),
        settled_after_s: settled_in_run.then(|| loaded[settled_from].t_s as f64),
        worst_e2e_p99_ms_before: p99[..settled_from.min(p99.len())]
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .map(stats::round3),
        settled_in_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(p99s: &[f64]) -> Vec<PipelineSecond> {
        p99s.iter()
            .enumerate()
            .map(|(i, &p)| PipelineSecond {
                t_s: i as u64,
                created: 1_000,
                e2e_p99_ms: p,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_stack_that_starts_slow_settles_after_its_slow_stretch() {
        let mut p = vec![900.0, 700.0, 400.0, 300.0, 200.0, 150.0];
        p.extend([30.0; 14]);
        let s = settling(&seconds(&p));
        assert_eq!(s.steady_e2e_p99_ms, Some(30.0));
        assert_eq!(s.bound_ms, Some(60.0));
        // The window starting at 3 s (300, 200, 150, 30, 30) is the last
        // whose median is above 60 ms; its last second above is 5 s.
        assert_eq!(s.settled_after_s, Some(6.0));
        assert_eq!(s.worst_e2e_p99_ms_before, Some(900.0));
        assert!(s.settled_in_run);
    }

    #[test]
    fn one_slow_second_later_on_is_noise_not_settling() {
        let mut p = vec![20.0; 20];
        p[12] = 400.0;
        let s = settling(&seconds(&p));
        assert_eq!(s.settled_after_s, Some(0.0));
        assert_eq!(s.worst_e2e_p99_ms_before, None);
    }

    #[test]
    fn a_small_steady_state_gets_the_margin_not_the_factor() {
        // 4 ms steady: 2x would be 8 ms, the margin allows 14 ms.
        let mut p = vec![13.0; 5];
        p.extend([4.0; 10]);
        let s = settling(&seconds(&p));
        assert_eq!(s.bound_ms, Some(14.0));
        assert_eq!(s.settled_after_s, Some(0.0));
    }

    #[test]
    fn a_run_still_slow_at_its_end_did_not_settle() {
        let mut p = vec![20.0; 20];
        p.extend([100.0; 3]);
        let s = settling(&seconds(&p));
        assert!(!s.settled_in_run);
        assert_eq!(s.settled_after_s, None);
    }

    #[test]
    fn a_run_whose_last_window_is_slow_did_not_settle_though_its_last_seconds_are_fast() {
        let mut p = vec![20.0; 20];
        p.extend([900.0, 900.0, 900.0, 30.0, 30.0]);
        assert_eq!(settled_from(&p, 60.0), p.len());
        assert_eq!(
            settled_from(&p[..3], 60.0),
            3,
            "no whole window: not judged"
        );
    }

    #[test]
    fn seconds_without_load_do_not_count() {
        let mut p = vec![500.0; 3];
        p.extend([20.0; 10]);
        let mut s = seconds(&p);
        s.push(PipelineSecond {
            t_s: 13,
            created: 0,
            e2e_p99_ms: 0.0,
            ..Default::default()
        });
        let r = settling(&s);
        assert_eq!(r.settled_after_s, Some(3.0));
    }
}
