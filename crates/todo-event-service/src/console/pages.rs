//! The console's layout, a task's timeline and the health page.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::health::{self, Alert};
use crate::state::AppState;
use crate::store;

/// Which page is shown, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    Live,
    Task,
    DeadLetters,
    Health,
}

/// The frame of every page: navigation, the task search, the body.
pub(super) fn layout(title: &str, tab: Tab, body: Markup) -> Markup {
    let nav = [
        (Tab::Live, "/console", "Live events"),
        (Tab::DeadLetters, "/console/dead-letters", "Dead letters"),
        (Tab::Health, "/console/health", "Health"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · todo console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header {
                    strong { "todo console" }
                    nav {
                        @for (t, href, label) in nav {
                            a href=(href) class=[(t == tab).then_some("current")] { (label) }
                        }
                    }
                    form action="/console/tasks" method="get" class="find" {
                        label { "Task " input name="id" type="text" inputmode="numeric" placeholder="id" size="8"; }
                        button type="submit" class=[(tab == Tab::Task).then_some("current")] { "Timeline" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A time as the console shows it (UTC, milliseconds).
pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A page that says what went wrong, with its status.
pub(super) fn error_page(status: StatusCode, tab: Tab, message: &str) -> Response {
    (
        status,
        layout("Error", tab, html! { p class="error" { (message) } }),
    )
        .into_response()
}

/// A task id as the console takes it.
fn task_id(raw: &str) -> Option<i64> {
    todo_api::parse_decimal(raw.trim(), 19).filter(|n| *n > 0)
}

/// The page for what is not a task id.
fn not_a_task_id() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        Tab::Task,
        "A task id is a positive whole number.",
    )
}

/// `GET /console/tasks?id=N`: the task search goes to the task's timeline.
pub(super) async fn find_task(Query(q): Query<HashMap<String, String>>) -> Response {
    match task_id(q.get("id").map_or("", String::as_str)) {
        Some(n) => Redirect::to(&format!("/console/tasks/{n}")).into_response(),
        None => not_a_task_id(),
    }
}

/// `GET /console/tasks/{id}`: every event of the task in order, where it was
/// read, how long it took, its correlation and trace ids, and the projection.
pub(super) async fn timeline(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(task_id) = task_id(&id) else {
        return not_a_task_id();
    };
    let (events, current) = match tokio::try_join!(
        store::task_history(&state.pool, task_id),
        store::projected_task(&state.pool, task_id)
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, task_id, "console: could not read the task's timeline");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Tab::Task,
                "The event database is unavailable; reload shortly.",
            );
        }
    };
    let body = html! {
        h1 { "Task " (task_id) }
        @match &current {
            None => p class="muted" { "No event of this task has been processed." },
            Some(t) => section class="card" id="projection" {
                h2 { "Current state (projection)" }
                dl {
                    dt { "Title" } dd class="title" { (t.title.as_deref().unwrap_or("—")) }
                    dt { "Description" } dd { (t.description.as_deref().unwrap_or("—")) }
                    dt { "Status" } dd { (t.status.as_deref().unwrap_or("—")) }
                    dt { "Version" } dd { (t.task_version.map_or("—".to_owned(), |v| v.to_string())) }
                    dt { "Deleted" } dd { (if t.deleted { "yes" } else { "no" }) }
                }
            },
        }
        h2 { "Events" }
        table id="timeline" {
            thead { tr {
                th { "#" } th { "Type" } th { "Version" } th { "Topic / partition @ offset" }
                th { "Occurred" } th { "Processed" } th { "Processing" }
                th { "Correlation id" } th { "Trace id" }
            } }
            tbody {
                @for (i, e) in events.iter().enumerate() {
                    tr data-type=(e.event_type) {
                        td { (i + 1) }
                        td class="type" { (e.event_type) }
                        td { (e.task_version.map_or("—".to_owned(), |v| v.to_string())) }
                        td { (e.topic) " / " (e.partition) " @ " (e.offset) }
                        td { (time(e.occurred_at)) }
                        td { (time(e.processed_at)) }
                        td { ((e.processed_at - e.occurred_at).num_milliseconds()) " ms" }
                        td class="mono" { (e.correlation_id) }
                        td class="mono trace" { (e.trace_id.as_deref().unwrap_or("—")) }
                    }
                    tr class="payload" {
                        td colspan="9" {
                            details {
                                summary { "event" }
                                pre { (serde_json::to_string_pretty(&e.event).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(&format!("Task {task_id}"), Tab::Task, body).into_response()
}

/// `GET /console/health`: lag and throughput, the alerts, the analytics.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let samples = state.console.health.samples();
    let lag = samples.last().map(|s| s.lag.clone()).unwrap_or_default();
    let summary = store::summary(&state.pool, 24).await;
    let body = html! {
        h1 { "Health" }
        p class="muted" {
            "This instance's view, sampled every " (health::SAMPLE_EVERY.as_secs()) " s over the last 15 minutes. "
            "Prometheus evaluates the same rules for paging."
        }
        section class="card" {
            h2 { "Alerts" }
            div id="alerts" data-refresh="/console/health/alerts" { (alerts_table(&state.console.health.alerts())) }
        }
        section class="card" {
            h2 { "Throughput and lag" }
            img id="chart" src="/console/health/chart.svg" data-refresh="/console/health/chart.svg"
                alt="Events per second and consumer lag over the last 15 minutes" width="900" height="260";
        }
        section class="card" {
            h2 { "Consumer lag per partition" }
            @if lag.is_empty() {
                p class="muted" { "No partition is assigned to this instance yet." }
            } @else {
                table id="lag" {
                    thead { tr { th { "Topic / partition" } th { "Records behind" } } }
                    tbody { @for (p, n) in &lag { tr { td { (p) } td { (n) } } } }
                }
            }
        }
        section class="card" {
            h2 { "Analytics (last 24 hours)" }
            @match &summary {
                Err(_) => p class="error" { "The event database is unavailable." },
                Ok(s) => {
                    table id="totals" {
                        thead { tr { th { "Event type" } th { "All time" } } }
                        tbody { @for (t, n) in &s.totals { tr { td { (t) } td { (n) } } } }
                    }
                    p {
                        "Completed tasks: " (s.completion.completed_tasks)
                        @if let Some(p50) = s.completion.p50_seconds {
                            ", created to completed: median " (format!("{p50:.1}")) " s"
                        }
                        @if let Some(p95) = s.completion.p95_seconds {
                            ", p95 " (format!("{p95:.1}")) " s"
                        }
                    }
                }
            }
        }
    };
    layout("Health", Tab::Health, body).into_response()
}

fn alerts_table(alerts: &[Alert]) -> Markup {
    html! {
        table {
            thead { tr { th { "Alert" } th { "State" } th { "Now" } th { "Condition held since" } th { "Meaning" } } }
            tbody {
                @for a in alerts {
                    tr data-alert=(a.name) {
                        td { (a.name) }
                        td { span class={ "state " (a.state.as_str()) } { (a.state.as_str()) } }
                        td { (a.value) }
                        td { (a.since.map_or("—".to_owned(), time)) }
                        td {
                            (a.summary)
                            @if let health::AlertState::Unknown(why) = &a.state { br; span class="muted" { (why) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/health/alerts`: the alerts table alone, for the page to
/// refresh.
pub(super) async fn alerts_fragment(State(state): State<AppState>) -> Markup {
    alerts_table(&state.console.health.alerts())
}

/// `GET /console/health/chart.svg`: events per second and the summed lag.
pub(super) async fn chart(State(state): State<AppState>) -> Response {
    let (rate, lag) = health::series(&state.console.health.samples());
    let svg = chart_svg(&rate, &lag);
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg.into_string()).into_response()
}

/// Two lines over the last 15 minutes, each scaled to its own maximum (the
/// axis labels say which): presentation attributes only, no inline style.
fn chart_svg(rate: &[(f64, f64)], lag: &[(f64, f64)]) -> Markup {
    const W: f64 = 900.0;
    const H: f64 = 260.0;
    const PAD: f64 = 40.0;
    const SPAN_S: f64 = 900.0;
    let max = |s: &[(f64, f64)]| s.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let (rate_max, lag_max) = (max(rate), max(lag));
    let points = |s: &[(f64, f64)], top: f64| {
        s.iter()
            .filter(|(ago, _)| *ago >= -SPAN_S)
            .map(|(ago, v)| {
                let x = PAD + (W - 2.0 * PAD) * (1.0 + ago / SPAN_S);
                let y = H - PAD - (H - 2.0 * PAD) * (v / top);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } font-family="sans-serif" font-size="12" {
            rect width=(W) height=(H) fill="white" {}
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#888" {}
            text x=(PAD) y=(H - 12.0) { "−15 min" }
            text x=(W - PAD) y=(H - 12.0) text-anchor="end" { "now" }
            text x=(PAD) y="20" fill="#1f77b4" { "events/s (max " (format!("{rate_max:.0}")) ")" }
            text x=(W - PAD) y="20" text-anchor="end" fill="#d62728" { "lag, records (max " (format!("{lag_max:.0}")) ")" }
            polyline points=(points(rate, rate_max)) fill="none" stroke="#1f77b4" stroke-width="2" {}
            polyline points=(points(lag, lag_max)) fill="none" stroke="#d62728" stroke-width="2" {}
            @if rate.is_empty() {
                text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" fill="#888" { "collecting samples…" }
            }
        }
    }
}
