//! SQL, one small function per statement.

pub mod batched_reads;
pub mod batched_writes;
pub mod batcher;
pub mod migrations;
pub mod tasks;

/// An error that reads as "database unavailable" (503), for answering
/// requests that share one failed database call (`sqlx::Error` cannot be
/// cloned).
pub(crate) fn unavailable(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        why.to_owned(),
    ))
}
