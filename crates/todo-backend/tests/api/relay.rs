//! The relay: no loss when it dies mid-batch, one active relay among
//! instances, fail-over to a standby.

use std::collections::HashSet;
use std::time::Duration;

use todo_testkit::{eventually, Stack};

use crate::helpers::{start, test_config, TestApp};

async fn lock_holders(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((classid::bigint << 32) | objid::bigint) = $1",
    )
    .bind(todo_backend::outbox::relay::RELAY_LOCK_KEY)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_relay_killed_mid_batch_loses_no_event() {
    // Arrange: 300 events in the outbox, written while no relay runs.
    let stack = Stack::from_env();
    let db = stack.fresh_database().await.unwrap();
    let prefix = stack.unique_topic_prefix();
    let mut writer_cfg = test_config(&stack, &db, &prefix);
    writer_cfg.relay.enabled = false;
    let writer = start(stack.clone(), writer_cfg).await;
    todo_testkit::create_topics(&stack, &writer.topics.all())
        .await
        .unwrap();
    for i in 0..300 {
        writer.create_task(&format!("task {i}")).await;
    }
    let expected: HashSet<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT event_id FROM outbox")
            .fetch_all(&writer.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.to_string())
            .collect();

    // Act: a relay with small batches is aborted as soon as it has published some.
    let mut relay_cfg = test_config(&stack, &db, &prefix);
    relay_cfg.relay.batch_size = 40;
    let mut doomed = start(stack.clone(), relay_cfg.clone()).await;
    let started = eventually(Duration::from_secs(30), || async {
        let n = writer.unpublished().await;
        (n < 300).then_some(n)
    })
    .await;
    assert!(started.is_some(), "the relay started publishing");
    doomed.handle.take().unwrap().abort();
    drop(doomed);
    let survivor = start(stack.clone(), relay_cfg).await;

    // Assert: every event reaches Kafka (duplicates allowed, same event_id).
    let drained = eventually(Duration::from_secs(60), || async {
        (survivor.unpublished().await == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the second relay drains the outbox");
    let records = survivor
        .read_events(expected.len() + 100, Duration::from_secs(15))
        .await;
    let seen: HashSet<String> = records
        .iter()
        .filter_map(|r| r.header(todo_events::headers::EVENT_ID).map(str::to_owned))
        .collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{} events missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

#[tokio::test]
async fn two_instances_run_one_relay_and_the_standby_takes_over() {
    // Arrange
    let stack = Stack::from_env();
    let db = stack.fresh_database().await.unwrap();
    let prefix = stack.unique_topic_prefix();
    let first = start(stack.clone(), test_config(&stack, &db, &prefix)).await;
    let holding = eventually(Duration::from_secs(10), || async {
        (lock_holders(&first).await == 1).then_some(())
    })
    .await;
    assert!(holding.is_some(), "the first instance takes the relay lock");
    let second = start(stack.clone(), test_config(&stack, &db, &prefix)).await;

    // Act 1: a write through the standby instance is relayed by the active one.
    second.create_task("through the standby").await;
    let records = second.read_events(1, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        lock_holders(&second).await,
        1,
        "exactly one relay holds the lock"
    );

    // Act 2: the active instance stops; the standby takes over.
    first.stop().await;
    second.create_task("after fail-over").await;

    // Assert
    let drained = eventually(Duration::from_secs(15), || async {
        (second.unpublished().await == 0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "the standby became the relay within seconds"
    );
    assert_eq!(
        second.read_events(2, Duration::from_secs(20)).await.len(),
        2
    );
    assert_eq!(lock_holders(&second).await, 1);
}

#[tokio::test]
async fn replaying_a_task_republishes_its_events_with_the_original_ids() {
    let app = crate::helpers::spawn_app().await;
    let task = app.create_task("replay me").await;
    let id = task["id"].as_i64().unwrap();
    app.post_empty(&format!("/tasks/{id}/complete")).await;
    let first = app.read_events(2, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 2);
    // Later rows, published one by one, so that the relay's reads start
    // above the task's rows by the time they are queued again.
    for i in 0..20 {
        app.create_task(&format!("later {i}")).await;
    }
    eventually(Duration::from_secs(10), || async {
        (app.unpublished().await == 0).then_some(())
    })
    .await;

    let n = todo_outbox::replay::replay(&app.pool, &todo_outbox::replay::Selection::Task(id))
        .await
        .unwrap();

    assert_eq!(n, 2);
    let all: Vec<_> = app
        .read_events(24, Duration::from_secs(20))
        .await
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(id.to_string().as_str()))
        .collect();
    assert_eq!(all.len(), 4, "both events published a second time");
    let ids = |rs: &[todo_testkit::Record]| -> HashSet<String> {
        rs.iter()
            .map(|r| r.header(todo_events::headers::EVENT_ID).unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&all), ids(&first), "same event ids");
}

/// Writes a bare outbox row for `task_id` whose value is `marker`.
async fn insert_marker_row(
    conn: &mut sqlx::PgConnection,
    app: &TestApp,
    task_id: i64,
    marker: &str,
) {
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
         VALUES ($1, 'task.updated', $2, $3, $3::bigint, $4, '[]', $1)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(app.topic(todo_events::EventType::Updated))
    .bind(task_id.to_string())
    .bind(marker.as_bytes())
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_row_that_commits_after_higher_ids_were_published_is_published_before_its_next_change() {
    // Arrange: a transaction takes an outbox id and stays open while the
    // relay publishes rows with higher ids.
    let app = crate::helpers::spawn_app().await;
    let mut late = app.pool.begin().await.unwrap();
    insert_marker_row(&mut late, &app, 424_242, "late").await;
    for i in 0..50 {
        app.create_task(&format!("task {i}")).await;
    }
    let published = eventually(Duration::from_secs(30), || async {
        (app.unpublished().await == 0).then_some(())
    })
    .await;
    assert!(
        published.is_some(),
        "the relay publishes the committed rows"
    );

    // Act: the late row commits; then its task changes again.
    late.commit().await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    insert_marker_row(&mut conn, &app, 424_242, "next").await;

    // Assert: both reach Kafka, the late one first.
    let records = app.read_events(52, Duration::from_secs(30)).await;
    let markers: Vec<String> = records
        .iter()
        .filter(|r| r.key.as_deref() == Some("424242"))
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    assert_eq!(markers, ["late", "next"]);
}

#[tokio::test]
async fn the_prune_deletes_only_published_rows_past_retention() {
    // Arrange: three published events; then the first is made 8 days old,
    // and the second was written 8 days ago but published just now.
    let app = crate::helpers::spawn_app().await;
    for title in ["old", "old but just published", "new"] {
        app.create_task(title).await;
    }
    app.expect_events(3).await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let week = Duration::from_secs(7 * 24 * 3600);
    let nothing_old_yet = todo_outbox::relay::prune(&app.pool, week).await.unwrap();
    sqlx::query(
        "UPDATE outbox SET created_at = now() - interval '8 days',
             published_at = CASE WHEN id = $1 THEN now() - interval '8 days' ELSE published_at END
         WHERE id = ANY($2)",
    )
    .bind(ids[0])
    .bind(&ids[..2])
    .execute(&app.pool)
    .await
    .unwrap();

    // Act
    let pruned = todo_outbox::relay::prune(&app.pool, week).await.unwrap();

    // Assert
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(nothing_old_yet, 0);
    assert_eq!(pruned, 1);
    assert_eq!(left, ids[1..], "kept: published within retention, and new");
}
