//! `steady`: a constant open-loop rate.

use std::time::Duration;

use super::harness::{backend_target, load_run, measure, Hooks, Load};
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
    let schedule = Schedule::constant(args.rate, Duration::from_secs_f64(duration));
    let (m, _) = measure(
        ctx,
        "steady",
        vec![backend_target(ctx)],
        Load::Open(schedule),
        Hooks::default(),
    )
    .await?;
    let run = load_run(
        &m,
        "open",
        Some(args.rate),
        None,
        &ctx.common.mix.to_string(),
    );
    plot_run(
        &ctx.out,
        "steady",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}
