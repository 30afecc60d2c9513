//! todo-outbox: the one place that holds SQL on the backend's `outbox`
//! table. The backend writes events with [`write`] (inside its own task
//! statements) and relays them with [`relay`]; `todoctl` replays them with
//! [`replay`]; metrics, `todoctl verify` and the bench read them with
//! [`backlog`] and [`read`]. [`tasks`] is the backend's `tasks` table as other
//! programs read it.
//!
//! The table itself is defined by the backend's migrations
//! (`crates/todo-backend/migrations`), which scripts and the Helm chart run.
//! This crate links neither service.

pub mod backlog;
pub mod read;
pub mod relay;
pub mod replay;
pub mod tasks;
pub mod write;

use sqlx::PgExecutor;

/// Channel the active relay LISTENs on; writers in other processes and
/// replays NOTIFY it.
pub const NOTIFY_CHANNEL: &str = "todo_outbox";

/// Tells the active relay, wherever it runs, that there are rows to publish.
/// NB: call it outside a writer's transaction: NOTIFY takes a global lock at
/// commit and would serialize the committing writers.
pub async fn notify<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    notify_with(db, "").await
}

/// The payload of the NOTIFY a replay sends: it marked published rows
/// unpublished again, below where the relay reads from, so the relay reads
/// from the first id again.
pub const REPLAY_PAYLOAD: &str = "replay";

/// Tells the active relay that a replay queued published rows again.
pub async fn notify_replay<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    notify_with(db, REPLAY_PAYLOAD).await
}

async fn notify_with<'e>(db: impl PgExecutor<'e>, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(payload)
        .execute(db)
        .await
        .map(drop)
}
