//! Integration tests of the API against the real Postgres and Kafka of the
//! local stack: each test has its own database and its own topics.

mod bad_input;
mod batching;
mod dapr;
mod helpers;
mod recent_tasks;
mod relay;
mod tasks;
