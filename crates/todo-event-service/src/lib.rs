//! todo-event-service: consumes the task events of todo-backend from Kafka and
//! keeps an audit log, a projection of each task's current state and
//! analytics in Postgres, and POSTs webhooks on completed tasks.
//!
//! Processing is idempotent (event ids recorded in the same transaction as the
//! effects; webhooks deduplicated in Redis), failing handlers are retried with
//! backoff, unprocessable records go to the dead-letter topic, and offsets are
//! stored only after processing. `main.rs` only reads the configuration and
//! runs [`startup::Application`].

pub mod config;
pub mod console;
pub mod error;
pub mod intake;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod retry;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;

/// Work stopped part-way because the partition was revoked or the service is
/// stopping; nothing of it was acknowledged, so it is redelivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;
