//! SQL, one small function per statement.

pub mod tasks;
