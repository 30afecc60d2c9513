//! The shared backoff policy, where the consumer's layers expect it.

pub use todo_runtime::retry::{sleep_or_cancel, Backoff};
