//! Webhook notifications on `task.completed`: one POST of the event's JSON to
//! each configured URL, deduplicated in Redis (or in Postgres:
//! [`DedupStore`]). A refused notification is not retried here: its event is
//! parked and retried with backoff with its key (`pipeline::parking`).
//!
//! Deduplication per (event, URL) with `SET NX` and an expiry, in two steps:
//! a short claim (`SET key pending NX PX claim_ttl`) before the POST, so two
//! consumers never send at once and a crashed sender's claim runs out; then
//! `done` with the long TTL once the receiver answered 2xx. A redelivered event
//! finds `done` and sends nothing. Redis being down is not the event's fault:
//! the notifier waits for it (the Postgres handlers carry on meanwhile, see
//! `intake::kafka`), and never dead-letters for it.

use std::time::Duration;

use super::dedup::{Claim, DedupStore, StoreDown};
use todo_events::{ContentType, Event};
use tokio_util::sync::CancellationToken;

use crate::pipeline::dead_letter::Failure;
use crate::retry::{sleep_or_cancel, Backoff};
use crate::Cancelled;

/// Error class of a notification the receiver kept refusing.
pub const WEBHOOK_FAILED: &str = "webhook_failed";

/// Posts `task.completed` events to the configured URLs.
pub struct Notifier {
    http: reqwest::Client,
    urls: Vec<String>,
    store: DedupStore,
    /// Whose claims this notifier's are: one id per process.
    owner: String,
    dedup_ttl_s: u64,
    claim_ttl_ms: u64,
    outage: Backoff,
}

/// Notifier settings.
pub struct NotifierSettings {
    /// URLs to POST to.
    pub urls: Vec<String>,
    /// Timeout of one POST.
    pub timeout: Duration,
    /// Where deliveries are remembered.
    pub store: DedupStore,
    /// TTL of the "sent" mark.
    pub dedup_ttl_s: u64,
    /// TTL of a claim.
    pub claim_ttl_ms: u64,
    /// Longest wait between attempts while Redis is down.
    pub outage_cap: Duration,
}

impl Notifier {
    /// Builds the notifier.
    pub fn new(s: NotifierSettings) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(s.timeout).build()?,
            urls: s
                .urls
                .into_iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            store: s.store,
            owner: uuid::Uuid::new_v4().to_string(),
            dedup_ttl_s: s.dedup_ttl_s,
            claim_ttl_ms: s.claim_ttl_ms,
            outage: Backoff::new(Duration::from_millis(100), 2.0, s.outage_cap),
        })
    }

    /// The deduplication key of one notification.
    pub fn dedup_key(event: &Event, url: &str) -> String {
        format!("todo-event-service:webhook:{}:{url}", event.event_id)
    }

    /// Notifies every URL of `event`, one attempt each; a URL notified before
    /// is skipped. `Err` names the URLs that refused: the caller parks the
    /// event and retries it later (see `pipeline::parking`).
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, correlation_id = %event.correlation_id, task_id = event.task_id()))]
    pub async fn notify(
        &self,
        event: &Event,
        cancel: &CancellationToken,
    ) -> Result<Result<(), Failure>, Cancelled> {
        let mut refused = Vec::new();
        for url in &self.urls {
            if let Err(e) = self.notify_url(event, url, cancel).await? {
                tracing::warn!(url = %url, error = %e, "webhook failed");
                refused.push(format!("{url}: {e}"));
            }
        }
        if refused.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err(Failure::new(WEBHOOK_FAILED, refused.join("; "), 1)))
    }

    /// One attempt at one URL, unless it was notified before.
    async fn notify_url(
        &self,
        event: &Event,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Result<(), reqwest::Error>, Cancelled> {
        let key = Self::dedup_key(event, url);
        if !self.claim(&key, cancel).await? {
            tracing::debug!(url, "already notified");
            return Ok(Ok(()));
        }
        let sent = tokio::select! {
            r = self.post(url, event) => r,
            _ = cancel.cancelled() => {
                self.release(&key).await;
                return Err(Cancelled);
            }
        };
        match sent {
            Ok(()) => {
                crate::metrics::webhook_sent();
                self.mark_done(&key, cancel).await?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.release(&key).await;
                Ok(Err(e))
            }
        }
    }

    /// Claims the notification; false when it was sent before. Waits while
    /// the store is down or another consumer holds the claim.
    async fn claim(&self, key: &str, cancel: &CancellationToken) -> Result<bool, Cancelled> {
        let claim_ttl = Duration::from_millis(self.claim_ttl_ms);
        let mut waits = 0;
        loop {
            match self.store.claim(key, claim_ttl, &self.owner).await {
                Ok(Claim::Claimed) => return Ok(true),
                Ok(Claim::Done) => return Ok(false),
                // Claimed by someone else (or by a sender that crashed: the claim
                // expires): wait, then try again.
                Ok(Claim::Busy) => {
                    tracing::debug!("notification claimed by another consumer; waiting")
                }
                Err(e) => self.outage_log(&e, waits),
            }
            waits += 1;
            if !sleep_or_cancel(self.outage.delay(waits), cancel).await {
                return Err(Cancelled);
            }
        }
    }

    async fn mark_done(&self, key: &str, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let ttl = Duration::from_secs(self.dedup_ttl_s);
        let mut waits = 0;
        loop {
            match self.store.mark_done(key, ttl).await {
                Ok(()) => return Ok(()),
                Err(e) => self.outage_log(&e, waits),
            }
            waits += 1;
            if !sleep_or_cancel(self.outage.delay(waits), cancel).await {
                return Err(Cancelled);
            }
        }
    }

    /// Best effort: frees a claim so a retry or a redelivery can send.
    async fn release(&self, key: &str) {
        let r = tokio::time::timeout(Duration::from_secs(2), self.store.release(key)).await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::warn!("could not release a webhook claim; it expires on its own");
        }
    }

    fn outage_log(&self, e: &StoreDown, waits: u32) {
        crate::metrics::outage_retry(e.store);
        tracing::warn!(error = %e, attempt = waits + 1, "the deduplication store is unreachable; notifications wait");
    }

    async fn post(&self, url: &str, event: &Event) -> Result<(), reqwest::Error> {
        let body = event.encode(ContentType::Json).unwrap_or_default();
        self.http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Event-Id", event.event_id.to_string())
            .header("X-Correlation-ID", event.correlation_id.to_string())
            .body(body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}
