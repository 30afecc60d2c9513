//! Client configuration: typed fields for what the services rely on, and a
//! pass-through map (`--kafka-property key=value`, `KAFKA_PROPERTIES`) for any
//! other librdkafka setting, which may not override a typed one.

use rdkafka::ClientConfig;
use todo_runtime::Secret;

/// Errors in the client configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A pass-through property tried to set a key that has a typed setting.
    #[error("kafka property `{0}` has its own setting and cannot be overridden through KAFKA_PROPERTIES")]
    Reserved(String),
    /// A pass-through property is not `key=value`.
    #[error("kafka property `{0}` is not key=value")]
    Malformed(String),
}

fn parse_property(s: &str) -> Result<(String, String), ConfigError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(ConfigError::Malformed(s.to_owned())),
    }
}

/// Connection settings common to every client.
#[derive(clap::Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Comma-separated host:port list of brokers.
    #[arg(
        long = "kafka-bootstrap-servers",
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Prefix put in front of every topic name (isolates tests and environments).
    #[arg(
        long = "kafka-topic-prefix",
        env = "KAFKA_TOPIC_PREFIX",
        default_value = ""
    )]
    pub topic_prefix: String,
    /// SASL username; with it the clients use SASL (SCRAM-SHA-512 by default).
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password.
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<Secret>,
    /// SASL mechanism.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        default_value = "SCRAM-SHA-512"
    )]
    pub sasl_mechanism: String,
    /// security.protocol when SASL is on (SASL_PLAINTEXT or SASL_SSL).
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        default_value = "SASL_PLAINTEXT"
    )]
    pub security_protocol: String,
    /// Extra librdkafka properties, `key=value`, comma-separated in the environment.
    #[arg(long = "kafka-property", env = "KAFKA_PROPERTIES", value_delimiter = ',', value_parser = |s: &str| parse_property(s).map_err(|e| e.to_string()))]
    pub properties: Vec<(String, String)>,
}

impl KafkaArgs {
    /// Settings for a local broker at `bootstrap_servers`, everything else default.
    pub fn local(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic_prefix: String::new(),
            sasl_username: None,
            sasl_password: None,
            sasl_mechanism: "SCRAM-SHA-512".into(),
            security_protocol: "SASL_PLAINTEXT".into(),
            properties: Vec::new(),
        }
    }

    /// The base client configuration: brokers, security, then the pass-through
    /// properties, none of which may touch a key in `typed` or a key set here.
    pub fn client_config(&self, typed: &[(&str, String)]) -> Result<ClientConfig, ConfigError> {
        let mut cfg = ClientConfig::new();
        let mut reserved: Vec<&str> = vec!["bootstrap.servers"];
        cfg.set("bootstrap.servers", &self.bootstrap_servers);
        if let Some(user) = &self.sasl_username {
            reserved.extend([
                "security.protocol",
                "sasl.mechanisms",
                "sasl.username",
                "sasl.password",
            ]);
            cfg.set("security.protocol", &self.security_protocol)
                .set("sasl.mechanisms", &self.sasl_mechanism)
                .set("sasl.username", user)
                .set(
                    "sasl.password",
                    self.sasl_password
                        .as_ref()
                        .map(Secret::expose)
                        .unwrap_or(""),
                );
        }
        for (k, v) in typed {
            reserved.push(k);
            cfg.set(*k, v);
        }
        // Defaults that the pass-through map may change: librdkafka waits up to
        // 10 s between reconnects by default; a broker that comes back is
        // reached within about a second instead, so publishing and consuming
        // resume promptly after an outage.
        cfg.set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000");
        for (k, v) in &self.properties {
            if reserved.contains(&k.as_str()) {
                return Err(ConfigError::Reserved(k.clone()));
            }
            cfg.set(k, v);
        }
        Ok(cfg)
    }

    /// Producer configuration with the typed producer settings.
    pub fn producer_config(&self, p: &ProducerArgs) -> Result<ClientConfig, ConfigError> {
        self.client_config(&p.typed())
    }

    /// Consumer configuration with the typed consumer settings.
    pub fn consumer_config(&self, c: &ConsumerArgs) -> Result<ClientConfig, ConfigError> {
        self.client_config(&c.typed())
    }
}

/// The consumer group settings the at-least-once guarantee rests on: the
/// event service's group, and any client that measures it (`todo-bench
/// ceiling`).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
// NB: clap names an argument group after its struct; the event service's own
// `ConsumerArgs` flattens this one, and two groups may not share a name.
#[group(id = "KafkaConsumerArgs")]
pub struct ConsumerArgs {
    /// Consumer group id: instances with the same id share the partitions.
    #[arg(
        long = "kafka-group-id",
        env = "KAFKA_GROUP_ID",
        default_value = "todo-event-service"
    )]
    pub group_id: String,
    /// How often stored offsets are committed (they are also committed on
    /// revoke and shutdown). Short, because `consumer_lag` counts from the
    /// committed offset: at 1 000 events/s a 1 s interval alone reads as ~1 000
    /// lag, 100 ms as ~100; an offset commit is one small request when
    /// something was stored. 50 ms keeps the spec's lag < 100 at 1 000/s
    /// (docs/performance.md, A/B of 50 vs 100 ms).
    #[arg(
        long = "kafka-auto-commit-interval-ms",
        env = "KAFKA_AUTO_COMMIT_INTERVAL_MS",
        default_value_t = 50
    )]
    pub auto_commit_interval_ms: u64,
    /// Where a new group starts reading.
    #[arg(
        long = "kafka-auto-offset-reset",
        env = "KAFKA_AUTO_OFFSET_RESET",
        default_value = "earliest"
    )]
    pub auto_offset_reset: String,
    /// Group session timeout.
    #[arg(
        long = "kafka-session-timeout-ms",
        env = "KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub session_timeout_ms: u64,
    /// How often the consumer tells the group it is alive. Members learn of
    /// a rebalance (an instance joining or leaving) from the answer to their
    /// next heartbeat, so this bounds how long the others keep the group
    /// waiting; librdkafka's own default is 3 s.
    #[arg(
        long = "kafka-heartbeat-interval-ms",
        env = "KAFKA_HEARTBEAT_INTERVAL_MS",
        default_value_t = 1_000
    )]
    pub heartbeat_interval_ms: u64,
    /// Partition assignment strategy (cooperative-sticky moves only what must move).
    #[arg(
        long = "kafka-partition-assignment-strategy",
        env = "KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
        default_value = "cooperative-sticky"
    )]
    pub assignment_strategy: String,
}

impl Default for ConsumerArgs {
    fn default() -> Self {
        Self {
            group_id: "todo-event-service".into(),
            auto_commit_interval_ms: 50,
            auto_offset_reset: "earliest".into(),
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 1_000,
            assignment_strategy: "cooperative-sticky".into(),
        }
    }
}

impl ConsumerArgs {
    /// The typed consumer settings (a pass-through property may not override them).
    pub fn typed(&self) -> Vec<(&'static str, String)> {
        vec![
            ("group.id", self.group_id.clone()),
            // NB: offsets are stored by the consumer's owner, only after an
            // event is processed or dead-lettered; librdkafka then commits
            // what was stored.
            ("enable.auto.commit", "true".into()),
            ("enable.auto.offset.store", "false".into()),
            (
                "auto.commit.interval.ms",
                self.auto_commit_interval_ms.to_string(),
            ),
            ("auto.offset.reset", self.auto_offset_reset.clone()),
            ("session.timeout.ms", self.session_timeout_ms.to_string()),
            (
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms.to_string(),
            ),
            (
                "partition.assignment.strategy",
                self.assignment_strategy.clone(),
            ),
        ]
    }
}

/// The producer settings the zero-loss and ordering guarantees rest on.
#[derive(clap::Args, Clone, Debug)]
pub struct ProducerArgs {
    /// acks: `all` waits for every in-sync replica.
    #[arg(long = "kafka-acks", env = "KAFKA_ACKS", default_value = "all")]
    pub acks: String,
    /// Idempotent producer: retries never duplicate or reorder within a partition.
    #[arg(long = "kafka-enable-idempotence", env = "KAFKA_ENABLE_IDEMPOTENCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_idempotence: bool,
    /// Time librdkafka waits to fill a batch.
    #[arg(long = "kafka-linger-ms", env = "KAFKA_LINGER_MS", default_value_t = 2)]
    pub linger_ms: u32,
    /// How long librdkafka keeps retrying one message before reporting it failed.
    #[arg(
        long = "kafka-message-timeout-ms",
        env = "KAFKA_MESSAGE_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub message_timeout_ms: u32,
    /// Compression codec for record batches.
    #[arg(
        long = "kafka-compression",
        env = "KAFKA_COMPRESSION",
        default_value = "lz4"
    )]
    pub compression: String,
}

impl Default for ProducerArgs {
    fn default() -> Self {
        Self {
            acks: "all".into(),
            enable_idempotence: true,
            linger_ms: 2,
            message_timeout_ms: 120_000,
            compression: "lz4".into(),
        }
    }
}

impl ProducerArgs {
    fn typed(&self) -> Vec<(&'static str, String)> {
        vec![
            ("acks", self.acks.clone()),
            ("enable.idempotence", self.enable_idempotence.to_string()),
            ("linger.ms", self.linger_ms.to_string()),
            ("message.timeout.ms", self.message_timeout_ms.to_string()),
            ("compression.type", self.compression.clone()),
            // NB: the Java client's key hashing, so a task's events land on the
            // partition Java producers, Kafka Streams or ksqlDB would pick.
            ("partitioner", "murmur2_random".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_through_property_cannot_override_a_typed_setting() {
        let mut args = KafkaArgs::local("b:9092");
        args.properties = vec![("acks".into(), "1".into())];
        let err = args.producer_config(&ProducerArgs::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Reserved(k) if k == "acks"));
    }

    #[test]
    fn pass_through_properties_reach_the_client_config() {
        let mut args = KafkaArgs::local("b:9092");
        args.properties = vec![("socket.keepalive.enable".into(), "true".into())];
        let cfg = args.producer_config(&ProducerArgs::default()).unwrap();
        assert_eq!(cfg.get("socket.keepalive.enable"), Some("true"));
        assert_eq!(cfg.get("partitioner"), Some("murmur2_random"));
        assert_eq!(cfg.get("acks"), Some("all"));
    }

    #[test]
    fn the_consumer_defaults_are_the_flags_defaults() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            consumer: ConsumerArgs,
        }
        let parsed = <Flags as clap::Parser>::parse_from(["x"]).consumer;
        assert_eq!(parsed, ConsumerArgs::default());
    }

    #[test]
    fn a_pass_through_property_cannot_turn_automatic_offset_storing_back_on() {
        let mut args = KafkaArgs::local("b:9092");
        args.properties = vec![("enable.auto.offset.store".into(), "true".into())];
        assert!(args.consumer_config(&ConsumerArgs::default()).is_err());
        args.properties.clear();
        let cfg = args.consumer_config(&ConsumerArgs::default()).unwrap();
        assert_eq!(cfg.get("enable.auto.offset.store"), Some("false"));
    }

    #[test]
    fn a_property_without_equals_sign_is_rejected() {
        assert!(parse_property("novalue").is_err());
        assert_eq!(parse_property(" a = b ").unwrap(), ("a".into(), "b".into()));
    }

    #[test]
    fn the_sasl_password_never_prints() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
