//! The web console in a real headless Chromium, on the real stack: the
//! backend's API → PostgreSQL → outbox → Kafka → this service → the page.
//! Each test saves screenshots under `target/console-screenshots/`.

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use todo_e2e::{Options, Pipeline};
use todo_kafka::ProducerArgs;
use todo_testkit::browser::{Browser, By};

const TOKEN: &str = "test-admin-token";

async fn pipeline(admin_token: Option<&str>) -> Pipeline {
    Pipeline::start(Options {
        console_admin_token: admin_token.map(str::to_owned),
    })
    .await
}

/// Whether the element `css` is hidden (by the page's filters).
async fn hidden(browser: &Browser, css: &str) -> bool {
    let v = browser
        .client
        .execute(
            "return document.querySelector(arguments[0]).hidden",
            vec![json!(css)],
        )
        .await
        .unwrap();
    v == json!(true)
}

#[tokio::test]
async fn a_new_task_appears_live_its_timeline_is_in_order_and_a_hostile_title_stays_text() {
    // Arrange: the live view open before anything happens.
    let p = pipeline(Some(TOKEN)).await;
    let browser = Browser::start().await.unwrap();
    browser.goto(&p.events_url("/console")).await.unwrap();
    browser
        .wait_for("#status", Duration::from_secs(5))
        .await
        .unwrap();

    // Act: a task whose title is markup, then its whole life.
    let hostile = "<img src=x onerror=alert(1)>";
    // The request carries a trace, which the timeline shows for its event.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let asked = Instant::now();
    let id = p
        .create_with(hostile, &[("traceparent", traceparent.as_str())])
        .await;
    p.processed(id, 1).await;
    let processed = Instant::now();

    // Assert: its row arrives without a reload, within 2 s of being processed.
    let row = format!("#live tbody tr[data-task='{id}']");
    browser
        .wait_for(&row, Duration::from_secs(2))
        .await
        .unwrap_or_else(|e| panic!("not live within 2 s of being processed: {e:#}"));
    println!(
        "live view: {:?} after the API call, {:?} after processing",
        asked.elapsed(),
        processed.elapsed()
    );
    let titles = browser.texts(&format!("{row} td.title")).await.unwrap();
    assert_eq!(titles, vec![hostile.to_owned()], "the title shows as text");
    let traces = browser.texts(&format!("{row} td.trace")).await.unwrap();
    assert_eq!(traces, vec![trace_id.to_owned()], "the live row's trace id");
    assert!(
        browser.all("#live img").await.unwrap().is_empty(),
        "the title became an element"
    );
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "a script from the title ran"
    );
    // The filters hide what does not match, and show it again.
    let task_filter = browser
        .wait_for("#filters input[name=task]", Duration::from_secs(1))
        .await
        .unwrap();
    task_filter.send_keys("999999999").await.unwrap();
    assert!(
        hidden(&browser, &row).await,
        "the task-id filter hides other tasks"
    );
    task_filter.clear().await.unwrap();
    task_filter.send_keys(&id.to_string()).await.unwrap();
    assert!(!hidden(&browser, &row).await, "and shows its own");
    browser.screenshot("live").await.unwrap();

    // The rest of its life, then its timeline.
    p.call(
        reqwest::Method::PUT,
        &format!("/tasks/{id}"),
        Some(json!({ "title": "<b>bold</b> & done" })),
    )
    .await;
    p.call(
        reqwest::Method::POST,
        &format!("/tasks/{id}/complete"),
        None,
    )
    .await;
    p.call(reqwest::Method::DELETE, &format!("/tasks/{id}"), None)
        .await;
    p.processed(id, 4).await;
    browser
        .goto(&p.events_url(&format!("/console/tasks/{id}")))
        .await
        .unwrap();
    browser
        .wait_for("#timeline", Duration::from_secs(5))
        .await
        .unwrap();
    let types = browser.texts("#timeline td.type").await.unwrap();
    assert_eq!(
        types,
        [
            "task.created",
            "task.updated",
            "task.completed",
            "task.deleted"
        ],
        "the timeline in order"
    );
    let traces = browser.texts("#timeline td.trace").await.unwrap();
    assert_eq!(traces[0], trace_id, "the request's trace id on its event");
    for t in &traces[1..] {
        // The later requests carried none: each started a trace of its own.
        assert!(
            t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()) && t != trace_id,
            "{traces:?}"
        );
    }
    let state = browser.texts("#projection dd.title").await.unwrap();
    assert_eq!(
        state,
        vec!["<b>bold</b> & done".to_owned()],
        "the projection's title as text"
    );
    assert!(browser
        .all("#projection b, #timeline img")
        .await
        .unwrap()
        .is_empty());
    browser.screenshot("timeline").await.unwrap();

    // The health page renders its alerts and chart.
    browser
        .goto(&p.events_url("/console/health"))
        .await
        .unwrap();
    let alerts = browser
        .wait_for("#alerts tbody", Duration::from_secs(5))
        .await
        .unwrap();
    let text = alerts.text().await.unwrap();
    for name in [
        "EventPublishFailureRateHigh",
        "ConsumerLagHigh",
        "EventProcessingSlow",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    browser
        .wait_for("img#chart", Duration::from_secs(1))
        .await
        .unwrap();
    browser.screenshot("health").await.unwrap();
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_poison_record_shows_in_the_dead_letters_and_replays_only_with_the_token() {
    // Arrange: a record no decoder accepts, dead-lettered by the service.
    let p = pipeline(Some(TOKEN)).await;
    let topic = p.topics.for_event(todo_events::EventType::Created);
    let producer: FutureProducer = p
        .stack
        .kafka_args(p.topics.prefix())
        .producer_config(&ProducerArgs::default())
        .unwrap()
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic)
                .key("77")
                .payload("this is not an event"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let browser = Browser::start().await.unwrap();
    let mut rows = Vec::new();
    for _ in 0..60 {
        browser
            .goto(&p.events_url("/console/dead-letters"))
            .await
            .unwrap();
        rows = browser.all("#dead-letters tbody tr").await.unwrap();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(rows.len(), 1, "one dead letter");
    let class = browser.texts("#dead-letters td.error-class").await.unwrap();
    assert_eq!(class.len(), 1);
    assert!(!class[0].is_empty() && class[0] != "unknown", "{class:?}");
    let payload = browser
        .client
        .execute(
            "return document.querySelector('#dead-letters pre.payload').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        payload.as_str().unwrap().contains("this is not an event"),
        "{payload}"
    );
    assert_eq!(
        browser.texts("#dead-letters td.state").await.unwrap(),
        ["pending"]
    );

    // Act 1: the wrong token is refused, by the server.
    let form = browser
        .wait_for("#replay-auth", Duration::from_secs(1))
        .await
        .unwrap();
    form.find(By::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("fixed the decoder")
        .await
        .unwrap();
    let token = form.find(By::Css("input[name=token]")).await.unwrap();
    token.send_keys("not-the-token").await.unwrap();
    browser
        .wait_for("#dead-letters button.replay", Duration::from_secs(1))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = browser
        .wait_for("#replay-result.error", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        result.text().await.unwrap().contains("401"),
        "{}",
        result.text().await.unwrap()
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM dlq_actions")
        .fetch_one(&p.events_db)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "a refused replay records nothing");

    // Act 2: with the token.
    token.clear().await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    browser.all("#dead-letters button.replay").await.unwrap()[0]
        .click()
        .await
        .unwrap();
    let result = browser
        .wait_for("#replay-result.ok", Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        result.text().await.unwrap().starts_with("Replayed 1"),
        "{}",
        result.text().await.unwrap()
    );
    browser.screenshot("dead-letters").await.unwrap();

    // Assert: recorded as a console replay with the reason; the page says so.
    let (actor, reason): (String, String) =
        sqlx::query_as("SELECT actor, reason FROM dlq_actions WHERE action = 'replay'")
            .fetch_one(&p.events_db)
            .await
            .unwrap();
    assert_eq!(
        (actor.as_str(), reason.as_str()),
        ("console", "fixed the decoder")
    );
    let mut states = Vec::new();
    for _ in 0..40 {
        browser
            .goto(&p.events_url("/console/dead-letters"))
            .await
            .unwrap();
        states = browser.texts("#dead-letters td.state").await.unwrap();
        if states.iter().any(|s| s.starts_with("replayed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        states.iter().any(|s| s.starts_with("replayed")),
        "{states:?}"
    );
    browser.close().await.unwrap();

    // The server refuses without the token, whatever the page does.
    let replay = |auth: Option<&str>| {
        let mut r = p
            .http
            .post(p.events_url("/console/dead-letters/replay"))
            .json(&json!({"reason": "x", "dead_letter": "0:0"}));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let resp = replay(None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "token", "{problem}");
    assert_eq!(replay(Some("Bearer wrong")).await.unwrap().status(), 401);
}

#[tokio::test]
async fn without_an_admin_token_the_console_is_read_only_and_its_pages_are_locked_down() {
    let p = pipeline(None).await;
    let resp = p
        .http
        .post(p.events_url("/console/dead-letters/replay"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(&json!({"reason": "x", "dead_letter": "0:0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let problem: Value = resp.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("CONSOLE_ADMIN_TOKEN"),
        "{problem}"
    );

    let page = p
        .http
        .get(p.events_url("/console/dead-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"read-only\""), "no read-only notice");
    assert!(
        !html.contains("class=\"replay\""),
        "replay buttons on a read-only console"
    );
    // No inline script or handler anywhere.
    for path in ["/console", "/console/dead-letters", "/console/health"] {
        let html = p
            .http
            .get(p.events_url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>"), "{path}: inline script");
        assert!(
            !html.to_lowercase().contains(" onerror=")
                && !html.to_lowercase().contains(" onclick="),
            "{path}: inline handler"
        );
    }
}
