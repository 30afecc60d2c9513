use std::time::Duration;

use todo_events::headers;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completed_task_is_posted_to_every_webhook_and_failures_are_retried() {
    // Arrange: the first receiver fails its first two requests.
    let h = Harness::new().await;
    let flaky = Receiver::start(2).await;
    let steady = Receiver::start(0).await;
    let urls = vec![flaky.url.clone(), steady.url.clone()];
    let _svc = h.spawn_with(move |c| c.webhooks.urls = urls).await;
    let done = completed(40, Some(2), 10);

    // Act
    h.produce(&[created(40, Some(1), 0, "notify me"), done.clone()])
        .await;

    // Assert
    let delivered = todo_testkit::eventually(PATIENCE, || async {
        (flaky.total() == 3 && steady.total() == 1).then_some(())
    })
    .await;
    assert!(
        delivered.is_some(),
        "flaky: {:?}, steady: {:?}",
        flaky.per_event(),
        steady.per_event()
    );
    assert_eq!(steady.per_event().get(&done.event_id.to_string()), Some(&1));
    h.wait_all_committed(&h.group).await;
    let mut redis = todo_testkit::redis(&h.stack).await.unwrap();
    let key = format!(
        "todo-event-service:webhook:{}:{}",
        done.event_id, steady.url
    );
    let mark: Option<String> = redis::AsyncCommands::get(&mut redis, &key).await.unwrap();
    assert_eq!(mark.as_deref(), Some("done"));
    let ttl: i64 = redis::AsyncCommands::ttl(&mut redis, &key).await.unwrap();
    assert!(ttl > 0, "the dedup mark expires");
    assert!(h.dlq(1, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_that_keeps_failing_is_dead_lettered_after_its_retries() {
    // Arrange
    let h = Harness::new().await;
    let broken = Receiver::start(usize::MAX).await;
    let url = broken.url.clone();
    let _svc = h.spawn_with(move |c| c.webhooks.urls = vec![url]).await;
    let done = completed(41, Some(2), 10);

    // Act
    h.produce(std::slice::from_ref(&done)).await;

    // Assert
    let dlq = h.dlq(1, PATIENCE).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        dlq[0].header(headers::DLQ_ERROR_CLASS),
        Some("webhook_failed")
    );
    assert_eq!(dlq[0].header(headers::DLQ_ATTEMPTS), Some("3"));
    assert_eq!(broken.total(), 3);
    // The Postgres handlers did their part.
    assert_eq!(
        h.scalar("SELECT count(*) FROM audit_log WHERE task_id = 41")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_postgres_dedup_store_a_completion_delivered_three_times_is_posted_once() {
    // Arrange: deliveries remembered in the service's database instead of Redis.
    let h = Harness::new().await;
    let hook = Receiver::start(1).await;
    let url = hook.url.clone();
    let adjust = move |c: &mut todo_event_service::Config| {
        c.webhooks.urls = vec![url.clone()];
        c.webhooks.dedup_store = "postgres".into();
    };
    let svc = h.spawn_with(adjust.clone()).await;
    let done = completed(42, Some(2), 10);

    // Act: twice to the running service, a third time to a restarted one that
    // reads everything again (new group).
    h.produce(&[done.clone(), done.clone()]).await;
    h.wait_all_committed(&h.group).await;
    svc.stop().await;
    let again = format!("{}-again", h.group);
    let group = again.clone();
    let _restarted = h
        .spawn_with(move |c| {
            adjust(c);
            c.consumer.client.group_id = group;
        })
        .await;
    h.wait_all_committed(&again).await;

    // Assert: one failed attempt (retried) and one delivery, remembered in Postgres.
    assert_eq!(hook.total(), 2, "{:?}", hook.per_event());
    let state: String =
        sqlx::query_scalar("SELECT state FROM webhook_dedup WHERE key = $1 AND expires_at > now()")
            .bind(format!(
                "todo-event-service:webhook:{}:{}",
                done.event_id, hook.url
            ))
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!(state, "done");
    assert!(h.dlq(1, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_whose_claim_answer_was_lost_recognises_its_own_claim_in_both_stores() {
    use todo_event_service::pipeline::dedup::{Claim, DedupStore};
    // Arrange: both stores, against the real Redis and PostgreSQL.
    let h = Harness::new().await;
    let stores = [
        DedupStore::redis(&h.stack.redis_url).unwrap(),
        DedupStore::Postgres(h.pool.clone()),
    ];
    for store in stores {
        let key = format!("test-claim-{}", todo_testkit::short_id());
        let ttl = Duration::from_secs(60);

        // Act: "a" claims; its answer is lost, so it claims again; "b" tries too.
        let first = store.claim(&key, ttl, "a").await.unwrap();
        let again = store.claim(&key, ttl, "a").await.unwrap();
        let other = store.claim(&key, ttl, "b").await.unwrap();
        store.mark_done(&key, ttl).await.unwrap();
        let after = store.claim(&key, ttl, "a").await.unwrap();

        // Assert
        let name = store.name();
        assert!(matches!(first, Claim::Claimed), "{name}");
        assert!(
            matches!(again, Claim::Claimed),
            "{name}: its own claim is still its own"
        );
        assert!(
            matches!(other, Claim::Busy),
            "{name}: another's claim is busy"
        );
        assert!(matches!(after, Claim::Done), "{name}: sent is sent");
    }
}
