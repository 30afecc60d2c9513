//! The service's Postgres store: the write path that applies a batch of events
//! in one transaction ([`apply_batch`]), and the queries of the read API.

pub mod console;
pub mod migrations;
pub mod parking;
pub mod projection;
mod queries;
mod write;

pub use queries::*;
pub use write::{apply_and_park, apply_batch, Applied, Incoming};

/// How a database error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database is unreachable, restarting or saturated: not the event's
    /// fault. Wait and retry until it is back; never dead-letter.
    Outage,
    /// A conflict between concurrent transactions (deadlock, serialization):
    /// retry the same batch at once.
    Conflict,
    /// The statement failed for these events: retry with backoff, then isolate
    /// the culprit and dead-letter it.
    Handler,
}

/// Classifies a database error.
pub fn classify(e: &sqlx::Error) -> Failure {
    if todo_runtime::db::is_outage(e) {
        return Failure::Outage;
    }
    match e {
        // 40001 serialization_failure, 40P01 deadlock_detected.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")) => {
            Failure::Conflict
        }
        _ => Failure::Handler,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pool_is_an_outage_and_a_missing_row_a_handler_error() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Failure::Outage);
        assert_eq!(classify(&sqlx::Error::RowNotFound), Failure::Handler);
    }
}
