//! The alerts of `ops/prometheus/alerts.yml`, evaluated over the samples the
//! way Prometheus would.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::exposition::quantile;
use super::Sample;

/// The window of the rate-based alerts, as in their rules (`[5m]`).
const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The state of one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertState {
    /// The condition does not hold.
    Ok,
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`.
    Firing,
    /// Cannot be evaluated here (why).
    Unknown(String),
}

impl AlertState {
    /// The lowercase name, also the CSS class.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Unknown(_) => "unknown",
        }
    }
}

/// One alert as evaluated now.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The rule's name in `ops/prometheus/alerts.yml`.
    pub name: &'static str,
    /// What it means.
    pub summary: &'static str,
    /// Its state.
    pub state: AlertState,
    /// The value the condition compares, as text.
    pub value: String,
    /// Since when the condition has held.
    pub since: Option<DateTime<Utc>>,
}

/// A rule: its name, meaning, `for`, and its value over the samples (None:
/// cannot be evaluated, with why) compared with its threshold.
pub(super) struct Rule {
    pub(super) name: &'static str,
    pub(super) summary: &'static str,
    pub(super) hold: chrono::TimeDelta,
    pub(super) threshold: f64,
    pub(super) value: fn(&VecDeque<Sample>) -> Result<f64, String>,
    pub(super) unit: &'static str,
}

/// The rules, with the thresholds and `for` of `ops/prometheus/alerts.yml`
/// (a unit test reads that file and checks they agree).
pub(super) const RULES: [Rule; 5] = [
    Rule {
        name: "EventPublishFailureRateHigh",
        summary: "More than 5% of the backend's publish attempts fail",
        hold: chrono::TimeDelta::minutes(2),
        threshold: 0.05,
        value: publish_failure_ratio,
        unit: "",
    },
    Rule {
        name: "ConsumerLagHigh",
        summary: "A partition is over 1000 records behind",
        hold: chrono::TimeDelta::minutes(5),
        threshold: 1000.0,
        value: |s| Ok(newest(s)?.lag.values().copied().fold(0.0, f64::max)),
        unit: " records",
    },
    Rule {
        name: "EventProcessingSlow",
        summary: "Processing time p95 over 1 second",
        hold: chrono::TimeDelta::minutes(5),
        threshold: 1.0,
        value: processing_p95,
        unit: " s",
    },
    Rule {
        name: "ConsumerLagOld",
        summary: "The oldest unprocessed record is over 60 seconds old",
        hold: chrono::TimeDelta::minutes(5),
        threshold: 60.0,
        value: |s| Ok(newest(s)?.lag_seconds),
        unit: " s",
    },
    Rule {
        name: "EventParkedTooLong",
        summary: "A parked event has waited over 10 minutes",
        hold: chrono::TimeDelta::minutes(5),
        threshold: 600.0,
        value: |s| Ok(newest(s)?.parked_age_seconds),
        unit: " s",
    },
];

fn newest(s: &VecDeque<Sample>) -> Result<&Sample, String> {
    s.back().ok_or_else(|| "no sample yet".to_owned())
}

/// The newest sample and the oldest one within the rate window.
fn window(s: &VecDeque<Sample>) -> Result<(&Sample, &Sample), String> {
    let new = newest(s)?;
    let old = s
        .iter()
        .find(|o| new.at - o.at <= RATE_WINDOW)
        .filter(|o| o.at < new.at)
        .ok_or_else(|| "one sample so far".to_owned())?;
    Ok((old, new))
}

fn publish_failure_ratio(s: &VecDeque<Sample>) -> Result<f64, String> {
    let (old, new) = window(s)?;
    let (Some((ok0, f0)), Some((ok1, f1))) = (old.publishing, new.publishing) else {
        return Err("the backend's metrics are not scraped (CONSOLE_BACKEND_METRICS_URL)".into());
    };
    let (ok, failed) = ((ok1 - ok0).max(0.0), (f1 - f0).max(0.0));
    Ok(if ok + failed > 0.0 {
        failed / (ok + failed)
    } else {
        0.0
    })
}

/// `histogram_quantile(0.95, rate(buckets[5m]))`: linear within the bucket.
fn processing_p95(s: &VecDeque<Sample>) -> Result<f64, String> {
    let (old, new) = window(s)?;
    let delta: Vec<(f64, f64)> = new
        .processing_buckets
        .iter()
        .map(|&(le, c)| {
            let before = old
                .processing_buckets
                .iter()
                .find(|b| b.0 == le)
                .map_or(0.0, |b| b.1);
            (le, (c - before).max(0.0))
        })
        .collect();
    Ok(quantile(0.95, &delta))
}
