//! Integration tests of the event service against the real Kafka, Postgres and
//! Redis of the local stack: each test has its own database, topics and group.
//! (Tests that stop a shared service live in `tests/outage.rs`.)

mod alerts;
mod console;
mod crash;
mod dapr;
mod dead_letters;
mod handlers;
mod helpers;
mod idempotency;
mod lag;
mod ordering;
mod parking;
mod rebalance;
mod traces;
mod webhooks;
