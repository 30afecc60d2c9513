//! Bulk publish of raw records: `POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}?metadata.rawPayload=true`.
//!
//! Each entry carries the record's bytes (base64, `application/octet-stream`),
//! its key as `partitionKey`, and its headers as entry metadata, which the
//! Kafka component writes as record headers. The sidecar answers 204 when
//! every entry was acknowledged; otherwise (500) it lists the failed entries.
//!
//! NB: Dapr does not keep the order of the entries of one request. A caller
//! that needs order per key puts at most one entry per key in a request, and
//! sends the next only once it is acknowledged ([`waves`]).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::Sidecar;

/// One record to publish.
pub struct Record<'a> {
    /// Unique within the request (the outbox id, say).
    pub entry_id: String,
    /// The record key (also the partition key).
    pub key: &'a str,
    /// The record value, as it goes on the topic.
    pub value: &'a [u8],
    /// Record headers.
    pub headers: &'a [(String, String)],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    entry_id: &'a str,
    event: String,
    content_type: &'static str,
    metadata: HashMap<&'a str, &'a str>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FailedAnswer {
    #[serde(default)]
    failed_entries: Vec<FailedEntry>,
    #[serde(default)]
    error_code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedEntry {
    entry_id: String,
    /// NB: a Go `error` serialized as is: often `{}`, sometimes a string.
    #[serde(default)]
    error: serde_json::Value,
}

/// Publishes through one sidecar.
#[derive(Clone)]
pub struct Publisher {
    http: reqwest::Client,
    sidecar: Sidecar,
}

impl Publisher {
    /// A publisher whose requests give up after `timeout`.
    pub fn new(sidecar: Sidecar, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            sidecar,
        })
    }

    /// The sidecar.
    pub fn sidecar(&self) -> &Sidecar {
        &self.sidecar
    }

    /// Whether the sidecar can publish now.
    pub async fn ready(&self) -> Result<(), String> {
        self.sidecar.ready(&self.http).await
    }

    /// Publishes `records` to `topic` in one request: one result per record,
    /// in order, `Ok` when the broker acknowledged it.
    pub async fn publish(&self, topic: &str, records: &[Record<'_>]) -> Vec<Result<(), String>> {
        if records.is_empty() {
            return Vec::new();
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let body: Vec<Entry<'_>> = records
            .iter()
            .map(|r| {
                let mut metadata: HashMap<&str, &str> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                metadata.insert("partitionKey", r.key);
                Entry {
                    entry_id: &r.entry_id,
                    event: b64.encode(r.value),
                    content_type: "application/octet-stream",
                    metadata,
                }
            })
            .collect();
        let url = format!(
            "{}/v1.0-alpha1/publish/bulk/{}/{topic}?metadata.rawPayload=true",
            self.sidecar.base_url, self.sidecar.pubsub
        );
        let answer = match self.http.post(&url).json(&body).send().await {
            Ok(a) => a,
            Err(e) => {
                let why = format!("Dapr sidecar unreachable at {}: {e}", self.sidecar.base_url);
                return records.iter().map(|_| Err(why.clone())).collect();
            }
        };
        let status = answer.status();
        if status.is_success() {
            return records.iter().map(|_| Ok(())).collect();
        }
        let text = answer.text().await.unwrap_or_default();
        per_entry(records, status.as_u16(), &text)
    }
}

/// The results of a refused request: the entries it lists failed, the
/// others acknowledged; every entry failed when it lists none.
fn per_entry(records: &[Record<'_>], status: u16, body: &str) -> Vec<Result<(), String>> {
    let answer: FailedAnswer = serde_json::from_str(body).unwrap_or_default();
    if answer.failed_entries.is_empty() {
        let why = format!("Dapr bulk publish answered {status}: {}", body.trim());
        return records.iter().map(|_| Err(why.clone())).collect();
    }
    let failed: HashMap<&str, &str> = answer
        .failed_entries
        .iter()
        .map(|f| (f.entry_id.as_str(), f.error.as_str().unwrap_or("failed")))
        .collect();
    records
        .iter()
        .map(|r| match failed.get(r.entry_id.as_str()) {
            None => Ok(()),
            Some(e) => Err(format!("Dapr bulk publish: {} {e}", answer.error_code)),
        })
        .collect()
}

/// Splits `keys` (in order) into waves: the indexes of the first record of
/// each key, then of the second, and so on. Sending the waves one after the
/// other, each once the one before is acknowledged, keeps the order per key.
pub fn waves<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<Vec<usize>> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        let n = seen.entry(k).or_insert(0);
        if waves.len() <= *n {
            waves.push(Vec::new());
        }
        waves[*n].push(i);
        *n += 1;
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record<'static> {
        Record {
            entry_id: id.into(),
            key: "1",
            value: b"v",
            headers: &[],
        }
    }

    #[test]
    fn waves_hold_one_record_per_key_in_order() {
        let w = waves(["a", "b", "a", "c", "a", "b"]);
        assert_eq!(w, vec![vec![0, 1, 3], vec![2, 5], vec![4]]);
        assert!(waves(Vec::<&str>::new()).is_empty());
    }

    #[test]
    fn a_refusal_fails_the_entries_it_lists_or_all_of_them() {
        let records = [rec("1"), rec("2"), rec("3")];
        let listed = per_entry(
            &records,
            500,
            r#"{"failedEntries":[{"entryId":"2","error":"boom"}],"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE"}"#,
        );
        assert!(listed[0].is_ok() && listed[2].is_ok());
        assert!(listed[1].as_ref().unwrap_err().contains("boom"));

        let all = per_entry(&records, 403, "topic not allowed");
        assert!(all.iter().all(|r| r.as_ref().unwrap_err().contains("403")));
    }
}
