//! Topic provisioning at start: create what is missing with the configured
//! partitions, replication, retention and `min.insync.replicas`; never accept
//! silently an existing topic with fewer partitions than configured.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

/// How topics are created.
#[derive(clap::Args, Clone, Debug)]
pub struct TopicSettings {
    /// Partitions per topic.
    #[arg(
        long = "kafka-topic-partitions",
        env = "KAFKA_TOPIC_PARTITIONS",
        default_value_t = 3
    )]
    pub partitions: i32,
    /// Replication factor; default min(3, number of brokers).
    #[arg(
        long = "kafka-topic-replication-factor",
        env = "KAFKA_TOPIC_REPLICATION_FACTOR"
    )]
    pub replication_factor: Option<i32>,
    /// Retention in milliseconds (default 7 days).
    #[arg(
        long = "kafka-topic-retention-ms",
        env = "KAFKA_TOPIC_RETENTION_MS",
        default_value_t = 604_800_000
    )]
    pub retention_ms: i64,
    /// min.insync.replicas; default 2 when the replication factor is 3 or more, else 1.
    #[arg(
        long = "kafka-topic-min-insync-replicas",
        env = "KAFKA_TOPIC_MIN_INSYNC_REPLICAS"
    )]
    pub min_insync_replicas: Option<i32>,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            partitions: 3,
            replication_factor: None,
            retention_ms: 604_800_000,
            min_insync_replicas: None,
        }
    }
}

/// What provisioning did.
#[derive(Debug, Default)]
pub struct ProvisionReport {
    /// Topics created now.
    pub created: Vec<String>,
    /// Topics that existed with at least the configured partitions.
    pub existing: Vec<String>,
    /// Topics that existed with fewer partitions than configured.
    pub under_partitioned: Vec<(String, usize)>,
    /// The replication factor used for new topics.
    pub replication_factor: i32,
}

/// Provisioning failures.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The admin client or a metadata request failed.
    #[error("kafka admin request failed: {0}")]
    Kafka(#[from] KafkaError),
    /// The broker refused to create a topic.
    #[error("could not create topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    /// A blocking metadata call panicked or was cancelled.
    #[error("metadata task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Creates the missing `topics`; warns loudly about existing topics with fewer
/// partitions than configured (the per-key order of existing data would break
/// if we changed them, so we never do that silently).
pub async fn provision_topics(
    client: &ClientConfig,
    topics: &[String],
    settings: &TopicSettings,
) -> Result<ProvisionReport, ProvisionError> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(client.create()?);
    let meta_admin = admin.clone();
    // NB: metadata calls block; keep them off the async runtime.
    let (brokers, partitions) = tokio::task::spawn_blocking(move || {
        let md = meta_admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))?;
        let parts: Vec<(String, usize)> = md
            .topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect();
        Ok::<_, KafkaError>((md.brokers().len() as i32, parts))
    })
    .await??;

    let rf = settings
        .replication_factor
        .unwrap_or_else(|| brokers.clamp(1, 3));
    let min_isr = settings
        .min_insync_replicas
        .unwrap_or(if rf >= 3 { 2 } else { 1 });
    let mut report = ProvisionReport {
        replication_factor: rf,
        ..Default::default()
    };

    let retention = settings.retention_ms.to_string();
    let min_isr_s = min_isr.to_string();
    let mut to_create = Vec::new();
    for topic in topics {
        match partitions.iter().find(|(name, _)| name == topic) {
            Some((_, n)) if (*n as i32) < settings.partitions => {
                tracing::error!(
                    topic = %topic, partitions = n, configured = settings.partitions,
                    "TOPIC HAS FEWER PARTITIONS THAN CONFIGURED: left as it is; increase it deliberately with the admin tools"
                );
                report.under_partitioned.push((topic.clone(), *n));
            }
            Some(_) => report.existing.push(topic.clone()),
            None => to_create.push(topic.clone()),
        }
    }
    if to_create.is_empty() {
        return Ok(report);
    }
    let new_topics: Vec<NewTopic> = to_create
        .iter()
        .map(|t| {
            NewTopic::new(t, settings.partitions, TopicReplication::Fixed(rf))
                .set("retention.ms", &retention)
                .set("min.insync.replicas", &min_isr_s)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &opts).await? {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = settings.partitions, replication_factor = rf, min_insync_replicas = min_isr, "created topic");
                report.created.push(name);
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => report.existing.push(name),
            Err((topic, code)) => return Err(ProvisionError::Create { topic, code }),
        }
    }
    Ok(report)
}
