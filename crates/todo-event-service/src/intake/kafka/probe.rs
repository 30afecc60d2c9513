//! What readiness says of Kafka: the consumer must run and the cluster's
//! metadata come back (in Dapr mode, the Kafka dependency alone).

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::{EventConsumer, KafkaConsumer};

/// The consumer once it runs, for readiness probes; it does not keep the
/// consumer alive.
#[derive(Clone, Default)]
pub struct RunningConsumer(Arc<OnceLock<Weak<KafkaConsumer>>>);

impl RunningConsumer {
    /// Records the consumer that now runs.
    pub fn set(&self, consumer: &EventConsumer) {
        let _ = self.0.set(Arc::downgrade(&consumer.consumer));
    }

    fn get(&self) -> Option<Arc<KafkaConsumer>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// What readiness says of Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaState {
    /// The consumer runs and the cluster answers.
    Up,
    /// Not reached since the service started (topics not provisioned yet).
    Connecting(Option<String>),
    /// The consumer runs but the cluster does not answer now.
    Down(Option<String>),
}

/// Checks that Kafka answers, through the consumer.
#[derive(Clone)]
pub struct KafkaProbe {
    kafka: todo_runtime::dependency::Dependency,
    running: RunningConsumer,
    no_consumer: bool,
}

impl KafkaProbe {
    /// A probe over the service's Kafka dependency and its consumer; with
    /// `no_consumer` (events come through Dapr) over the dependency alone.
    pub fn new(
        kafka: todo_runtime::dependency::Dependency,
        running: RunningConsumer,
        no_consumer: bool,
    ) -> Self {
        Self {
            kafka,
            running,
            no_consumer,
        }
    }

    /// Where Kafka stands: the consumer must run and the cluster's metadata
    /// be fetched within `timeout`.
    pub async fn state(&self, timeout: Duration) -> KafkaState {
        use todo_runtime::dependency::State;
        if self.no_consumer {
            return match self.kafka.state() {
                State::Up => KafkaState::Up,
                State::Connecting { last_error, .. } => KafkaState::Connecting(last_error),
                other => KafkaState::Down(Some(other.word().to_owned())),
            };
        }
        let Some(consumer) = self.running.get() else {
            return match self.kafka.state() {
                State::Connecting { last_error, .. } => KafkaState::Connecting(last_error),
                other => {
                    KafkaState::Connecting(Some(format!("consumer not started ({})", other.word())))
                }
            };
        };
        let probe = consumer.clone();
        let up = tokio::task::spawn_blocking(move || {
            probe
                .fetch_metadata(None, timeout)
                .is_ok_and(|m| !m.brokers().is_empty())
        })
        .await
        .unwrap_or(false);
        if up {
            KafkaState::Up
        } else {
            KafkaState::Down(consumer.context().broker_errors.last().map(|c| c.reason))
        }
    }
}
