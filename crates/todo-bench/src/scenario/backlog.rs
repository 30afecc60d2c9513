//! `backlog`: how fast the relay drains a full outbox and the event
//! service consumes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::harness::{measure, Hooks, Load};
use super::plots::plot_run;
use super::Ctx;
use crate::cli::BacklogArgs;
use crate::client::Target;
use crate::error::Result;
use crate::instance::{self, BackendSpec};
use crate::pipeline;
use crate::report::BacklogRun;
use crate::sampler;
use crate::stats;

/// `backlog`.
pub async fn backlog(ctx: &Ctx, args: &BacklogArgs) -> Result<BacklogRun> {
    let rows = args
        .rows
        .unwrap_or(if ctx.common.quick { 10_000 } else { 100_000 });
    let dev = ctx.common.dev_script.clone();
    eprintln!("backlog: stopping the stack's backend (its relay) with ./dev stop backend");
    instance::dev(&dev, &["stop", "backend"]).await?;
    if args.isolate {
        eprintln!("backlog: stopping the event service until the relay has drained the outbox");
        instance::dev(&dev, &["stop", "event-service"]).await?;
    }
    let result = backlog_inner(ctx, args, rows, &dev).await;
    // Whatever happened, the stack's services run again at the end.
    for service in ["backend", "event-service"] {
        if instance::dev(&dev, &["start", service]).await.is_err() {
            eprintln!("backlog: could not restart {service}; run ./dev start {service}");
        }
    }
    result
}

async fn backlog_inner(ctx: &Ctx, args: &BacklogArgs, rows: u64, dev: &Path) -> Result<BacklogRun> {
    let filler = instance::spawn_backend(
        BackendSpec {
            relay_enabled: false,
            ..ctx.extra_backend("backend-relay-off.log")
        },
        &ctx.http,
    )
    .await?;
    let method = format!(
        "`./dev stop backend` stops the stack's backend and with it the only relay; todo-bench \
         starts a second backend with RELAY_ENABLED=false on {} and fills the outbox through the \
         API ({} closed-loop workers, the usual mix); then it stops that instance and runs \
         `./dev start backend`, whose relay drains the outbox.{} Rates come from the outbox's \
         published_at and the audit log's processed_at.",
        filler.url,
        args.concurrency,
        if args.isolate {
            " The event service is stopped until the outbox is empty, then started: each \
             rate is measured with the machine to itself."
        } else {
            " The event service consumes while the relay drains, on the same cores."
        }
    );
    let target = Arc::new(Target::new("backend_relay_off", &filler.url));
    let filler_cell = std::sync::Mutex::new(Some(filler));
    let fill_end = std::sync::Mutex::new(0.0f64);
    let fill_started = Instant::now();
    let hooks = Hooks {
        after_load: Some(Box::new(|| {
            Box::pin(async {
                *fill_end.lock().expect("lock") = fill_started.elapsed().as_secs_f64();
                let f = filler_cell.lock().expect("lock").take();
                if let Some(f) = f {
                    f.stop().await;
                }
                eprintln!("backlog: outbox filled; starting the relay with ./dev start backend");
                instance::dev(dev, &["start", "backend"]).await?;
                if args.isolate {
                    let deadline = Instant::now() + Duration::from_secs(ctx.common.drain_timeout_s);
                    while sampler::outbox_depth(&ctx.backend_db).await != Some(0) {
                        if Instant::now() > deadline {
                            return Err(crate::Error::Process(format!(
                                "the relay did not drain the outbox in {} s",
                                ctx.common.drain_timeout_s
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    eprintln!("backlog: outbox drained; starting the event service");
                    instance::dev(dev, &["start", "event-service"]).await?;
                }
                Ok(())
            })
        })),
        ..Default::default()
    };
    let measured = measure(
        ctx,
        "backlog",
        vec![target],
        Load::Closed {
            concurrency: args.concurrency,
            duration: Duration::from_secs(1_800),
            limit: Some(rows),
        },
        hooks,
    )
    .await;
    let leftover = filler_cell.lock().expect("lock").take();
    if let Some(f) = leftover {
        f.stop().await;
    }
    let (m, relay_started_s) = measured?;
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let span = |v: Vec<f64>| -> (f64, f64, usize) {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi, v.len())
    };
    let (p_lo, p_hi, p_n) = span(m.events.iter().filter_map(|e| e.published).collect());
    let (c_lo, c_hi, c_n) = span(m.events.iter().filter_map(|e| e.processed).collect());
    let rate = |n: usize, lo: f64, hi: f64| {
        if n > 1 && hi > lo {
            stats::round3(n as f64 / (hi - lo))
        } else {
            0.0
        }
    };
    let api = m.recorders[0].report(m.window);
    let run = BacklogRun {
        method,
        target_rows: rows,
        filled_rows: m.events.len() as u64,
        fill_s: stats::round3(m.window.as_secs_f64()),
        fill_rps: api.achieved_rps,
        relay_started_s: stats::round3(relay_started_s),
        relay_rows_per_s: rate(p_n, p_lo, p_hi),
        consume_events_per_s: rate(c_n, c_lo, c_hi),
        drain_s: if c_n > 0 {
            stats::round3(c_hi - relay_started_s)
        } else {
            0.0
        },
        api,
        pipeline,
        cpu: m.cpu(),
        timeline: m.timeline,
    };
    plot_run(
        &ctx.out,
        "backlog",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}
