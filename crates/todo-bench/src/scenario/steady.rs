//! `steady`: a constant open-loop rate.

use std::time::Duration;

use super::harness::{backend_targets, load_run, measure, Hooks, Load};
use super::plots::plot_run;
use super::Ctx;
use crate::cli::SteadyArgs;
use crate::error::Result;
use crate::report::LoadRun;
use crate::schedule::Schedule;

/// `steady`.
pub async fn steady(ctx: &Ctx, args: &SteadyArgs) -> Result<LoadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 15.0 } else { 60.0 });
    constant_rate(ctx, "steady", args.rate, duration, Hooks::default()).await
}

/// `rate` requests per second for `duration_s` against the stack's backend,
/// measured, reported and plotted as `label`.
pub(super) async fn constant_rate(
    ctx: &Ctx,
    label: &str,
    rate: f64,
    duration_s: f64,
    hooks: Hooks<'_>,
) -> Result<LoadRun> {
    let schedule = Schedule::constant(rate, Duration::from_secs_f64(duration_s));
    let (m, _) = measure(
        ctx,
        label,
        backend_targets(ctx),
        Load::Open(schedule),
        hooks,
    )
    .await?;
    let run = load_run(&m, "open", Some(rate), None, &ctx.common.mix.to_string());
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
