//! The Kafka intake: one group over the four task topics, one task per
//! assigned partition (order within a partition, parallel across partitions),
//! offsets stored only after processing, committed periodically, on revoke and
//! on shutdown.
//!
//! librdkafka's callbacks (rebalances, commits) are served by a dedicated
//! thread polling the consumer's main queue; each assigned partition's records
//! are split off into their own queue, read by that partition's tokio task. On
//! revoke the callback stops the partition tasks, waits (bounded) for their
//! batch in hand, and commits synchronously before the partitions move.

mod lag;
mod partition;
mod probe;

pub use probe::{KafkaProbe, KafkaState, RunningConsumer};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::Processor;

/// The consumer as librdkafka sees it.
pub type KafkaConsumer = BaseConsumer<Ctx>;

struct Worker {
    cancel: CancellationToken,
    join: JoinHandle<()>,
    progress: Arc<lag::Progress>,
}

/// The consumer's context: rebalance callbacks start and stop partition tasks.
pub struct Ctx {
    consumer: OnceLock<Weak<KafkaConsumer>>,
    workers: Mutex<HashMap<(String, i32), Worker>>,
    runtime: tokio::runtime::Handle,
    processor: Arc<Processor>,
    batch_size: usize,
    drain_timeout: Duration,
    stopping: AtomicBool,
    broker_errors: todo_kafka::context::BrokerErrors,
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.broker_errors.on_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.broker_errors.on_error(&error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &KafkaConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            tracing::info!(partitions = ?revoked, "partitions revoked; draining");
            let workers: Vec<Worker> = {
                let mut map = self.workers.lock().expect("workers lock");
                let taken = revoked.iter().filter_map(|k| map.remove(k)).collect();
                crate::metrics::assigned_partitions(map.len());
                taken
            };
            // NB: this runs on the polling thread, never on the runtime, so it
            // may block: the partitions must not move before their work is
            // stored and committed.
            self.drain(workers);
            if consumer.assignment_lost() {
                tracing::warn!(
                    "assignment lost; not committing (the new owners resume from the last commit)"
                );
            } else {
                commit(consumer, "revoke");
            }
            for (topic, partition) in &revoked {
                crate::metrics::lag(topic, *partition, 0);
                crate::metrics::lag_seconds(topic, *partition, 0.0);
                crate::metrics::parked_keys(topic, *partition, 0, 0.0);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &KafkaConsumer, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.start_partitions(tpl),
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::trace!(?offsets, "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "offset commit failed (stored offsets are committed again later)")
            }
        }
    }
}

fn commit(consumer: &KafkaConsumer, why: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(why, "offsets committed"),
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, why, "offset commit failed"),
    }
}

impl Ctx {
    /// Where the task of an assigned partition stands.
    fn progress(&self, topic: &str, partition: i32) -> Option<Arc<lag::Progress>> {
        self.workers
            .lock()
            .expect("workers lock")
            .get(&(topic.to_owned(), partition))
            .map(|w| w.progress.clone())
    }

    fn start_partitions(&self, tpl: &TopicPartitionList) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut map = self.workers.lock().expect("workers lock");
        for e in tpl.elements() {
            let key = (e.topic().to_owned(), e.partition());
            if map.contains_key(&key) {
                continue;
            }
            let Some(queue) = consumer.split_partition_queue(e.topic(), e.partition()) else {
                tracing::error!(
                    topic = e.topic(),
                    partition = e.partition(),
                    "could not split the partition queue"
                );
                continue;
            };
            let cancel = CancellationToken::new();
            let progress = Arc::new(lag::Progress::default());
            let span = tracing::info_span!("partition", topic = %key.0, partition = key.1);
            let join = self.runtime.spawn(
                partition::run(
                    queue,
                    consumer.clone(),
                    key.0.clone(),
                    key.1,
                    self.processor.clone(),
                    self.batch_size,
                    // Within the revoke's own bound, leaving it time to commit.
                    self.drain_timeout.mul_f64(0.8),
                    progress.clone(),
                    cancel.clone(),
                )
                .instrument(span),
            );
            map.insert(
                key,
                Worker {
                    cancel,
                    join,
                    progress,
                },
            );
        }
        crate::metrics::assigned_partitions(map.len());
    }

    /// Stops `workers` and waits, at most the drain timeout, for them.
    fn drain(&self, workers: Vec<Worker>) {
        if workers.is_empty() {
            return;
        }
        for w in &workers {
            w.cancel.cancel();
        }
        let joins = workers.into_iter().map(|w| w.join);
        let timeout = self.drain_timeout;
        let drained = self.runtime.block_on(async move {
            tokio::time::timeout(timeout, futures::future::join_all(joins))
                .await
                .is_ok()
        });
        if !drained {
            tracing::warn!(
                ?timeout,
                "partition tasks did not finish in time; their unstored work is redelivered"
            );
        }
    }

    async fn drain_all(&self) {
        let workers: Vec<Worker> = self
            .workers
            .lock()
            .expect("workers lock")
            .drain()
            .map(|(_, w)| w)
            .collect();
        crate::metrics::assigned_partitions(0);
        for w in &workers {
            w.cancel.cancel();
        }
        let joins = workers.into_iter().map(|w| w.join);
        if tokio::time::timeout(self.drain_timeout, futures::future::join_all(joins))
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.drain_timeout, "partition tasks did not finish in time; their unstored work is redelivered");
        }
    }
}

/// Settings of [`EventConsumer::start`].
pub struct ConsumerSettings {
    /// Client configuration with the typed consumer settings.
    pub client: ClientConfig,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// The consumer group (for logs; the client configuration sets it).
    pub group_id: String,
    /// Most records per batch.
    pub batch_size: usize,
    /// Bound of the drain on revoke and shutdown.
    pub drain_timeout: Duration,
    /// Lag sampling interval.
    pub lag_interval: Duration,
}

/// A running consumer.
pub struct EventConsumer {
    consumer: Arc<KafkaConsumer>,
    poller: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    lag_interval: Duration,
}

impl EventConsumer {
    /// Creates the consumer, subscribes and starts the polling thread. Must be
    /// called within a tokio runtime (partition tasks are spawned on it).
    pub fn start(settings: ConsumerSettings, processor: Arc<Processor>) -> anyhow::Result<Self> {
        let ctx = Ctx {
            consumer: OnceLock::new(),
            workers: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
            processor,
            batch_size: settings.batch_size.max(1),
            drain_timeout: settings.drain_timeout,
            stopping: AtomicBool::new(false),
            broker_errors: Default::default(),
        };
        let consumer: Arc<KafkaConsumer> = Arc::new(settings.client.create_with_context(ctx)?);
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;

        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let consumer = consumer.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-consumer".into())
                .spawn(move || poll_loop(consumer, stop))?
        };
        Ok(Self {
            consumer,
            poller,
            stop,
            lag_interval: settings.lag_interval,
        })
    }

    /// Runs until `cancel`, then: stops the partition tasks and waits (bounded)
    /// for their batch in hand, commits the stored offsets, leaves the group.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let sampler = tokio::spawn(lag::sample(
            Arc::downgrade(&self.consumer),
            self.lag_interval,
            cancel.child_token(),
        ));
        cancel.cancelled().await;
        tracing::info!("consumer stopping: draining partitions");
        let ctx = self.consumer.context();
        ctx.stopping.store(true, Ordering::SeqCst);
        ctx.drain_all().await;
        let _ = sampler.await;
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || commit(&consumer, "shutdown")).await?;
        // The polling thread holds the last reference: dropping it there closes
        // the consumer, which leaves the group.
        drop(self.consumer);
        self.stop.store(true, Ordering::SeqCst);
        let poller = self.poller;
        tokio::task::spawn_blocking(move || poller.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
        tracing::info!("consumer stopped");
        Ok(())
    }
}

fn poll_loop(consumer: Arc<KafkaConsumer>, stop: Arc<AtomicBool>) {
    let mut last_error_log: Option<std::time::Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            // Every assigned partition's records go to its own queue; a record
            // here was fetched before its queue was split. Its partition task
            // may already be past it, so the partition is rewound to it: it is
            // read again through the partition queue (what was done since is
            // recognised as already processed).
            Some(Ok(m)) => {
                use rdkafka::Message;
                let (topic, partition, offset) = (m.topic().to_owned(), m.partition(), m.offset());
                drop(m);
                if consumer.context().stopping.load(Ordering::SeqCst) {
                    continue;
                }
                tracing::warn!(
                    topic,
                    partition,
                    offset,
                    "record on the main queue; rewinding its partition to it"
                );
                if let Err(e) = consumer.seek(
                    &topic,
                    partition,
                    rdkafka::Offset::Offset(offset),
                    Duration::from_secs(10),
                ) {
                    tracing::error!(error = %e, topic, partition, offset, "could not rewind the partition");
                }
            }
            // librdkafka logs these too (and retries on its own); one line per
            // 10 s here is enough.
            Some(Err(e))
                if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) =>
            {
                last_error_log = Some(std::time::Instant::now());
                tracing::warn!(error = %e, "consumer error");
            }
            Some(Err(_)) => {}
            None => {}
        }
    }
    tracing::debug!("closing the consumer");
    drop(consumer);
}
