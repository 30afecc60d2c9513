//! Traces end to end: the real backend and event service processes export
//! their spans over OTLP/HTTP (JSON) to a receiver in the test, and one trace
//! id covers the request, the publish and the processing of an event, in
//! direct Kafka mode and through real daprd sidecars.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use serde_json::{json, Value};
use todo_testkit::dapr::Sidecar;
use todo_testkit::process::{closed_port, workspace_binary, ServiceProcess};

use crate::helpers::*;

/// OTLP span kinds (`SpanKind` in the protocol).
const SERVER: i64 = 2;
const PRODUCER: i64 = 4;
const CONSUMER: i64 = 5;

/// One exported span, as the receiver decoded it.
#[derive(Clone, Debug)]
struct Seen {
    service: String,
    name: String,
    kind: i64,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// Trace ids of its links.
    links: Vec<String>,
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, JSON encoding) that keeps
/// every span it is sent.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let request: Value = serde_json::from_slice(&body).expect(
                        "an OTLP/JSON export request (OTEL_EXPORTER_OTLP_PROTOCOL=http/json)",
                    );
                    kept.lock().unwrap().extend(decode(&request));
                    axum::Json(json!({}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans }
    }

    fn spans(&self) -> Vec<Seen> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits for a span that `matches`.
    async fn expect(&self, what: &str, matches: impl Fn(&Seen) -> bool) -> Seen {
        let found = todo_testkit::eventually(PATIENCE, || async {
            self.spans().into_iter().find(|s| matches(s))
        })
        .await;
        found.unwrap_or_else(|| panic!("no {what} span among {:#?}", self.spans()))
    }

    /// What a service needs to export here, fast.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.url.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ]
    }
}

/// The spans of an `ExportTraceServiceRequest` in its JSON encoding (ids in hex).
fn decode(request: &Value) -> Vec<Seen> {
    let mut out = Vec::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| text(&a["value"]["stringValue"]))
            .unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                out.push(Seen {
                    service: service.clone(),
                    name: text(&s["name"]),
                    kind: s["kind"].as_i64().unwrap_or_default(),
                    trace_id: text(&s["traceId"]),
                    span_id: text(&s["spanId"]),
                    parent_span_id: text(&s["parentSpanId"]),
                    links: s["links"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| text(&l["traceId"]))
                        .collect(),
                });
            }
        }
    }
    out
}

/// The pipeline as processes: the event service and the backend, both
/// exporting to `otlp`, through sidecars in Dapr mode.
struct Pipeline {
    backend: ServiceProcess,
    _event_service: ServiceProcess,
    _sidecars: Vec<Sidecar>,
}

async fn start_pipeline(h: &Harness, otlp: &Receiver, dapr: bool) -> Pipeline {
    let kafka = &h.stack.kafka_bootstrap;
    let mut sidecars = Vec::new();

    let events_port = closed_port();
    let mut env = h.process_env();
    env.extend(otlp.env());
    if dapr {
        env.push(("EVENT_SOURCE", "dapr".into()));
    }
    let event_service =
        ServiceProcess::start_on(env!("CARGO_BIN_EXE_todo-event-service"), events_port, &env);
    if dapr {
        sidecars.push(
            Sidecar::builder("todo-event-service", events_port, kafka)
                .consumer_group(h.group.clone())
                .start()
                .await,
        );
    }

    let backend_port = closed_port();
    let backend_db = h.stack.fresh_database().await.expect("fresh database");
    let mut env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", backend_db),
        ("KAFKA_BOOTSTRAP_SERVERS", kafka.clone()),
        ("KAFKA_TOPIC_PREFIX", h.prefix.clone()),
        ("RELAY_POLL_INTERVAL_MS", "100".into()),
    ];
    env.extend(otlp.env());
    if dapr {
        let sidecar = Sidecar::start("todo-backend", backend_port, kafka).await;
        env.push(("EVENT_TRANSPORT", "dapr".into()));
        env.extend(sidecar.service_env());
        sidecars.push(sidecar);
    }
    let backend = ServiceProcess::start_on(
        workspace_binary("todo-backend").to_str().unwrap(),
        backend_port,
        &env,
    );
    for (name, p) in [("backend", &backend), ("event service", &event_service)] {
        assert_eq!(
            p.wait_for_http("/ready", PATIENCE).await,
            Some(200),
            "the {name} is ready: {:#?}",
            p.output()
        );
    }
    Pipeline {
        backend,
        _event_service: event_service,
        _sidecars: sidecars,
    }
}

impl Pipeline {
    /// Creates a task, with `traceparent` when given; returns its id and the
    /// `traceparent` of the answer.
    async fn create_task(&self, title: &str, traceparent: Option<&str>) -> (i64, String) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/tasks", self.backend.url))
            .json(&json!({ "title": title }));
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 201);
        let echoed = answer.headers()["traceparent"].to_str().unwrap().to_owned();
        let task: Value = answer.json().await.unwrap();
        (task["id"].as_i64().unwrap(), echoed)
    }
}

/// The trace id the event service's audit log stored for the task's creation.
async fn audited_trace_id(h: &Harness, task_id: i64) -> Option<String> {
    todo_testkit::eventually(PATIENCE, || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT trace_id FROM audit_log WHERE task_id = $1 AND event_type = 'task.created'",
        )
        .bind(task_id)
        .fetch_optional(&h.pool)
        .await
        .ok()
        .flatten()
    })
    .await
    .flatten()
}

async fn one_trace_covers_request_publish_and_processing(dapr: bool) {
    // Arrange
    let h = Harness::new().await;
    let otlp = Receiver::start().await;
    let pipeline = start_pipeline(&h, &otlp, dapr).await;
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let caller_span = "00f067aa0ba902b7";

    // Act
    let (task_id, echoed) = pipeline
        .create_task("traced", Some(&format!("00-{trace_id}-{caller_span}-01")))
        .await;

    // Assert: the request continues the caller's trace...
    assert!(echoed.contains(&trace_id), "answer's traceparent: {echoed}");
    let request = otlp
        .expect("request", |s| s.trace_id == trace_id && s.kind == SERVER)
        .await;
    assert_eq!(request.name, "POST /tasks");
    assert_eq!(request.service, "todo-backend");
    assert_eq!(request.parent_span_id, caller_span);
    // ...the publish is in it, a child of the request...
    let publish = otlp
        .expect("publish", |s| s.trace_id == trace_id && s.kind == PRODUCER)
        .await;
    assert_eq!(publish.service, "todo-backend");
    assert_eq!(publish.parent_span_id, request.span_id);
    // ...and so is the event service's processing, a child of the publish.
    let process = otlp
        .expect("processing", |s| {
            s.trace_id == trace_id && s.kind == CONSUMER && s.name == "process"
        })
        .await;
    assert_eq!(process.service, "todo-event-service");
    assert_eq!(process.parent_span_id, publish.span_id);
    // The batches are traces of their own, linked to the event's.
    otlp.expect("write batch", |s| {
        s.name == "write batch create" && s.trace_id != trace_id && s.links.contains(&trace_id)
    })
    .await;
    otlp.expect("process batch", |s| {
        s.name == "process batch" && s.trace_id != trace_id && s.links.contains(&trace_id)
    })
    .await;
    assert_eq!(
        audited_trace_id(&h, task_id).await.as_deref(),
        Some(trace_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_covers_the_request_the_publish_and_the_processing_through_kafka() {
    one_trace_covers_request_publish_and_processing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_covers_the_request_the_publish_and_the_processing_through_dapr() {
    one_trace_covers_request_publish_and_processing(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_without_a_valid_traceparent_starts_a_trace_that_the_audit_log_keeps() {
    // Arrange
    let h = Harness::new().await;
    let otlp = Receiver::start().await;
    let pipeline = start_pipeline(&h, &otlp, false).await;

    // Act: no traceparent, then an invalid one (W3C: ignored, a new trace).
    let (first, first_echo) = pipeline.create_task("untraced", None).await;
    let (second, second_echo) = pipeline
        .create_task("badly traced", Some("00-zz-bad"))
        .await;

    // Assert
    let first_trace = first_echo.split('-').nth(1).unwrap().to_owned();
    let second_trace = second_echo.split('-').nth(1).unwrap().to_owned();
    assert_eq!(first_trace.len(), 32, "{first_echo}");
    assert_ne!(first_trace, second_trace, "each request its own trace");
    for (task, trace) in [(first, &first_trace), (second, &second_trace)] {
        let request = otlp
            .expect("request", |s| &s.trace_id == trace && s.kind == SERVER)
            .await;
        assert_eq!(request.parent_span_id, "", "a new trace has a root span");
        otlp.expect("processing", |s| {
            &s.trace_id == trace && s.kind == CONSUMER && s.name == "process"
        })
        .await;
        assert_eq!(audited_trace_id(&h, task).await.as_ref(), Some(trace));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_without_a_traceparent_is_audited_with_no_trace_id() {
    // Arrange
    let h = Harness::new().await;
    let _svc = h.spawn().await;

    // Act: an event from a producer that sends no traceparent.
    h.produce(&[created(4242, Some(1), 0, "no trace")]).await;

    // Assert
    h.wait_for("SELECT count(*) FROM audit_log WHERE task_id = 4242", 1)
        .await;
    let trace: Option<String> =
        sqlx::query_scalar("SELECT trace_id FROM audit_log WHERE task_id = 4242")
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!(trace, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_is_down_stops_nothing_and_is_reported_in_one_line() {
    // Arrange: export to a port where nothing listens.
    let h = Harness::new().await;
    let mut env = h.process_env();
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", closed_port()),
    ));
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let svc = ServiceProcess::start(env!("CARGO_BIN_EXE_todo-event-service"), &env);

    // Act: events to process, whose spans cannot be exported.
    for i in 0..3 {
        h.produce(&[created(5000 + i, Some(1), 0, "collector down")])
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Assert
    h.wait_for("SELECT count(*) FROM audit_log WHERE task_id >= 5000", 3)
        .await;
    let line = svc
        .wait_for_line(PATIENCE, |l| l.contains("trace export failed"))
        .await;
    assert!(line.is_some(), "{:#?}", svc.output());
    let lines = svc
        .output()
        .iter()
        .filter(|l| l.contains("trace export failed"))
        .count();
    assert_eq!(lines, 1, "rate-limited: {:#?}", svc.output());
}
