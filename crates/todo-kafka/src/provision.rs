//! Topic provisioning at start: create what is missing with the configured
//! partitions, replication, retention and `min.insync.replicas`; never accept
//! an existing topic with fewer partitions than configured. Services run it in
//! the background ([`provision_until_done`]), so a cluster that is down only
//! delays publishing and consuming, never the service's start.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::ClientConfig;
use todo_runtime::dependency::{AttemptError, Dependency, Shutdown};
use tokio_util::sync::CancellationToken;

use crate::context::KafkaContext;

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
    /// The replication factor used for new topics.
    pub replication_factor: i32,
}

/// Provisioning failures.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The cluster could not be reached or did not answer; `cause` is the
    /// last connection problem librdkafka reported, when it reported one.
    #[error("{}", .cause.as_deref().map_or_else(|| .error.to_string(), |c| format!("{c} ({})", .error)))]
    Unreachable {
        /// The request's own error.
        error: KafkaError,
        /// What librdkafka said about the connection.
        cause: Option<String>,
    },
    /// The cluster refused our credentials.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// No answer within the attempt's bound.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The broker refused to create a topic.
    #[error("could not create topic {topic}: {code}")]
    Create {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
    /// A topic exists with fewer partitions than configured: per-key order of
    /// the data already in it would break if we changed it, so we never do.
    #[error("topic {topic} has {found} partitions, fewer than the {configured} configured (KAFKA_TOPIC_PARTITIONS); increase it deliberately with the admin tools, or configure {found}")]
    UnderPartitioned {
        /// The topic.
        topic: String,
        /// Its partitions.
        found: usize,
        /// What the settings ask for.
        configured: i32,
    },
    /// A blocking metadata call panicked or was cancelled.
    #[error("metadata task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ProvisionError {
    /// True when retrying can help: the cluster is down, starting or busy.
    pub fn is_transient(&self) -> bool {
        match self {
            ProvisionError::Unreachable { .. } | ProvisionError::TimedOut(_) => true,
            ProvisionError::Create { code, .. } => {
                crate::is_retriable(&KafkaError::AdminOp(*code))
                    || matches!(
                        code,
                        RDKafkaErrorCode::NotController | RDKafkaErrorCode::RequestTimedOut
                    )
            }
            ProvisionError::Authentication(_)
            | ProvisionError::UnderPartitioned { .. }
            | ProvisionError::Join(_) => false,
        }
    }

    /// As an attempt of [`todo_runtime::dependency::Dependency::connect`].
    pub fn into_attempt(self) -> AttemptError {
        if self.is_transient() {
            AttemptError::Transient(self.to_string())
        } else {
            AttemptError::Fatal(self.to_string())
        }
    }
}

/// The bound of one provisioning attempt: a broker that does not answer in
/// this time is tried again later rather than waited for.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the missing `topics`, in one attempt bounded by [`ATTEMPT_TIMEOUT`].
/// An existing topic with fewer partitions than configured is an error: the
/// per-key order of existing data would break if we changed it, and running
/// with fewer partitions than the deployment expects is a mistake to stop on.
pub async fn provision_topics(
    client: &ClientConfig,
    topics: &[String],
    settings: &TopicSettings,
) -> Result<ProvisionReport, ProvisionError> {
    let unreachable = |error| ProvisionError::Unreachable { error, cause: None };
    let admin: AdminClient<KafkaContext> = client
        .create_with_context(KafkaContext::quiet())
        .map_err(unreachable)?;
    // NB: an admin client never serves librdkafka's log and error events; a
    // polled client of its own asks for the metadata and records the cause.
    let probe: Arc<BaseProducer<KafkaContext>> = Arc::new(
        client
            .create_with_context(KafkaContext::quiet())
            .map_err(unreachable)?,
    );
    let attempt = provision_with(&admin, probe.clone(), topics, settings);
    let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await;
    let cause = probe.context().errors.last();
    match (outcome, cause) {
        (Ok(Err(ProvisionError::Unreachable { .. })) | Err(_), Some(c))
            if c.is_authentication() =>
        {
            Err(ProvisionError::Authentication(c.reason))
        }
        (Ok(Err(ProvisionError::Unreachable { error, .. })), cause) => {
            Err(ProvisionError::Unreachable {
                error,
                cause: cause.map(|c| c.reason),
            })
        }
        (Ok(result), _) => result,
        (Err(_), Some(c)) => Err(ProvisionError::Unreachable {
            error: KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
            cause: Some(c.reason),
        }),
        (Err(_), None) => Err(ProvisionError::TimedOut(ATTEMPT_TIMEOUT)),
    }
}

async fn provision_with(
    admin: &AdminClient<KafkaContext>,
    probe: Arc<BaseProducer<KafkaContext>>,
    topics: &[String],
    settings: &TopicSettings,
) -> Result<ProvisionReport, ProvisionError> {
    // NB: metadata calls block; keep them off the async runtime.
    let (brokers, partitions) = tokio::task::spawn_blocking(move || {
        let md = fetch_metadata(&probe)?;
        let parts: Vec<(String, usize)> = md
            .topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect();
        Ok::<_, KafkaError>((md.brokers().len() as i32, parts))
    })
    .await?
    .map_err(|error| ProvisionError::Unreachable { error, cause: None })?;

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
            // An empty partition list is a topic still being created.
            Some((_, n)) if *n > 0 && (*n as i32) < settings.partitions => {
                return Err(ProvisionError::UnderPartitioned {
                    topic: topic.clone(),
                    found: *n,
                    configured: settings.partitions,
                });
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
    let opts = AdminOptions::new()
        .operation_timeout(Some(ATTEMPT_TIMEOUT))
        .request_timeout(Some(ATTEMPT_TIMEOUT));
    let results = admin
        .create_topics(&new_topics, &opts)
        .await
        .map_err(|error| ProvisionError::Unreachable { error, cause: None })?;
    for result in results {
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

/// The cluster's metadata, asked for a second at a time up to
/// [`ATTEMPT_TIMEOUT`]: a broker that refuses connections fails the attempt
/// at once (with its cause), while a slow one is given the whole bound.
fn fetch_metadata(
    probe: &BaseProducer<KafkaContext>,
) -> Result<rdkafka::metadata::Metadata, KafkaError> {
    let started = std::time::Instant::now();
    loop {
        match probe.client().fetch_metadata(None, Duration::from_secs(1)) {
            Ok(md) => return Ok(md),
            Err(e) => {
                // Serves librdkafka's log and error events, so the context
                // records the connection problem behind the failure.
                probe.poll(Duration::ZERO);
                if probe.context().errors.last().is_some() || started.elapsed() >= ATTEMPT_TIMEOUT {
                    return Err(e);
                }
            }
        }
    }
}

/// Starts [`provision_until_done`] in the background; the service stops
/// (through `shutdown`) when retrying cannot help. `kafka` says when the
/// topics exist.
pub fn provision_in_background(
    client: ClientConfig,
    topics: Vec<String>,
    settings: TopicSettings,
    kafka: &Dependency,
    shutdown: &Shutdown,
) {
    let (kafka, cancel) = (kafka.clone(), shutdown.token());
    shutdown.spawn_connecting(async move {
        provision_until_done(&client, &topics, &settings, &kafka, &cancel).await
    });
}

/// Provisions `topics` in the background of a starting service: retries while
/// the cluster is unreachable (one log line per attempt, with the cause), and
/// marks `kafka` up once every topic exists. `None` when cancelled first;
/// `Err` with one readable line when retrying cannot help.
pub async fn provision_until_done(
    client: &ClientConfig,
    topics: &[String],
    settings: &TopicSettings,
    kafka: &Dependency,
    cancel: &CancellationToken,
) -> Option<Result<ProvisionReport, String>> {
    let done = kafka
        .connect(
            todo_runtime::dependency::connect_backoff(),
            cancel,
            || async {
                provision_topics(client, topics, settings)
                    .await
                    .map_err(ProvisionError::into_attempt)
            },
        )
        .await;
    if let Some(Ok(report)) = &done {
        tracing::info!(created = ?report.created, existing = report.existing.len(), "topics provisioned");
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_cluster_is_a_transient_failure_naming_the_cause() {
        // Port 1 on loopback: nothing listens there.
        let cfg = crate::KafkaArgs::local("127.0.0.1:1")
            .client_config(&[])
            .unwrap();
        let started = std::time::Instant::now();
        let err = provision_topics(&cfg, &["t".into()], &TopicSettings::default())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
        assert!(
            started.elapsed() < ATTEMPT_TIMEOUT,
            "a refused connection fails the attempt at once"
        );
    }
}
