//! What librdkafka reports about its connections, kept and logged sparingly.
//!
//! librdkafka retries connections on its own and reports each failure through
//! its error and log callbacks, several lines a second per broker while Kafka
//! is down. Our clients keep the last cause (so "Kafka unreachable" can say
//! *why*: refused, no route, bad credentials) and log it at most once every
//! 10 s.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

/// How often a client logs a connection problem at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The last connection problem a client met, and when it was last logged.
#[derive(Default)]
pub struct BrokerErrors {
    last: Mutex<Option<Cause>>,
    logged: Mutex<Option<Instant>>,
    /// Record only: the owner reports the cause itself (provisioning does, in
    /// its one line per attempt).
    quiet: bool,
}

/// One problem librdkafka reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// librdkafka's code, when it gave one.
    pub code: Option<RDKafkaErrorCode>,
    /// Its words, e.g. "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1
    /// failed: Connection refused (after 0ms in state CONNECT)".
    pub reason: String,
}

impl Cause {
    /// True when the cluster refused our credentials: retrying cannot help.
    /// librdkafka says so with a code through its error callback, and only in
    /// words through its log callback.
    pub fn is_authentication(&self) -> bool {
        matches!(
            self.code,
            Some(RDKafkaErrorCode::Authentication)
                | Some(RDKafkaErrorCode::SaslAuthenticationFailed)
        ) || self.reason.contains("SASL authentication error")
    }
}

impl BrokerErrors {
    /// Records a problem; logs it unless one was logged in the last 10 s.
    /// "N/N brokers are down" never replaces a more precise cause.
    pub fn record(&self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let summary_only = code == Some(RDKafkaErrorCode::AllBrokersDown);
        {
            let mut last = self.last.lock().expect("cause lock");
            if !(summary_only && last.is_some()) {
                *last = Some(Cause {
                    code,
                    reason: reason.to_owned(),
                });
            }
        }
        // "N/N brokers are down" adds nothing to the cause already logged,
        // and the consumer reports it as a consumer error too.
        if self.quiet || summary_only {
            return;
        }
        let mut logged = self.logged.lock().expect("log lock");
        if logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *logged = Some(Instant::now());
            tracing::warn!(target: "kafka", "kafka: {reason} (repeats are not logged for 10 s)");
        }
    }

    /// The last problem recorded, if any.
    pub fn last(&self) -> Option<Cause> {
        self.last.lock().expect("cause lock").clone()
    }

    /// Forgets the last problem (before an attempt whose cause should be its own).
    pub fn clear(&self) {
        *self.last.lock().expect("cause lock") = None;
    }

    /// For [`ClientContext::error`].
    pub fn on_error(&self, error: &KafkaError, reason: &str) {
        self.record(error.rdkafka_error_code(), reason);
    }

    /// For [`ClientContext::log`]: errors are recorded, the rest go to
    /// `debug` (librdkafka retries and reports what matters as errors).
    pub fn on_log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => self.record(None, message),
            _ => tracing::debug!(target: "librdkafka", "{fac} {message}"),
        }
    }
}

/// The context of our producers and admin clients.
#[derive(Default)]
pub struct KafkaContext {
    /// What the client met.
    pub errors: BrokerErrors,
}

impl KafkaContext {
    /// A context that records what librdkafka reports without logging it.
    pub fn quiet() -> Self {
        Self {
            errors: BrokerErrors {
                quiet: true,
                ..Default::default()
            },
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.errors.on_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.on_error(&error, reason);
    }
}

// For the polled metadata probe of provisioning (a `BaseProducer` that sends
// nothing).
impl rdkafka::producer::ProducerContext for KafkaContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Our producers.
pub type Producer = FutureProducer<KafkaContext>;

/// A producer from `config`. librdkafka connects in the background: this
/// succeeds with every broker down.
pub fn producer(config: &ClientConfig) -> Result<Producer, KafkaError> {
    config.create_with_context(KafkaContext::default())
}

/// `n` producers from `config`, for the same brokers: the first logs what
/// it meets, the others only record it, so an outage is logged once rather
/// than once per producer.
pub fn producers(config: &ClientConfig, n: usize) -> Result<Vec<Producer>, KafkaError> {
    (0..n)
        .map(|i| match i {
            0 => producer(config),
            _ => config.create_with_context(KafkaContext::quiet()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_never_hides_the_precise_cause() {
        let e = BrokerErrors::default();
        e.record(
            Some(RDKafkaErrorCode::BrokerTransportFailure),
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        );
        e.record(
            Some(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            e.last().unwrap().reason,
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused"
        );
    }

    #[test]
    fn an_authentication_failure_reported_only_in_words_is_recognised() {
        let e = BrokerErrors::default();
        e.on_log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "sasl_plaintext://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        );
        assert!(e.last().unwrap().is_authentication());
    }

    #[test]
    fn an_authentication_failure_is_recognised() {
        let e = BrokerErrors::default();
        e.record(
            Some(RDKafkaErrorCode::Authentication),
            "SASL authentication error",
        );
        assert!(e.last().unwrap().is_authentication());
    }
}
