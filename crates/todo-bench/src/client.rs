//! The task API as the load generator uses it: one request per planned op.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::mix::{Planned, TaskPool};

/// A backend instance to send to, with the tasks this run created there.
#[derive(Debug)]
pub struct Target {
    /// Name in the report (`backend`, `events_on`, `events_off`).
    pub name: String,
    /// Base URL, without a trailing slash.
    pub base_url: String,
    /// Tasks created through this target.
    pub pool: Mutex<TaskPool>,
}

impl Target {
    /// A target at `base_url`.
    pub fn new(name: &str, base_url: &str) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            pool: Mutex::new(TaskPool::default()),
        }
    }
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx; `created` is the new task's id for a create.
    Ok { created: Option<i64> },
    /// Any other status.
    Status(u16),
    /// No response: timeout, connection refused or reset.
    Transport(TransportError),
}

/// Why no response came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The request timed out.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Anything else (reset, bad body).
    Other,
}

impl Outcome {
    /// A 2xx answer.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok { .. })
    }

    /// The id of a created task.
    pub fn created(&self) -> Option<i64> {
        match self {
            Outcome::Ok { created } => *created,
            _ => None,
        }
    }

    /// Key in the report's `statuses` map: `201`, `timeout`, `connect`, `error`.
    pub fn key(&self, planned: Planned) -> String {
        match self {
            Outcome::Ok { .. } => match planned {
                Planned::Create => "201".into(),
                Planned::Delete { .. } => "204".into(),
                _ => "200".into(),
            },
            Outcome::Status(s) => s.to_string(),
            Outcome::Transport(TransportError::Timeout) => "timeout".into(),
            Outcome::Transport(TransportError::Connect) => "connect".into(),
            Outcome::Transport(TransportError::Other) => "error".into(),
        }
    }
}

/// The title of the `seq`th task a run creates (`ceiling` writes the same
/// rows straight into PostgreSQL).
pub fn new_task_title(seq: u64) -> String {
    format!("bench {seq}")
}

/// The description of every task a run creates.
pub const NEW_TASK_DESCRIPTION: &str = "todo-bench";

#[derive(Deserialize)]
struct Created {
    id: i64,
}

/// HTTP client of the task API. Every request carries the run's correlation
/// id, so the run's events can be found in the outbox and the audit log.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    correlation_id: String,
}

impl Api {
    /// A client whose requests time out after `timeout`.
    pub fn new(correlation_id: uuid::Uuid, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("a client without TLS builds");
        Self {
            http,
            correlation_id: correlation_id.to_string(),
        }
    }

    /// The underlying client (for /metrics and health calls).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `planned` to `target`; `seq` makes titles unique.
    pub async fn send(&self, target: &Target, planned: Planned, seq: u64) -> Outcome {
        let base = &target.base_url;
        let request = match planned {
            Planned::Create => self.http.post(format!("{base}/tasks")).json(
                &serde_json::json!({"title": new_task_title(seq), "description": NEW_TASK_DESCRIPTION}),
            ),
            Planned::Update { id, .. } => self
                .http
                .put(format!("{base}/tasks/{id}"))
                .json(&serde_json::json!({"title": format!("bench {seq} renamed")})),
            Planned::Complete { id } => self.http.post(format!("{base}/tasks/{id}/complete")),
            Planned::Delete { id } => self.http.delete(format!("{base}/tasks/{id}")),
            Planned::Health => self.http.get(format!("{base}/health")),
        };
        let response = match request
            .header("x-correlation-id", &self.correlation_id)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Outcome::Transport(classify(&e)),
        };
        let status = response.status();
        // NB: read every body, or the connection is not reused.
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Transport(classify(&e)),
        };
        if !status.is_success() {
            return Outcome::Status(status.as_u16());
        }
        let created = match planned {
            Planned::Create => match serde_json::from_slice::<Created>(&body) {
                Ok(c) => Some(c.id),
                Err(_) => return Outcome::Transport(TransportError::Other),
            },
            _ => None,
        };
        Outcome::Ok { created }
    }
}

fn classify(e: &reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::Connect
    } else {
        TransportError::Other
    }
}
