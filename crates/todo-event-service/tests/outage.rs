//! Outages of a shared dependency: these tests stop Postgres or Redis of the
//! local stack (and always start it again), so they live in their own test
//! binary (cargo runs test binaries one at a time) and run one at a time.

#[path = "api/helpers.rs"]
mod helpers;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use helpers::*;
use todo_events::TaskStatus;

/// One outage at a time within this binary.
static OUTAGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn dev(args: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(root.join("dev"))
        .args(args)
        .current_dir(&root)
        .status()
        .expect("./dev runs");
    assert!(status.success(), "./dev {args:?} failed");
}

/// Stops a component of the stack; starts it again when dropped, whatever happens.
struct Stopped(&'static str);

impl Stopped {
    fn new(component: &'static str) -> Self {
        dev(&["stop", component]);
        Self(component)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        dev(&["start", self.0]);
    }
}

/// One series of a `/metrics` text, 0 until it is exported.
fn metric(text: &str, series: &str) -> f64 {
    todo_testkit::metric_value(text, series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_postgres_is_down_consumption_pauses_and_resumes_with_nothing_lost_or_dead_lettered()
{
    let _one = OUTAGE.lock().await;
    // Arrange
    let h = Harness::new().await;
    let svc = h.spawn().await;
    h.produce(
        &(1..=20)
            .map(|id| created(id, Some(1), 0, "before"))
            .collect::<Vec<_>>(),
    )
    .await;
    h.wait_for("SELECT count(*) FROM processed_events", 20)
        .await;
    let outage_line = "dependency_outage_retries_total{dependency=\"postgres\"}";
    let before = metric(
        &svc.get("/metrics").await.text().await.unwrap(),
        outage_line,
    );

    // Act: Postgres goes down while events keep arriving.
    {
        let _down = Stopped::new("postgres");
        h.produce(
            &(1..=20)
                .flat_map(|id| {
                    [
                        updated(id, Some(2), 5, "during", TaskStatus::Incomplete),
                        completed(id, Some(3), 9),
                    ]
                })
                .collect::<Vec<_>>(),
        )
        .await;
        let paused = todo_testkit::eventually(PATIENCE, || async {
            let m = svc.get("/metrics").await.text().await.ok()?;
            (metric(&m, outage_line) >= before + 3.0).then_some(())
        })
        .await;
        assert!(
            paused.is_some(),
            "the consumer retries while Postgres is down"
        );
        // The backlog shows as consumer lag (high watermark minus committed).
        let prefix = h.prefix.clone();
        let lagging = todo_testkit::eventually(PATIENCE, || async {
            let m = svc.get("/metrics").await.text().await.ok()?;
            let lag: f64 = m
                .lines()
                .filter(|l| l.starts_with("consumer_lag{") && l.contains(&prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            (lag >= 40.0).then_some(lag)
        })
        .await;
        assert!(lagging.is_some(), "the 40 waiting events show as lag");
        let ready = svc.get("/ready").await;
        assert_eq!(ready.status(), 503, "not ready without the database");
    }

    // Assert: everything arrives once Postgres is back; nothing dead-lettered.
    h.wait_for("SELECT count(*) FROM processed_events", 60)
        .await;
    assert_eq!(
        h.scalar(
            "SELECT count(*) FROM task_projection WHERE status = 'complete' AND title = 'during'"
        )
        .await,
        20
    );
    h.wait_all_committed(&h.group).await;
    assert!(
        h.dlq(1, Duration::from_secs(3)).await.is_empty(),
        "an outage is not the events' fault"
    );
    assert_parked_nothing(&h, &svc).await;
    svc.stop().await;
}

/// An outage parks nothing: no row was ever parked (the counter has no sample).
async fn assert_parked_nothing(h: &Harness, svc: &TestService) {
    assert_eq!(h.scalar("SELECT count(*) FROM parked_events").await, 0);
    let metrics = svc.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("events_parked_total{"),
        "an outage parks nothing:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_redis_is_down_webhooks_wait_and_the_other_handlers_carry_on() {
    let _one = OUTAGE.lock().await;
    // Arrange
    let h = Harness::new().await;
    let hook = Receiver::start(0).await;
    let url = hook.url.clone();
    let svc = h.spawn_with(move |c| c.webhooks.urls = vec![url]).await;
    h.produce(&[completed(1, Some(2), 5)]).await;
    let first =
        todo_testkit::eventually(PATIENCE, || async { (hook.total() == 1).then_some(()) }).await;
    assert!(first.is_some(), "the first webhook is sent");

    // Act: Redis goes down; more tasks complete.
    {
        let _down = Stopped::new("redis");
        h.produce(
            &(2..=11)
                .map(|id| completed(id, Some(2), 5))
                .collect::<Vec<_>>(),
        )
        .await;
        h.produce(
            &(2..=11)
                .map(|id| created(id, Some(1), 0, "x"))
                .collect::<Vec<_>>(),
        )
        .await;
        // The Postgres handlers carry on...
        h.wait_for("SELECT count(*) FROM processed_events", 21)
            .await;
        // ...while the notifier waits for Redis.
        let retrying = todo_testkit::eventually(PATIENCE, || async {
            let m = svc.get("/metrics").await.text().await.ok()?;
            (metric(&m, "dependency_outage_retries_total{dependency=\"redis\"}") >= 2.0)
                .then_some(())
        })
        .await;
        assert!(
            retrying.is_some(),
            "the notifier retries while Redis is down"
        );
        assert_eq!(hook.total(), 1, "no webhook without deduplication");
    }

    // Assert: once Redis is back every webhook is sent, once; nothing dead-lettered.
    let all =
        todo_testkit::eventually(PATIENCE, || async { (hook.total() >= 11).then_some(()) }).await;
    assert!(
        all.is_some(),
        "webhooks sent after Redis returned: {}",
        hook.total()
    );
    h.wait_all_committed(&h.group).await;
    assert_eq!(hook.total(), 11);
    assert!(hook.per_event().values().all(|n| *n == 1));
    assert!(h.dlq(1, Duration::from_secs(3)).await.is_empty());
    assert_parked_nothing(&h, &svc).await;
    svc.stop().await;
}
