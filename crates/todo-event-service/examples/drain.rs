//! Throughput and latency figures of the event service against the local
//! stack (`./dev up --infra`; `eval "$(./dev env)"`):
//!
//! ```text
//! cargo run --release -p todo-event-service --example drain -- [EVENTS] [STEADY_SECONDS]
//! ```
//!
//! 1. Drain: produces a backlog of EVENTS (default 120 000: created, updated,
//!    completed per task), then starts the service and reports how fast the
//!    Postgres handlers work through it.
//! 2. Steady: produces 1 000 events/s for STEADY_SECONDS (default 30) and
//!    reports the highest consumer lag sampled and the processing-time p95.
//!
//! Figures only; nothing is asserted (tests never assert on wall-clock speed).

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_event_service::{Application, Config};
use todo_events::{
    ContentType, Event, EventVersion, Payload, TaskCompleted, TaskCreated, TaskStatus, TaskUpdated,
};
use todo_kafka::{ProducerArgs, TopicNames};
use todo_testkit::Stack;
use tokio_util::sync::CancellationToken;

fn events_for(task_id: i64) -> [Event; 3] {
    let now = chrono::Utc::now();
    let cid = uuid::Uuid::new_v4();
    [
        Event::new(
            Payload::Created(TaskCreated {
                task_id,
                title: format!("task {task_id}"),
                description: Some("benchmark".into()),
                status: TaskStatus::Incomplete,
                created_at: now,
                user_id: None,
                task_version: Some(1),
            }),
            EventVersion::V2,
            cid,
        ),
        Event::new(
            Payload::Updated(TaskUpdated {
                task_id,
                title: format!("task {task_id}, renamed"),
                description: Some("benchmark".into()),
                status: TaskStatus::Incomplete,
                updated_at: now,
                changes: Default::default(),
                user_id: None,
                task_version: Some(2),
            }),
            EventVersion::V2,
            cid,
        ),
        Event::new(
            Payload::Completed(TaskCompleted {
                task_id,
                completed_at: now,
                user_id: None,
                task_version: Some(3),
            }),
            EventVersion::V2,
            cid,
        ),
    ]
}

async fn produce(producer: &FutureProducer, topics: &TopicNames, events: &[Event]) {
    let encoded: Vec<_> = events
        .iter()
        .map(|e| {
            (
                topics.for_event(e.event_type()),
                e.key(),
                e.encode(ContentType::Json).unwrap(),
            )
        })
        .collect();
    let sends = encoded.iter().map(|(t, k, v)| {
        producer.send(
            FutureRecord::to(t).key(k.as_str()).payload(v.as_slice()),
            Duration::from_secs(60),
        )
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|(e, _)| e).expect("produced");
    }
}

fn histogram_counts(metrics: &str) -> Vec<(f64, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("event_processing_duration_seconds_bucket{"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let diff: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - before
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, m)| *m),
            )
        })
        .collect();
    let total = diff.last().map_or(0.0, |(_, n)| *n);
    diff.iter()
        .find(|(_, n)| *n >= q * total)
        .map_or(f64::NAN, |(le, _)| *le)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    todo_event_service::telemetry::init("text");
    let mut args = std::env::args().skip(1);
    let n: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(120_000);
    let steady_s: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let stack = Stack::from_env();
    let database_url = stack.fresh_database().await?;
    let prefix = stack.unique_topic_prefix();
    let topics = TopicNames::new(prefix.clone());
    todo_testkit::create_topics(&stack, &topics.all()).await?;
    let producer: FutureProducer = stack
        .kafka_args(&prefix)
        .producer_config(&ProducerArgs::default())?
        .create()?;

    let tasks = n / 3;
    let t = Instant::now();
    for chunk in (1..=tasks).collect::<Vec<_>>().chunks(5_000) {
        let events: Vec<Event> = chunk.iter().flat_map(|id| events_for(*id)).collect();
        produce(&producer, &topics, &events).await;
    }
    let total = tasks * 3;
    println!(
        "produced a backlog of {total} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut config = Config::from_env();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.database_url = todo_runtime::Secret::new(&database_url);
    config.kafka = stack.kafka_args(&prefix);
    config.consumer.client.group_id = format!("bench-{}", todo_testkit::short_id());
    config.consumer.lag_interval_ms = 500;
    let app = Application::build(config).await?;
    let address = format!("http://{}", app.local_addr());
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(cancel.clone()));
    let pool = sqlx::PgPool::connect(&database_url).await?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    let started = Instant::now();
    let (mut first, mut first_n) = (None, 0);
    loop {
        let c = count().await;
        if first.is_none() && c > 0 {
            first = Some(Instant::now());
            first_n = c;
        }
        if c >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let busy = first.unwrap().elapsed().as_secs_f64();
    println!(
        "drain: {total} events in {:.1} s from start (group join included); {:.0} events/s once consuming",
        started.elapsed().as_secs_f64(),
        (total - first_n) as f64 / busy
    );

    let client = reqwest::Client::new();
    let metrics = || async {
        client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The lag gauge settles (a sample taken while draining may be published late).
    let total_lag = |m: String| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("consumer_lag{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let settle = Instant::now();
    while total_lag(metrics().await) > 0.0 && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = histogram_counts(&metrics().await);
    let mut max_lag = 0.0f64;
    let mut max_part = 0.0f64;
    let mut next_id = tasks + 1;
    let steady_from = chrono::Utc::now();
    let steady_start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_sample = Instant::now();
    while steady_start.elapsed() < Duration::from_secs(steady_s) {
        tick.tick().await;
        // 100 events per 100 ms: ~34 tasks x 3 events.
        let events: Vec<Event> = (next_id..next_id + 33)
            .flat_map(events_for)
            .take(100)
            .collect();
        next_id += 34;
        produce(&producer, &topics, &events).await;
        if last_sample.elapsed() >= Duration::from_millis(500) {
            last_sample = Instant::now();
            let m = metrics().await;
            max_part = m
                .lines()
                .filter(|l| l.starts_with("consumer_lag{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .fold(max_part, f64::max);
            max_lag = max_lag.max(total_lag(m));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = histogram_counts(&metrics().await);
    println!(
        "steady 1000 events/s for {steady_s} s: highest total consumer lag sampled {max_lag:.0} (highest of one partition {max_part:.0}); \
         processing time (read to committed, histogram bucket bounds): p50 <= {:.4} s, p95 <= {:.4} s, p99 <= {:.4} s",
        quantile(&before, &after, 0.5),
        quantile(&before, &after, 0.95),
        quantile(&before, &after, 0.99)
    );
    let (p50, p95_e2e, max): (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.95) WITHIN GROUP (ORDER BY d), max(d)
         FROM (SELECT extract(epoch FROM processed_at - event_timestamp)::float8 AS d
               FROM audit_log WHERE event_timestamp >= $1) s",
    )
    .bind(steady_from)
    .fetch_one(&pool)
    .await?;
    println!(
        "steady, event timestamp to its transaction (produce + Kafka + processing): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        p50 * 1e3,
        p95_e2e * 1e3,
        max * 1e3
    );
    cancel.cancel();
    handle.await??;
    Ok(())
}
