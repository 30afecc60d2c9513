//! Kafka plumbing shared by `todo-backend`, `todo-event-service` and `todoctl`:
//! typed client settings with a guarded pass-through map, topic names (with an
//! optional prefix for isolation), topic provisioning and error classification.
//!
//! The event contract itself (topic names, headers, payloads) lives in
//! `todo-events`; this crate only adds what needs a Kafka client.

pub mod config;
pub mod context;
pub mod errors;
pub mod message;
pub mod provision;
pub mod read;
pub mod topics;

pub use config::{ConfigError, ConsumerArgs, KafkaArgs, ProducerArgs};
pub use context::{producer, producers, KafkaContext, Producer};
pub use errors::is_retriable;
pub use message::{headers_as_strings, send, Outgoing};
pub use provision::{
    provision_in_background, provision_topics, provision_until_done, ProvisionError, TopicSettings,
};
pub use read::{read_to_end, topic_partitions, ReadRecord};
pub use topics::TopicNames;
