//! Per-key parking: an event whose effect fails for a reason that is not an
//! outage (a handler error, a webhook receiver refusing it) is parked, and so
//! are the later events of its key on the same partition while it is parked.
//! The partition goes on with every other key.
//!
//! * Parked records live in PostgreSQL (`store::parking`), written before the
//!   partition's offset is stored past them, so a crash or a rebalance loses
//!   nothing; a redelivered record parks once (its offset is the primary key).
//! * One retrier per partition tries the first record of each parked key with
//!   the retry policy's backoff and jitter. When it succeeds, the key's next
//!   record is tried at once: a key's records are released in offset order.
//! * After the attempt budget the first record goes to the dead-letter topic
//!   with its reason, and the key's later records are then tried in order as
//!   usual. The projection stays consistent: it keeps the newest task version
//!   whatever the order, so the later events do not depend on the dead one,
//!   and a replay of the dead letter changes only what it is newer for.
//! * The set of parked keys is held here under one lock. A batch holds it from
//!   deciding what to park until its transaction commits, and the retrier
//!   holds it from removing a key's last record until it forgets the key, so
//!   no record of a key is applied while an earlier one is parked.
//! * An outage (PostgreSQL or Redis down) parks nothing: it pauses, as before.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Mutex, MutexGuard, Notify};
use tokio_util::sync::CancellationToken;

use super::dead_letter::Failure;
use crate::pipeline::notifier::{Notifier, WEBHOOK_FAILED};
use crate::pipeline::Processor;
use crate::record::Record;
use crate::retry::{sleep_or_cancel, Backoff};
use crate::store::parking::{self, key_of, ToPark};
use crate::Cancelled;

/// Error class of a record parked only because an earlier one of its key is.
pub const BEHIND: &str = "behind";

/// The parked keys of one partition.
pub struct ParkingLot {
    pool: PgPool,
    topic: String,
    partition: i32,
    keys: Mutex<Keys>,
    wake: Notify,
    outage: Backoff,
}

/// The parked keys, as seen under the lot's lock.
#[derive(Default)]
pub struct Keys(HashMap<Vec<u8>, KeyState>);

#[derive(Clone, Copy, Debug)]
struct KeyState {
    /// When its first record is to be tried.
    due: DateTime<Utc>,
    /// When its oldest record was parked.
    since: DateTime<Utc>,
}

impl KeyState {
    fn new(due: DateTime<Utc>, since: DateTime<Utc>) -> Self {
        Self { due, since }
    }
}

impl Keys {
    /// Whether `key` has parked records.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.0.contains_key(key)
    }

    /// Notes that `key` now has parked records (after they are committed):
    /// due at `due` if it had none; a key already parked keeps its first
    /// record's due time.
    pub fn add(&mut self, key: &[u8], due: DateTime<Utc>) {
        self.0
            .entry(key.to_vec())
            .or_insert(KeyState::new(due, Utc::now()));
    }
}

impl ParkingLot {
    /// The lot of `topic`/`partition`, with the keys parked there before
    /// (by this process or an earlier owner). Waits while the database is down.
    pub async fn load(
        pool: PgPool,
        topic: &str,
        partition: i32,
        outage: Backoff,
        cancel: &CancellationToken,
    ) -> Result<Arc<Self>, Cancelled> {
        let lot = Self {
            pool,
            topic: topic.to_owned(),
            partition,
            keys: Mutex::default(),
            wake: Notify::new(),
            outage,
        };
        let heads = lot
            .until_done("loading the parked keys", cancel, || {
                parking::heads(&lot.pool, &lot.topic, lot.partition)
            })
            .await?;
        if !heads.is_empty() {
            tracing::info!(
                keys = heads.len(),
                "parked keys found; retrying them in the background"
            );
        }
        {
            let mut keys = lot.keys.lock().await;
            for h in heads {
                keys.0
                    .insert(h.key, KeyState::new(h.next_attempt_at, h.parked_at));
            }
        }
        Ok(Arc::new(lot))
    }

    /// Adds the keys parked in PostgreSQL that this lot does not know (parked
    /// by another instance that had the partition before).
    pub async fn refresh(&self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let heads = self
            .until_done("reading the parked keys", cancel, || {
                parking::heads(&self.pool, &self.topic, self.partition)
            })
            .await?;
        let mut keys = self.keys.lock().await;
        for h in heads {
            keys.0
                .entry(h.key)
                .or_insert(KeyState::new(h.next_attempt_at, h.parked_at));
        }
        Ok(())
    }

    /// The parked keys; a batch holds them until what it parks is committed.
    pub async fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().await
    }

    /// Wakes the retrier (a key was parked).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Parks `record`, whose webhooks failed after its database effects were
    /// committed (`failure`), or which waits behind such a record (`None`).
    pub async fn park_after_effects(
        &self,
        record: &Record,
        event_id: uuid::Uuid,
        failure: Option<&Failure>,
        due: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let mut keys = self.keys.lock().await;
        let row = ToPark {
            record,
            event_id,
            failure: failure.map(|f| (f.class.as_str(), f.message.as_str(), f.attempts)),
            next_attempt_at: due,
        };
        self.until_done("parking a record", cancel, || async {
            let mut conn = self.pool.acquire().await?;
            parking::park(&mut conn, std::slice::from_ref(&row)).await
        })
        .await?;
        keys.add(key_of(record), due);
        drop(keys);
        crate::metrics::parked(failure.map_or(BEHIND, |f| f.class.as_str()));
        self.wake();
        Ok(())
    }

    /// Publishes how many keys are parked and how long the oldest has waited.
    async fn publish_gauges(&self) {
        let keys = self.keys.lock().await;
        let oldest = keys.0.values().map(|s| s.since).min();
        let age = oldest.map_or(0.0, |t| (Utc::now() - t).as_seconds_f64().max(0.0));
        crate::metrics::parked_keys(&self.topic, self.partition, keys.0.len(), age);
    }

    /// The key due first, with its due time.
    async fn next_due(&self) -> Option<(Vec<u8>, DateTime<Utc>)> {
        let keys = self.keys.lock().await;
        keys.0
            .iter()
            .min_by_key(|(_, s)| s.due)
            .map(|(k, s)| (k.clone(), s.due))
    }

    async fn set_due(&self, key: &[u8], due: DateTime<Utc>) {
        if let Some(s) = self.keys.lock().await.0.get_mut(key) {
            s.due = due;
        }
    }

    /// Removes the record at `offset` of `key`; forgets the key when it was
    /// its last, or makes its next record due now.
    async fn remove(
        &self,
        key: &[u8],
        offset: i64,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let mut keys = self.keys.lock().await;
        let next = self
            .until_done("releasing a parked record", cancel, || async {
                let mut tx = self.pool.begin().await?;
                parking::remove(&mut tx, &self.topic, self.partition, offset).await?;
                let next = parking::head(&mut tx, &self.topic, self.partition, key).await?;
                tx.commit().await?;
                Ok(next)
            })
            .await?;
        match next {
            None => {
                keys.0.remove(key);
            }
            Some(p) => {
                keys.0
                    .insert(key.to_vec(), KeyState::new(Utc::now(), p.parked_at));
            }
        }
        Ok(())
    }

    /// Runs `f` until it succeeds, waiting with the outage backoff between
    /// failures (the database is down, or refuses for a while).
    async fn until_done<T, Fut>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        mut f: impl FnMut() -> Fut,
    ) -> Result<T, Cancelled>
    where
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    attempt += 1;
                    crate::metrics::outage_retry("postgres");
                    tracing::warn!(error = %e, attempt, "{what} failed; retrying");
                    if !sleep_or_cancel(self.outage.delay(attempt), cancel).await {
                        return Err(Cancelled);
                    }
                }
            }
        }
    }
}

/// Retries the lot's keys until `cancel`: the first record of the key due
/// first, one attempt at a time.
pub async fn run_retrier(
    lot: Arc<ParkingLot>,
    processor: Arc<Processor>,
    cancel: CancellationToken,
) {
    loop {
        lot.publish_gauges().await;
        if cancel.is_cancelled() {
            break;
        }
        let now = Utc::now();
        let wait = match lot.next_due().await {
            Some((key, due)) if due <= now => {
                if attempt(&lot, &processor, &key, &cancel).await.is_err() {
                    break;
                }
                continue;
            }
            Some((_, due)) => (due - now).to_std().unwrap_or_default(),
            None => Duration::from_secs(1),
        };
        // At most a second, so the age gauge keeps moving.
        tokio::select! {
            _ = lot.wake.notified() => {}
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait.min(Duration::from_secs(1))) => {}
        }
    }
    crate::metrics::parked_keys(&lot.topic, lot.partition, 0, 0.0);
}

/// One attempt at the first parked record of `key`.
async fn attempt(
    lot: &ParkingLot,
    processor: &Processor,
    key: &[u8],
    cancel: &CancellationToken,
) -> Result<(), Cancelled> {
    let head = lot
        .until_done("reading a parked record", cancel, || async {
            let mut conn = lot.pool.acquire().await?;
            parking::head(&mut conn, &lot.topic, lot.partition, key).await
        })
        .await?;
    let Some(head) = head else {
        // Nothing left (released by an earlier owner before a rebalance).
        let mut keys = lot.keys.lock().await;
        keys.0.remove(key);
        return Ok(());
    };
    let record = &head.record;
    let failure = match processor.retry_parked(record, cancel).await? {
        Ok(()) => {
            tracing::info!(
                offset = record.offset,
                attempts = head.attempts + 1,
                "parked record applied; releasing its key's next"
            );
            crate::metrics::unparked("applied");
            return lot.remove(key, record.offset, cancel).await;
        }
        Err(f) => f,
    };
    let (retry, budget) = processor.retry_policy();
    let attempts = head.attempts + 1;
    if attempts >= budget {
        let dead = Failure {
            attempts,
            first_failed_at_ms: head.first_failed_at.map(|t| t.timestamp_millis()),
            ..failure
        };
        processor.dead_letter(record, &dead, cancel).await?;
        crate::metrics::unparked("dead_lettered");
        return lot.remove(key, record.offset, cancel).await;
    }
    crate::metrics::handler_retry(if failure.class == WEBHOOK_FAILED {
        "webhook"
    } else {
        "postgres"
    });
    tracing::warn!(offset = record.offset, attempt = attempts, error_class = %failure.class, error = %failure.message,
        "parked record failed again; retrying later");
    let due = retry_at(&retry, attempts);
    lot.until_done("recording a failed attempt", cancel, || {
        parking::failed(
            &lot.pool,
            record,
            attempts,
            &failure.class,
            &failure.message,
            due,
        )
    })
    .await?;
    lot.set_due(key, due).await;
    Ok(())
}

/// The due time of a record that has just failed its first attempt.
pub fn first_retry_at(retry: &Backoff) -> DateTime<Utc> {
    retry_at(retry, 1)
}

/// The due time of a record that has just failed its `attempts`th attempt.
fn retry_at(retry: &Backoff, attempts: u32) -> DateTime<Utc> {
    Utc::now()
        + chrono::TimeDelta::from_std(retry.delay(attempts)).unwrap_or(chrono::TimeDelta::zero())
}

/// Sends the webhooks of `events` (applied, in offset order). An event whose
/// webhooks fail is parked with its failure, and the later events of its key
/// in `events` are parked behind it unsent. Returns when every event is
/// notified or parked.
pub async fn notify_or_park(
    notifier: &Notifier,
    lot: &ParkingLot,
    retry: &Backoff,
    events: &[(Record, todo_events::Event)],
    cancel: &CancellationToken,
) -> Result<(), Cancelled> {
    let mut failed_keys: HashSet<&[u8]> = HashSet::new();
    for (record, event) in events {
        let key = key_of(record);
        let failure = if failed_keys.contains(key) {
            None
        } else {
            match notifier.notify(event, cancel).await? {
                Ok(()) => continue,
                Err(f) => Some(f),
            }
        };
        let due = match failure {
            Some(_) => first_retry_at(retry),
            None => Utc::now(),
        };
        failed_keys.insert(key);
        lot.park_after_effects(record, event.event_id, failure.as_ref(), due, cancel)
            .await?;
    }
    Ok(())
}
