//! SQL, one small function per statement.

pub mod insert_batcher;
pub mod tasks;
