//! `max`: closed-loop workers back to back.

use std::time::Duration;

use super::harness::{backend_targets, load_run, measure, Hooks, Load};
use super::plots::plot_run;
use super::Ctx;
use crate::cli::MaxArgs;
use crate::error::Result;
use crate::report::LoadRun;

/// `max`.
pub async fn max(ctx: &Ctx, args: &MaxArgs) -> Result<LoadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 10.0 } else { 30.0 });
    let (m, _) = measure(
        ctx,
        "max",
        backend_targets(ctx),
        Load::Closed {
            concurrency: args.concurrency,
            duration: Duration::from_secs_f64(duration),
            limit: None,
        },
        Hooks::default(),
    )
    .await?;
    let run = load_run(
        &m,
        "closed",
        None,
        Some(args.concurrency as u64),
        &ctx.common.mix.to_string(),
    );
    plot_run(
        &ctx.out,
        "max",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}
