//! `overhead`: what writing the outbox costs on the request path.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::harness::{measure, Hooks, Load};
use super::plots::plot_run;
use super::Ctx;
use crate::cli::OverheadArgs;
use crate::client::Target;
use crate::error::Result;
use crate::instance::{self, BackendSpec};
use crate::pipeline;
use crate::report::OverheadRun;
use crate::schedule::Schedule;
use crate::stats;

/// `overhead`: events on vs off, or (`--traces`) span export on vs off.
pub async fn overhead(ctx: &Ctx, args: &OverheadArgs) -> Result<OverheadRun> {
    let duration = args
        .duration_s
        .unwrap_or(if ctx.common.quick { 15.0 } else { 60.0 });
    // With --traces both sides write events; only the "on" side exports its
    // spans, to a sink that discards them.
    let sink = if args.traces {
        Some(instance::OtlpSink::start().await?)
    } else {
        None
    };
    let (feature, names) = if args.traces {
        ("export", ("export_on", "export_off"))
    } else {
        ("events", ("events_on", "events_off"))
    };
    let spec = |on: bool| BackendSpec {
        events_enabled: on || sink.is_some(),
        relay_enabled: false,
        env: match &sink {
            Some(sink) if on => vec![("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url.clone())],
            _ => Vec::new(),
        },
        ..ctx.extra_backend(&format!(
            "backend-{feature}-{}.log",
            if on { "on" } else { "off" }
        ))
    };
    let on = instance::spawn_backend(spec(true), &ctx.http).await?;
    let off = match instance::spawn_backend(spec(false), &ctx.http).await {
        Ok(off) => off,
        Err(e) => {
            on.stop().await;
            return Err(e);
        }
    };
    let on_target = Arc::new(Target::new(names.0, &on.url));
    let off_target = Arc::new(Target::new(names.1, &off.url));
    let method = if let Some(sink) = &sink {
        format!(
            "Two todo-backend instances started by todo-bench from the same binary against the \
             same database, identical but for OTEL_EXPORTER_OTLP_ENDPOINT: set on {} (spans of \
             each request, write batch and publish recorded and exported over OTLP/HTTP \
             protobuf to a sink this run started at {}, which accepts and discards them), unset \
             on {} (trace ids only). Both write events; neither runs a relay (the stack's \
             backend publishes both sides' rows, without exporting), so the difference measured \
             is the request path's: the request span and the write batch's span. End-to-end \
             figures are those of both sides together through the stack's relay and event \
             service. Requests alternate between the two, {} req/s each, so both sides share \
             the machine's load at the same moment.",
            on.url, sink.url, off.url, args.rate
        )
    } else {
        format!(
        "Two todo-backend instances started by todo-bench from the same binary against the same \
         database, identical but for EVENTS_ENABLED (true on {}, false on {}); neither runs a \
         relay (RELAY_ENABLED=false: the stack's backend publishes the events-on side's rows), so \
         the only difference on the request path is the outbox write. Requests alternate between \
         the two, {} req/s each, so both sides share the machine's load at the same moment. \
         The events-off side's tasks are deleted through it at the \
         end (no events), so the event service's projection never misses them. End-to-end \
         figures of this scenario include the stack relay's poll interval (its wake-up signal \
         only comes from its own process's writes).",
            on.url, off.url, args.rate
        )
    };
    let targets = vec![on_target, off_target.clone()];
    let result = async {
        let schedule = Schedule::constant(2.0 * args.rate, Duration::from_secs_f64(duration));
        measure(
            ctx,
            "overhead",
            targets.clone(),
            Load::Open(schedule),
            Hooks::default(),
        )
        .await
    }
    .await;
    // Clean up the events-off tasks whatever happened (with --traces both
    // sides' tasks have events).
    let leftovers = if sink.is_some() {
        Vec::new()
    } else {
        off_target.pool.lock().expect("pool lock").drain()
    };
    let http = ctx.http.clone();
    futures::stream::iter(leftovers)
        .for_each_concurrent(16, |id| {
            let http = http.clone();
            let url = format!("{}/tasks/{id}", off.url);
            async move {
                let _ = http.delete(url).send().await;
            }
        })
        .await;
    off.stop().await;
    on.stop().await;
    let (m, _) = result?;
    let on = m.recorders[0].report(m.window);
    let offr = m.recorders[1].report(m.window);
    let pipeline = pipeline::analyse(&m.events, m.window.as_secs_f64());
    let exported = sink.map(|s| s.requests.load(std::sync::atomic::Ordering::Relaxed));
    let run = OverheadRun {
        compared: feature.to_owned(),
        exports_received: exported,
        method: format!(
            "{method} {:.0} s of unrecorded warm-up first.",
            m.warmed.seconds
        ),
        rate_per_side: args.rate,
        duration_s: stats::round3(m.window.as_secs_f64()),
        overhead_p50_ms: stats::round3(on.latency.p50_ms - offr.latency.p50_ms),
        overhead_p95_ms: stats::round3(on.latency.p95_ms - offr.latency.p95_ms),
        overhead_p99_ms: stats::round3(on.latency.p99_ms - offr.latency.p99_ms),
        events_on: on,
        events_off: offr,
        pipeline,
        cpu: m.cpu(),
        timeline: m.timeline,
    };
    plot_run(
        &ctx.out,
        if args.traces {
            "trace-overhead"
        } else {
            "overhead"
        },
        &run.events_on,
        Some(&run.events_off),
        &run.pipeline,
        &run.timeline,
    )?;
    Ok(run)
}
