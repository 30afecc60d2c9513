//! How events come in. Each intake reads records from one source and hands
//! them, per partition and in order, to the [`crate::pipeline::Processor`];
//! it decides when a record counts as done at its source (an offset stored,
//! a delivery answered) and nothing else. The pipeline knows no intake.
//!
//! * [`kafka`]: the service's own consumer group over the task topics.
//! * [`dapr`]: the Dapr sidecar's bulk deliveries (`EVENT_SOURCE=dapr`).

pub mod dapr;
pub mod kafka;
