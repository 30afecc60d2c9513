//! todo-bench: the load generator and pipeline benchmark of the todo stack.
//!
//! It drives the running stack over HTTP (open loop by the clock, or closed
//! loop at maximum throughput), samples consumer lag and outbox depth every
//! second, joins the outbox's and the audit log's timestamps for end-to-end
//! latency, and writes a JSON report, a Markdown summary and SVG plots.
//! Benchmarks report figures; nothing here asserts on speed.

pub mod calibrate;
pub mod cli;
pub mod client;
pub mod error;
pub mod instance;
pub mod load;
pub mod mix;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod schedule;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{Error, Result};

use cli::{Cli, Command, Common, LoadArgs};
use report::{Machine, Report, VerifyReport};
use scenario::keep;

/// Where reports go by default, one directory per run (relative to the
/// working directory: `./dev bench` runs from the repository's root).
pub const REPORTS_DIR: &str = "target/bench";

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<()> {
    let command = cli.command.unwrap_or(Command::All);
    if let Command::Load(args) = &command {
        return load_only(&cli.common, args).await;
    }
    let scenario = match &command {
        Command::Steady(_) => "steady",
        Command::Ramp(_) => "ramp",
        Command::Backlog(_) => "backlog",
        Command::Overhead(a) if a.traces => "trace-overhead",
        Command::Overhead(_) => "overhead",
        Command::Max(_) => "max",
        Command::Settle(_) => "settle",
        Command::Ceiling(_) => "ceiling",
        Command::Scale(_) => "scale",
        Command::All | Command::Load(_) => "all",
    };
    let started_at = chrono::Utc::now();
    let out = cli.common.out.clone().unwrap_or_else(|| {
        PathBuf::from(REPORTS_DIR)
            .join(format!("{scenario}-{}", started_at.format("%Y%m%d-%H%M%S")))
    });
    std::fs::create_dir_all(&out)?;
    // NB: before connecting, so none of the bench's own threads run meanwhile.
    let calibration = calibrate::calibrate(&out);
    let ctx = scenario::Ctx::connect(cli.common.clone(), out.clone()).await?;
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        scenario: scenario.into(),
        quick: cli.common.quick,
        started_at,
        machine: Machine {
            calibration: Some(calibration),
            ..machine()
        },
        ..Default::default()
    };
    match &command {
        Command::Steady(a) => report.steady = Some(scenario::steady(&ctx, a).await?),
        Command::Ramp(a) => report.ramp = Some(scenario::ramp(&ctx, a).await?),
        Command::Backlog(a) => report.backlog = Some(scenario::backlog(&ctx, a).await?),
        Command::Overhead(a) if a.traces => {
            report.trace_overhead = Some(scenario::overhead(&ctx, a).await?)
        }
        Command::Overhead(a) => report.overhead = Some(scenario::overhead(&ctx, a).await?),
        Command::Max(a) => report.max = Some(scenario::max(&ctx, a).await?),
        Command::Settle(a) => report.settle = Some(scenario::settle(&ctx, a).await?),
        Command::Ceiling(a) => report.ceiling = Some(scenario::ceiling(&ctx, a, None).await?),
        Command::Scale(a) => report.scale = Some(scenario::scale(&ctx, a).await?),
        Command::All => {
            let quick = cli.common.quick;
            let secs = |full: f64, q: f64| Some(if quick { q } else { full });
            // On a shared stack a scenario can meet an outage; the others still run.
            let mut errors = Vec::new();
            let steady = cli::SteadyArgs {
                rate: 1_000.0,
                duration_s: secs(60.0, 10.0),
            };
            report.steady = keep("steady", scenario::steady(&ctx, &steady).await, &mut errors);
            let overhead = cli::OverheadArgs {
                rate: 500.0,
                duration_s: secs(60.0, 8.0),
                traces: false,
            };
            report.overhead = keep(
                "overhead",
                scenario::overhead(&ctx, &overhead).await,
                &mut errors,
            );
            let ramp = cli::RampArgs {
                rates: Vec::new(),
                step_s: secs(15.0, 3.0),
            };
            report.ramp = keep("ramp", scenario::ramp(&ctx, &ramp).await, &mut errors);
            if let Some(ramp) = &report.ramp {
                report.hold = keep("hold", scenario::hold(&ctx, ramp).await, &mut errors);
            }
            let backlog = cli::BacklogArgs {
                rows: Some(if quick { 4_000 } else { 100_000 }),
                concurrency: 32,
                isolate: false,
            };
            report.backlog = keep(
                "backlog",
                scenario::backlog(&ctx, &backlog).await,
                &mut errors,
            );
            // Last: it loads the machine without the pipeline, and compares
            // with this run's hold (the rate kept for a minute), else its ramp.
            let sustained = report.hold.as_ref().or(report.ramp.as_ref());
            report.ceiling = keep(
                "ceiling",
                scenario::ceiling(&ctx, &cli::CeilingArgs::default(), sustained).await,
                &mut errors,
            );
            report.errors = errors;
        }
        Command::Load(_) => unreachable!("handled above"),
    }
    if !cli.common.no_verify {
        report.verify = verify(&ctx).await;
    }
    report.finished_at = chrono::Utc::now();
    report.targets = report::evaluate(&report);
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(out.join("summary.md"), report::markdown(&report))?;
    println!("todo-bench {scenario}: report in {}", out.display());
    for line in report::target_lines(&report.targets) {
        println!("{line}");
    }
    Ok(())
}

async fn verify(ctx: &scenario::Ctx) -> Option<VerifyReport> {
    match todo_reconcile::reconcile(&ctx.backend_db, &ctx.events_db).await {
        Ok(r) => Some(VerifyReport {
            expected: r.expected as u64,
            delivered: r.delivered as u64,
            missing: r.missing.len() as u64,
            duplicated_effects: r.duplicated_effects,
            unpublished: r.unpublished,
            mismatched: r.mismatched.len() as u64,
            clean: r.is_clean(),
        }),
        Err(e) => {
            eprintln!("todoctl verify failed: {e:#}");
            None
        }
    }
}

/// `load`: open loop against BACKEND_URL, then one summary line on stdout.
async fn load_only(common: &Common, args: &LoadArgs) -> Result<()> {
    if !(args.rate > 0.0 && args.duration_s > 0.0) {
        return Err(Error::Config(
            "--rate and --duration-s must be above 0".into(),
        ));
    }
    let api = client::Api::new(
        uuid::Uuid::new_v4(),
        Duration::from_millis(common.timeout_ms),
    );
    let target = Arc::new(client::Target::new("backend", &common.backend_url));
    let driver = load::Driver::new(api, vec![target], common.mix.clone());
    let schedule =
        schedule::Schedule::constant(args.rate, Duration::from_secs_f64(args.duration_s));
    let start = tokio::time::Instant::now();
    let (tx, collector) = load::collect(vec!["backend".into()], start);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(load::DEFAULT_MAX_IN_FLIGHT));
    load::open_loop(&driver, start, schedule.slots(), &in_flight, &tx).await;
    load::wait_in_flight(&in_flight, load::DEFAULT_MAX_IN_FLIGHT).await;
    drop(tx);
    let recorders = collector.await.map_err(|e| Error::Process(e.to_string()))?;
    println!(
        "{}",
        load::summary_line(&recorders[0].report(schedule.duration()))
    );
    Ok(())
}

/// The machine, from /proc.
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default(),
        memory_gib: meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| stats::round3(kb / 1024.0 / 1024.0))
            .unwrap_or(0.0),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        calibration: None,
    }
}
