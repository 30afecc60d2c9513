//! HTTP routes, one file per resource.

pub mod health;
pub mod openapi;
pub mod tasks;
