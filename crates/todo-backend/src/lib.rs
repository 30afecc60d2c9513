//! todo-backend: the task API on PostgreSQL with a transactional outbox
//! relayed to Kafka. `main.rs` only reads the configuration and runs
//! [`startup::Application`].

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
