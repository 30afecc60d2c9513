//! The live view: processed events as they are committed, pushed to the page
//! with Server-Sent Events. The stream reads the audit log (what every
//! instance of the service writes), so it shows all partitions' events
//! whichever instance serves the page.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::{html, Markup};
use todo_events::EventType;

use super::pages::{layout, Tab};
use crate::state::AppState;
use crate::store::console::{events_above, latest_events, LiveEvent};

/// How often the audit log is read for new rows.
const POLL: Duration = Duration::from_millis(400);
/// Rows shown when the page opens.
const BACKLOG: i64 = 50;
/// How far below the highest row id seen each read starts: a transaction
/// that took its ids earlier can commit later (see `events_above`).
const LOOKBACK: i64 = 2_000;
/// Rows read at most per poll; beyond that the view skips ahead.
const PER_POLL: i64 = 4_000;

/// `GET /console`: the live view. Filters and pause work in the page.
pub(super) async fn page() -> Markup {
    let body = html! {
        h1 { "Live events" }
        form id="filters" class="filters" {
            label { "Type "
                select name="type" {
                    option value="" { "any" }
                    @for t in EventType::ALL { option value=(t.as_str()) { (t.as_str()) } }
                }
            }
            label { "Task id " input name="task" type="text" inputmode="numeric" size="10"; }
            label { "Correlation id " input name="correlation" type="text" size="36"; }
            button type="button" id="pause" { "Pause" }
            span id="status" class="muted" { "connecting…" }
        }
        table id="live" data-stream="/console/stream" {
            thead { tr {
                th { "Processed" } th { "Type" } th { "Task" } th { "Title" }
                th { "Topic / partition @ offset" } th { "Correlation id" } th { "Trace id" }
            } }
            tbody {}
        }
    };
    layout("Live events", Tab::Live, body)
}

/// `GET /console/stream`: each processed event as an SSE `task-event` whose
/// data is its JSON; the newest few first.
pub(super) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Cursor {
        pool: sqlx::PgPool,
        started: bool,
        top: i64,
        seen: BTreeSet<i64>,
    }
    let cursor = Cursor {
        pool: state.pool.clone(),
        started: false,
        top: 0,
        seen: BTreeSet::new(),
    };
    let events = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            let read = if c.started {
                tokio::time::sleep(POLL).await;
                events_above(&c.pool, (c.top - LOOKBACK).max(0), PER_POLL).await
            } else {
                latest_events(&c.pool, BACKLOG).await
            };
            let rows = match read {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %e, "console: could not read the audit log");
                    let note = Event::default()
                        .event("unavailable")
                        .data("the event database is unavailable");
                    c.started = true;
                    return Some((vec![note], c));
                }
            };
            c.started = true;
            let fresh: Vec<LiveEvent> = rows
                .into_iter()
                .filter(|r| !c.seen.contains(&r.id))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            for r in &fresh {
                c.seen.insert(r.id);
                c.top = c.top.max(r.id);
            }
            let floor = c.top - LOOKBACK;
            c.seen = c.seen.split_off(&floor);
            let out = fresh
                .iter()
                .map(|r| {
                    Event::default()
                        .event("task-event")
                        .id(r.id.to_string())
                        .json_data(r)
                        .expect("a row serializes")
                })
                .collect();
            return Some((out, c));
        }
    });
    let flat = futures::StreamExt::flat_map(events, |batch| {
        futures::stream::iter(batch.into_iter().map(Ok))
    });
    let flat = futures::StreamExt::take_until(flat, state.console.stop.clone().cancelled_owned());
    Sse::new(flat).keep_alive(KeepAlive::default())
}
