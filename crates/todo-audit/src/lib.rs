//! The event service's records as operators and tools read them, so that no
//! tool queries the service's tables with SQL of its own:
//!
//! * [`log`]: the audit log and the task projection, for reconciliation and
//!   benchmarks;
//! * [`dead_letters`]: reading the dead-letter topic, replaying or discarding
//!   a selection, and recording each action ([`dlq_actions`]). `todoctl dlq`
//!   and the event service's console both act through it, so they act alike.
//!
//! The tables are created by the event service's migrations
//! (`crates/todo-event-service/migrations`), which the tests of the crates
//! using these functions run.

pub mod dead_letters;
pub mod dlq_actions;
pub mod log;
