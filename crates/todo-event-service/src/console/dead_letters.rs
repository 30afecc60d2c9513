//! The dead letters: each with where it failed, why, and its payload decoded
//! (or its raw bytes); replay one, or every pending one of an error class,
//! with the admin token. A replay is the same audited action as
//! `todoctl dlq replay` (`todo_audit::dead_letters::act`), recorded with the
//! actor `console`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::html;
use serde::{Deserialize, Serialize};
use todo_events::headers;
use todo_kafka::{ReadRecord, TopicNames};

use super::pages::{error_page, layout, Tab};
use super::Console;
use crate::error::{ApiError, Result};
use crate::state::AppState;
use todo_audit::dead_letters::{self as ops, Request};
use todo_audit::dlq_actions::{self, Action, Actor, Disposition, Reason};

/// What is shown of a payload: its event as JSON, or why it does not decode
/// and its bytes.
fn payload(names: &TopicNames, r: &ReadRecord) -> (bool, String) {
    let canonical = r
        .header(headers::DLQ_ORIGINAL_TOPIC)
        .and_then(|t| names.canonical(t));
    let decoded = canonical.map(|c| {
        todo_events::decode_record(c, r.header(headers::CONTENT_TYPE), &r.value)
            .map_err(|e| format!("{} {e}", e.class()))
            .and_then(|ev| {
                ev.encode(todo_events::ContentType::Json)
                    .map_err(|e| e.to_string())
            })
    });
    match decoded {
        Some(Ok(json)) => {
            let pretty = serde_json::from_slice::<serde_json::Value>(&json)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| String::from_utf8_lossy(&json).into_owned());
            (true, pretty)
        }
        Some(Err(why)) => (
            false,
            format!("does not decode: {why}\n\n{}", raw(&r.value)),
        ),
        None => (
            false,
            format!("original topic unknown\n\n{}", raw(&r.value)),
        ),
    }
}

/// The bytes as text where they are text, and in hex (at most 256 bytes).
fn raw(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(256)];
    let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > shown.len() {
        " …"
    } else {
        ""
    };
    format!(
        "{} bytes\ntext: {}{more}\nhex:  {}{more}",
        bytes.len(),
        String::from_utf8_lossy(shown),
        hex.join(" ")
    )
}

fn id_of(r: &ReadRecord) -> String {
    format!("{}:{}", r.partition, r.offset)
}

/// How long reading the dead-letter topic may take.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the dead letters and what was done to each.
async fn load(
    state: &AppState,
) -> Result<(
    TopicNames,
    Vec<ReadRecord>,
    HashMap<(i32, i64), Disposition>,
)> {
    let console = &state.console;
    let names = TopicNames::new(console.kafka.topic_prefix.clone());
    // Within the request's own timeout, so the page can say what failed.
    let records = tokio::time::timeout(READ_WITHIN, ops::read_all(&console.kafka))
        .await
        .map_err(|_| {
            ApiError::KafkaUnavailable(anyhow::anyhow!(
                "reading {} got no answer within {READ_WITHIN:?}",
                names.dlq()
            ))
        })?
        .map_err(ApiError::KafkaUnavailable)?;
    let dispositions = dlq_actions::dispositions(&state.pool, &names.dlq()).await?;
    Ok((names, records, dispositions))
}

/// `GET /console/dead-letters`.
pub(super) async fn page(State(state): State<AppState>) -> Response {
    let (names, records, dispositions) = match load(&state).await {
        Ok(l) => l,
        Err(e) => {
            let status = e.status_code();
            let why = match &e {
                ApiError::KafkaUnavailable(cause) => format!("Kafka: {cause:#}"),
                other => other.to_string(),
            };
            let message = format!("The dead letters could not be read ({why}). Reload shortly.");
            tracing::warn!(error = ?e, "console: could not read the dead letters");
            return error_page(status, Tab::DeadLetters, &message);
        }
    };
    let writable = state.console.writable();
    let mut pending_by_class: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        if !dispositions.contains_key(&(r.partition, r.offset)) {
            *pending_by_class
                .entry(r.header(headers::DLQ_ERROR_CLASS).unwrap_or("unknown"))
                .or_default() += 1;
        }
    }
    let body = html! {
        h1 { "Dead letters" }
        p class="muted" {
            (records.len()) " in " (names.dlq()) ", " (pending_by_class.values().sum::<usize>()) " pending. "
            "Every replay is recorded (" code { "todoctl dlq history" } ")."
        }
        @if writable {
            form id="replay-auth" class="card" autocomplete="off" {
                label { "Admin token " input name="token" type="password" required; }
                label { "Reason " input name="reason" type="text" size="40" required placeholder="why the replay (recorded)"; }
                div id="replay-result" role="status" {}
            }
            @if !pending_by_class.is_empty() {
                section class="card" {
                    h2 { "Replay every pending dead letter of a class" }
                    @for (class, n) in &pending_by_class {
                        button type="button" class="replay" data-error-class=(class) { "Replay " (n) " × " (class) }
                    }
                }
            }
        } @else {
            p class="card muted" id="read-only" {
                "Read-only: the event service has no CONSOLE_ADMIN_TOKEN, so replays are refused."
            }
        }
        table id="dead-letters" {
            thead { tr {
                th { "Dead letter" } th { "From" } th { "Error class" } th { "Error" }
                th { "Attempts" } th { "State" } th { "Payload" } th {}
            } }
            tbody {
                @for r in records.iter().rev() {
                    @let state_text = match dispositions.get(&(r.partition, r.offset)) {
                        None => "pending".to_owned(),
                        Some(d) => format!("{} (action {})", d.kind.as_str(), d.action_id),
                    };
                    @let (decoded, shown) = payload(&names, r);
                    tr data-dead-letter=(id_of(r)) {
                        td class="mono" { (r.topic) " [" (r.partition) "] @ " (r.offset) }
                        td class="mono" {
                            (r.header(headers::DLQ_ORIGINAL_TOPIC).unwrap_or("?"))
                            " [" (r.header(headers::DLQ_ORIGINAL_PARTITION).unwrap_or("?")) "] @ "
                            (r.header(headers::DLQ_ORIGINAL_OFFSET).unwrap_or("?"))
                        }
                        td class="error-class" { (r.header(headers::DLQ_ERROR_CLASS).unwrap_or("unknown")) }
                        td class="error-message" { (r.header(headers::DLQ_ERROR_MESSAGE).unwrap_or("")) }
                        td { (r.header(headers::DLQ_ATTEMPTS).unwrap_or("?")) }
                        td class="state" { (state_text) }
                        td {
                            details {
                                summary { (if decoded { "event" } else { "raw bytes" }) }
                                pre class="payload" { (shown) }
                            }
                        }
                        td {
                            @if writable {
                                button type="button" class="replay" data-dead-letter=(id_of(r)) { "Replay" }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Dead letters", Tab::DeadLetters, body).into_response()
}

/// A replay asked for by the console: one dead letter, or every pending one
/// of an error class.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayRequest {
    /// Why (recorded; not blank).
    reason: String,
    /// `PARTITION:OFFSET` in the dead-letter topic.
    #[serde(default)]
    dead_letter: Option<String>,
    /// Every pending dead letter with this `dlq.error_class`.
    #[serde(default)]
    error_class: Option<String>,
}

/// What a replay did.
#[derive(Debug, Serialize)]
pub(super) struct ReplayResult {
    /// The recorded action (`todoctl dlq history`).
    action_id: i64,
    /// Dead letters republished.
    replayed: usize,
}

/// Whether `headers` carry the configured admin token (compared in constant
/// time, so the answer's timing says nothing about the token).
fn authorize(console: &Console, headers: &HeaderMap) -> Result<()> {
    let expected = console.admin_token.as_ref().ok_or(ApiError::ReadOnly)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let (a, b) = (given.as_bytes(), expected.expose().as_bytes());
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /console/dead-letters/replay` (JSON, `Authorization: Bearer`).
pub(super) async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ReplayResult>> {
    authorize(&state.console, &headers)?;
    let req: ReplayRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        field: "body",
        message: format!("expected {{\"reason\", and \"dead_letter\" or \"error_class\"}}: {e}"),
    })?;
    let reason = Reason::parse(&req.reason).map_err(|e| ApiError::BadRequest {
        field: "reason",
        message: e.to_string(),
    })?;
    let target = match (&req.dead_letter, &req.error_class) {
        (Some(id), None) => {
            let parsed = id
                .split_once(':')
                .and_then(|(p, o)| Some((p.parse::<i32>().ok()?, o.parse::<i64>().ok()?)));
            Target::One(parsed.ok_or_else(|| ApiError::BadRequest {
                field: "dead_letter",
                message: format!("`{id}` is not PARTITION:OFFSET"),
            })?)
        }
        (None, Some(class)) => Target::Class(class.clone()),
        _ => {
            return Err(ApiError::BadRequest {
                field: "dead_letter",
                message: "give exactly one of dead_letter and error_class".into(),
            })
        }
    };
    let (_, records, dispositions) = load(&state).await?;
    let selected: Vec<ReadRecord> = records
        .into_iter()
        .filter(|r| match &target {
            // One dead letter is replayed again if asked, as `--dead-letter --all` does.
            Target::One(id) => (r.partition, r.offset) == *id,
            Target::Class(c) => {
                r.header(headers::DLQ_ERROR_CLASS).unwrap_or("unknown") == c
                    && !dispositions.contains_key(&(r.partition, r.offset))
            }
        })
        .collect();
    if selected.is_empty() {
        return Err(match target {
            Target::One(_) => ApiError::BadRequest {
                field: "dead_letter",
                message: format!(
                    "no dead letter {} in the dead-letter topic",
                    req.dead_letter.unwrap_or_default()
                ),
            },
            Target::Class(c) => ApiError::BadRequest {
                field: "error_class",
                message: format!("no pending dead letter of class `{c}`"),
            },
        });
    }
    let selection = serde_json::json!({
        "from": "console",
        "dead_letter": req.dead_letter,
        "error_class": req.error_class,
    });
    let acted = ops::act(
        &state.pool,
        &state.console.kafka,
        Request {
            action: Action::Replay,
            actor: Actor::parse("console").expect("not blank"),
            reason,
            selection,
        },
        &selected,
    )
    .await
    .map_err(ApiError::KafkaUnavailable)?;
    Ok(Json(ReplayResult {
        action_id: acted.action_id,
        replayed: acted.touched,
    }))
}

enum Target {
    One((i32, i64)),
    Class(String),
}
