//! The read API: one file per resource, each exporting `router()`.

pub mod analytics;
pub mod audit;
pub mod events;
pub mod health;
