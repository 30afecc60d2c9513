//! `scale`: more instances of the services on the three-broker stack. For
//! each configuration (backends × event services) the extra instances are
//! started next to the stack's own, the consumer group is left to balance,
//! and a ramp finds the highest rate the pipeline keeps up with. Then, under
//! a constant load, event services join, leave and crash, and the report
//! says how long each rebalance took to absorb.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::time::Instant;

use super::harness::{load_run, measure, Hooks, Load};
use super::plots::plot_run;
use super::ramp::ramp_over;
use super::settle::{median, settled_bound, settled_from, WINDOW_S};
use super::Ctx;
use crate::cli::ScaleArgs;
use crate::error::{Error, Result};
use crate::instance::{self, Instance, ServiceSpec};
use crate::pipeline::PipelineSecond;
use crate::report::{MembershipChange, RebalanceRun, ScaleConfig, ScaleRun};
use crate::sampler::{self, TimelinePoint};
use crate::schedule::Schedule;
use crate::stats;

/// Longest wait for the consumer group to spread the partitions over a
/// configuration's event services.
const BALANCE_TIMEOUT: Duration = Duration::from_secs(60);

/// `scale`.
pub async fn scale(ctx: &Ctx, args: &ScaleArgs) -> Result<ScaleRun> {
    let quick = ctx.common.quick;
    let backends = or(&args.backends, &[1, 2]);
    let event_services = or(&args.event_services, &[1, 2, 3]);
    let rates = or(
        &args.rates,
        &[
            1_000.0, 1_500.0, 2_000.0, 2_500.0, 3_000.0, 3_500.0, 4_000.0,
        ],
    );
    let step_s = args.step_s.unwrap_or(if quick { 3.0 } else { 10.0 });
    let brokers = broker_count(ctx).await?;
    if brokers < 3 {
        eprintln!(
            "scale: the cluster has {brokers} broker(s); the figures are meant for three \
             (./dev up --brokers 3)"
        );
    }
    let partitions = ctx.lag.as_ref().map_or(0, |l| l.partitions());
    let mut run = ScaleRun {
        brokers,
        partitions,
        ..Default::default()
    };
    for &b in backends.iter().filter(|_| !args.no_ramps) {
        for &e in &event_services {
            eprintln!("scale: {b} backend(s), {e} event service(s)");
            run.configs
                .push(configuration(ctx, b, e, &rates, step_s, partitions).await?);
        }
    }
    if !args.no_rebalance {
        let every_s = args
            .rebalance_every_s
            .unwrap_or(if quick { 12.0 } else { 20.0 });
        eprintln!(
            "scale: event services joining and leaving at {} req/s",
            args.rebalance_rate
        );
        run.rebalance = Some(rebalance(ctx, args.rebalance_rate, every_s, partitions).await?);
    }
    Ok(run)
}

fn or<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() {
        default.to_vec()
    } else {
        given.to_vec()
    }
}

/// Brokers the cluster reports.
async fn broker_count(ctx: &Ctx) -> Result<usize> {
    let cfg = ctx
        .common
        .kafka
        .client_config(&[])
        .map_err(|e| Error::Config(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = cfg.create()?;
        Ok(consumer
            .fetch_metadata(None, Duration::from_secs(10))?
            .brokers()
            .len())
    })
    .await
    .map_err(|e| Error::Process(e.to_string()))?
}

/// Extra instances started for one configuration; stopped together.
struct Extras {
    backends: Vec<Instance>,
    event_services: Vec<Instance>,
}

impl Extras {
    async fn stop(self) {
        for i in self.backends.into_iter().chain(self.event_services) {
            i.stop().await;
        }
    }
}

/// Starts extra backend number `n` (the stack's own is 1). Its relay
/// competes for the leadership: one relay publishes at a time.
async fn start_backend(ctx: &Ctx, n: usize) -> Result<Instance> {
    instance::spawn_backend(ctx.extra_backend(&format!("backend-{n}.log")), &ctx.http).await
}

/// Starts extra event service number `n` in the stack's consumer group.
async fn start_event_service(ctx: &Ctx, n: usize) -> Result<Instance> {
    instance::spawn_service(
        ServiceSpec {
            name: "event service",
            bin: &ctx.common.event_service_bin,
            crate_name: "todo-event-service",
            log: ctx.out.join(format!("event-service-{n}.log")),
            env: vec![
                ("EVENT_DATABASE_URL", ctx.common.event_database_url.clone()),
                (
                    "KAFKA_BOOTSTRAP_SERVERS",
                    ctx.common.kafka.bootstrap_servers.clone(),
                ),
                ("KAFKA_TOPIC_PREFIX", ctx.common.kafka.topic_prefix.clone()),
                ("KAFKA_GROUP_ID", ctx.common.consumer_group.clone()),
            ],
        },
        &ctx.http,
    )
    .await
}

/// Waits until every event service in `urls` has partitions and together
/// they have all `partitions`; the seconds it took, `None` after
/// [`BALANCE_TIMEOUT`] (or when the partition count is unknown).
async fn wait_balanced(ctx: &Ctx, urls: &[String], partitions: usize) -> Option<f64> {
    if partitions == 0 {
        return None;
    }
    let began = Instant::now();
    while began.elapsed() < BALANCE_TIMEOUT {
        let mut counts = Vec::new();
        for u in super::metrics_urls(urls) {
            let m = sampler::scrape(&ctx.http, &u)
                .await
                .and_then(|s| stats::sum_of(&s, "consumer_assigned_partitions"));
            counts.push(m.unwrap_or(0.0) as usize);
        }
        let all = counts.iter().sum::<usize>() == partitions;
        let spread = counts.iter().all(|&c| c > 0) || urls.len() > partitions;
        if all && spread {
            return Some(stats::round3(began.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "scale: the group did not spread {partitions} partitions over {} event services in {} s",
        urls.len(),
        BALANCE_TIMEOUT.as_secs()
    );
    None
}

/// One configuration: `b` backends and `e` event services, and a ramp.
async fn configuration(
    ctx: &Ctx,
    b: usize,
    e: usize,
    rates: &[f64],
    step_s: f64,
    partitions: usize,
) -> Result<ScaleConfig> {
    let began = Instant::now();
    let mut extras = Extras {
        backends: Vec::new(),
        event_services: Vec::new(),
    };
    let started = async {
        for n in 2..=b {
            extras.backends.push(start_backend(ctx, n).await?);
        }
        for n in 2..=e {
            extras
                .event_services
                .push(start_event_service(ctx, n).await?);
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(err) = started {
        extras.stop().await;
        return Err(err);
    }
    let mut cctx = ctx.clone();
    cctx.backends
        .extend(extras.backends.iter().map(|i| i.url.clone()));
    cctx.event_services
        .extend(extras.event_services.iter().map(|i| i.url.clone()));
    let balanced = wait_balanced(ctx, &cctx.event_services, partitions)
        .await
        .map(|_| stats::round3(began.elapsed().as_secs_f64()));
    let ramp = ramp_over(&cctx, &format!("scale-b{b}-e{e}"), rates, step_s).await;
    extras.stop().await;
    let ramp = ramp?;
    let best = ramp
        .steps
        .iter()
        .find(|s| s.bounded && Some(s.rate) == ramp.highest_bounded_rate);
    let bounded_until = ramp.steps.iter().take_while(|s| s.bounded).count() as f64 * step_s;
    Ok(ScaleConfig {
        backends: b,
        event_services: e,
        balanced_after_s: balanced,
        highest_bounded_rate: ramp.highest_bounded_rate,
        events_per_s: ramp.highest_sustained_events_per_s,
        e2e_p99_ms: best.map(|s| s.e2e_p99_ms),
        consumer_lag_max: lag_max(&ramp.timeline, 0.0, bounded_until),
        stopped_because: ramp
            .steps
            .iter()
            .find(|s| !s.bounded)
            .map(|s| format!("at {} req/s: {}", s.rate, s.why))
            .unwrap_or_default(),
        ramp,
    })
}

/// The largest summed consumer lag sampled in `[from_s, to_s)`.
fn lag_max(timeline: &[TimelinePoint], from_s: f64, to_s: f64) -> Option<i64> {
    timeline
        .iter()
        .filter(|p| p.t_s >= from_s && p.t_s < to_s)
        .filter_map(|p| p.consumer_lag)
        .max()
}

/// Under a constant load with two event services (the stack's and one
/// more): a third joins, leaves with a goodbye (SIGTERM), then the second
/// crashes (SIGKILL: the group notices after its session timeout).
async fn rebalance(ctx: &Ctx, rate: f64, every_s: f64, partitions: usize) -> Result<RebalanceRun> {
    let second = start_event_service(ctx, 2).await?;
    let mut urls = ctx.event_services.clone();
    urls.push(second.url.clone());
    wait_balanced(ctx, &urls, partitions).await;
    let every = Duration::from_secs_f64(every_s);
    let schedule = Schedule::constant(rate, every * 4);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let hooks = Hooks {
        started: Some(tx),
        ..Hooks::default()
    };
    // The stage histograms come from the stack's own event service only:
    // the others come and go during the run.
    let measured = measure(
        ctx,
        "scale-rebalance",
        super::harness::backend_targets(ctx),
        Load::Open(schedule),
        hooks,
    );
    let changes = async {
        let Ok(start) = rx.await else {
            second.stop().await;
            return Vec::new();
        };
        let at = |start: Instant| stats::round3(start.elapsed().as_secs_f64());
        let mut changes = Vec::new();
        tokio::time::sleep_until(start + every).await;
        // NB: timed from the process's start, which the join includes.
        let t = at(start);
        let third = match start_event_service(ctx, 3).await {
            Ok(third) => {
                changes.push((t, "event service 3 joined".to_owned(), 3));
                Some(third)
            }
            Err(e) => {
                eprintln!("scale: event service 3 did not start: {e}");
                None
            }
        };
        tokio::time::sleep_until(start + every * 2).await;
        let t = at(start);
        if let Some(third) = third {
            third.stop().await;
            changes.push((t, "event service 3 left (SIGTERM)".into(), 2));
        }
        tokio::time::sleep_until(start + every * 3).await;
        let t = at(start);
        second.kill().await;
        changes.push((t, "event service 2 crashed (SIGKILL)".into(), 1));
        changes
    };
    let (measured, changes) = tokio::join!(measured, changes);
    let (m, _) = measured?;
    let run = load_run(&m, "open", Some(rate), None, &ctx.common.mix.to_string());
    plot_run(
        &ctx.out,
        "scale-rebalance",
        &run.api,
        None,
        &run.pipeline,
        &run.timeline,
    )?;
    let first = changes.first().map_or(f64::MAX, |c| c.0);
    let steady = steady_before(&run.pipeline.per_second, first);
    let bound = steady.map(settled_bound);
    let mut out = Vec::new();
    for (i, (at_s, what, instances_after)) in changes.iter().enumerate() {
        let until = changes.get(i + 1).map_or(f64::MAX, |c| c.0);
        let seconds: Vec<&PipelineSecond> = run
            .pipeline
            .per_second
            .iter()
            .filter(|s| s.created > 0 && affected_by(s.t_s, *at_s, until))
            .collect();
        out.push(MembershipChange {
            at_s: *at_s,
            what: what.clone(),
            instances_after: *instances_after,
            absorbed_after_s: bound.and_then(|b| absorption(&seconds, *at_s, b)),
            seconds_over_bound: bound.map_or(0, |b| {
                seconds.iter().filter(|s| s.e2e_p99_ms > b).count() as u64
            }),
            worst_e2e_p99_ms: seconds.iter().map(|s| s.e2e_p99_ms).max_by(f64::total_cmp),
            consumer_lag_max: lag_max(&run.timeline, *at_s, until),
            min_processed_per_s: seconds.iter().map(|s| s.processed).min(),
        });
    }
    Ok(RebalanceRun {
        rate,
        steady_e2e_p99_ms: steady.map(stats::round3),
        bound_ms: bound.map(stats::round3),
        changes: out,
        run,
    })
}

/// Whether the events written in second `t_s` belong to the change at
/// `at_s` (the next one at `until_s`): those of the second before a change
/// are still on their way when it happens, so they count with it.
fn affected_by(t_s: u64, at_s: f64, until_s: f64) -> bool {
    let t = t_s as f64 + 1.0;
    t >= at_s.floor() && t < until_s.floor()
}

/// The median per-second end-to-end p99 from the first full window to
/// the second before `until_s` (the first change).
fn steady_before(per_second: &[PipelineSecond], until_s: f64) -> Option<f64> {
    let p99: Vec<f64> = per_second
        .iter()
        .filter(|s| s.created > 0 && affected_by(s.t_s, 0.0, until_s))
        .skip(WINDOW_S)
        .map(|s| s.e2e_p99_ms)
        .collect();
    (!p99.is_empty()).then(|| median(&p99))
}

/// Seconds from a change at `at_s` until the per-second p99 of `seconds`
/// (those from the change to the next one) stayed within `bound` for good;
/// `None` when it never did, or there were too few seconds to judge.
pub fn absorption(seconds: &[&PipelineSecond], at_s: f64, bound: f64) -> Option<f64> {
    let p99: Vec<f64> = seconds.iter().map(|s| s.e2e_p99_ms).collect();
    let from = settled_from(&p99, bound);
    seconds
        .get(from)
        .map(|s| stats::round3((s.t_s as f64 - at_s).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(from: u64, p99s: &[f64]) -> Vec<PipelineSecond> {
        p99s.iter()
            .enumerate()
            .map(|(i, &p)| PipelineSecond {
                t_s: from + i as u64,
                created: 1_000,
                e2e_p99_ms: p,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_rebalance_is_absorbed_when_the_slow_stretch_after_it_ends() {
        // A change at 20.4 s; the p99 is high for 4 seconds, then back.
        let mut p = vec![400.0, 900.0, 600.0, 200.0];
        p.extend([30.0; 12]);
        let s = seconds(20, &p);
        let refs: Vec<&PipelineSecond> = s.iter().collect();
        assert_eq!(absorption(&refs, 20.4, 60.0), Some(3.6));
    }

    #[test]
    fn a_change_the_pipeline_did_not_notice_is_absorbed_at_once() {
        let s = seconds(40, &[30.0; 15]);
        let refs: Vec<&PipelineSecond> = s.iter().collect();
        assert_eq!(absorption(&refs, 40.2, 60.0), Some(0.0));
    }

    #[test]
    fn a_change_still_slow_at_the_next_one_was_not_absorbed() {
        let mut p = vec![30.0; 5];
        p.extend([500.0; 10]);
        let s = seconds(60, &p);
        let refs: Vec<&PipelineSecond> = s.iter().collect();
        assert_eq!(absorption(&refs, 60.0, 60.0), None);
    }

    #[test]
    fn the_second_before_a_change_counts_with_it() {
        // A crash at 36.2 s: the events of second 35 were still in flight.
        assert!(!affected_by(34, 36.2, 60.0));
        assert!(affected_by(35, 36.2, 60.0));
        assert!(affected_by(58, 36.2, 60.0));
        assert!(!affected_by(59, 36.2, 60.0));
    }

    #[test]
    fn the_steady_state_is_taken_before_the_first_change_after_the_first_window() {
        let mut p = vec![500.0; WINDOW_S];
        p.extend([20.0, 22.0, 24.0]);
        p.extend([900.0; 5]);
        let s = seconds(0, &p);
        assert_eq!(steady_before(&s, 9.5), Some(22.0));
        assert_eq!(steady_before(&s, 3.0), None);
    }
}
