//! The service's Postgres store: the write path that applies a batch of events
//! in one transaction ([`apply_batch`]), and the queries of the read API.

mod queries;
mod write;

pub use queries::*;
pub use write::{apply_batch, Applied, Incoming};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

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
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => Failure::Outage,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => Failure::Outage,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // 08xxx connection exceptions, 57Pxx shutdown / cannot connect now,
            // 53xxx insufficient resources (too many connections, disk full).
            Some(c) if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                Failure::Outage
            }
            // 40001 serialization_failure, 40P01 deadlock_detected.
            Some("40001") | Some("40P01") => Failure::Conflict,
            _ => Failure::Handler,
        },
        _ => Failure::Handler,
    }
}

/// Connects, creating the database if it is missing, and runs the migrations.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> anyhow::Result<PgPool> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(url).await? {
        tracing::info!("creating the event store database");
        if let Err(e) = sqlx::Postgres::create_database(url).await {
            // Another instance may have created it at the same time.
            if !sqlx::Postgres::database_exists(url).await? {
                return Err(e.into());
            }
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect(url)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
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
