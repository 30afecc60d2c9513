//! The console's health view: samples of this instance's metrics (and the
//! backend's, when its address is known) every few seconds, kept for the last
//! minutes, from which the page draws lag and throughput and evaluates the
//! alerts of `ops/prometheus/alerts.yml` the way Prometheus would (a
//! condition becomes firing once it has held for the rule's `for`).
//!
//! This is one instance's view: with several instances, each shows the
//! partitions it holds. Prometheus remains the source of truth for paging.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;

mod alerts;
mod exposition;

use alerts::RULES;
pub use alerts::{Alert, AlertState};
use exposition::parse_exposition;

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How many samples are kept (15 minutes).
const KEPT: usize = 180;
/// What one sample keeps.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Events processed so far (all types).
    pub consumed: f64,
    /// Records behind, per `topic/partition`.
    pub lag: BTreeMap<String, f64>,
    /// Age of the oldest unprocessed record, the highest over partitions.
    pub lag_seconds: f64,
    /// Age of the oldest parked event, the highest over partitions.
    pub parked_age_seconds: f64,
    /// Processing-time histogram: cumulative count per upper bound.
    pub processing_buckets: Vec<(f64, f64)>,
    /// The backend's published and failed publish attempts, when scraped.
    pub publishing: Option<(f64, f64)>,
}

impl Sample {
    /// Reads a sample from this service's exposition and, if given, the
    /// backend's.
    pub fn from_expositions(at: DateTime<Utc>, own: &str, backend: Option<&str>) -> Self {
        let mut s = Sample {
            at,
            ..Sample::default()
        };
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for l in parse_exposition(own) {
            match l.name.as_str() {
                n if n == m::EVENTS_CONSUMED_TOTAL => s.consumed += l.value,
                n if n == m::CONSUMER_LAG => {
                    let key = format!(
                        "{}/{}",
                        l.label("topic").unwrap_or("?"),
                        l.label("partition").unwrap_or("?")
                    );
                    s.lag.insert(key, l.value);
                }
                n if n == m::CONSUMER_LAG_SECONDS => s.lag_seconds = s.lag_seconds.max(l.value),
                n if n == m::OLDEST_PARKED_AGE_SECONDS => {
                    s.parked_age_seconds = s.parked_age_seconds.max(l.value)
                }
                n if n.strip_suffix("_bucket") == Some(m::EVENT_PROCESSING_DURATION_SECONDS) => {
                    let le = match l.label("le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(v) => v.parse().unwrap_or(f64::NAN),
                        None => f64::NAN,
                    };
                    if !le.is_nan() {
                        buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += l.value;
                    }
                }
                _ => {}
            }
        }
        let mut b: Vec<(f64, f64)> = buckets.into_values().collect();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        s.processing_buckets = b;
        s.publishing = backend.map(|text| {
            let (mut ok, mut failed) = (0.0, 0.0);
            for l in parse_exposition(text) {
                match l.name.as_str() {
                    "events_published_total" => ok += l.value,
                    "events_published_failures_total" => failed += l.value,
                    _ => {}
                }
            }
            (ok, failed)
        });
        s
    }

    /// Records behind, summed over partitions.
    pub fn total_lag(&self) -> f64 {
        self.lag.values().sum()
    }
}

/// The samples and the alerts' running state.
#[derive(Default)]
struct History {
    samples: VecDeque<Sample>,
    since: [Option<DateTime<Utc>>; RULES.len()],
}

/// The health sampler, shared by the console's handlers.
#[derive(Clone)]
pub struct Health {
    history: Arc<Mutex<History>>,
}

impl Health {
    /// Starts sampling every [`SAMPLE_EVERY`] until `cancel`: this service's
    /// metrics through `handle`, and the backend's at `backend_metrics` when
    /// given (unreachable: its alert shows as unknown, and nothing else).
    pub fn start(
        handle: PrometheusHandle,
        backend_metrics: Option<String>,
        cancel: CancellationToken,
    ) -> Self {
        let health = Health {
            history: Arc::default(),
        };
        let h = health.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("a client with a timeout builds");
            loop {
                let backend = match &backend_metrics {
                    Some(url) => match client
                        .get(url)
                        .send()
                        .await
                        .and_then(|r| r.error_for_status())
                    {
                        Ok(r) => r.text().await.ok(),
                        Err(e) => {
                            tracing::debug!(url, error = %e, "console: could not scrape the backend's metrics");
                            None
                        }
                    },
                    None => None,
                };
                h.record(Sample::from_expositions(
                    Utc::now(),
                    &handle.render(),
                    backend.as_deref(),
                ));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                }
            }
        });
        health
    }

    /// Adds a sample and advances the alerts.
    pub fn record(&self, sample: Sample) {
        let mut h = self.history.lock().expect("not poisoned");
        let at = sample.at;
        h.samples.push_back(sample);
        while h.samples.len() > KEPT {
            h.samples.pop_front();
        }
        for (i, rule) in RULES.iter().enumerate() {
            let holds = (rule.value)(&h.samples).is_ok_and(|v| v > rule.threshold);
            h.since[i] = match (holds, h.since[i]) {
                (true, Some(t)) => Some(t),
                (true, None) => Some(at),
                (false, _) => None,
            };
        }
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let h = self.history.lock().expect("not poisoned");
        h.samples.iter().cloned().collect()
    }

    /// Every alert's state as of the newest sample.
    pub fn alerts(&self) -> Vec<Alert> {
        let h = self.history.lock().expect("not poisoned");
        let now = h.samples.back().map_or_else(Utc::now, |s| s.at);
        RULES
            .iter()
            .zip(h.since)
            .map(|(rule, since)| {
                let (state, value) = match (rule.value)(&h.samples) {
                    Err(why) => (AlertState::Unknown(why), "n/a".to_owned()),
                    Ok(v) => {
                        let state = match since {
                            None => AlertState::Ok,
                            Some(t) if now - t >= rule.hold => AlertState::Firing,
                            Some(_) => AlertState::Pending,
                        };
                        let shown = if rule.unit.is_empty() {
                            format!("{:.1} %", v * 100.0)
                        } else {
                            format!("{v:.2}{}", rule.unit)
                        };
                        (state, shown)
                    }
                };
                Alert {
                    name: rule.name,
                    summary: rule.summary,
                    state,
                    value,
                    since,
                }
            })
            .collect()
    }
}

/// A chart's line: `(seconds before the newest sample, value)`.
pub type Points = Vec<(f64, f64)>;

/// Events per second between consecutive samples, and the summed lag.
pub fn series(samples: &[Sample]) -> (Points, Points) {
    let Some(last) = samples.last() else {
        return (Vec::new(), Vec::new());
    };
    let ago = |s: &Sample| (s.at - last.at).num_milliseconds() as f64 / 1000.0;
    let rate = samples
        .windows(2)
        .filter_map(|w| {
            let dt = (w[1].at - w[0].at).num_milliseconds() as f64 / 1000.0;
            (dt > 0.0).then(|| (ago(&w[1]), ((w[1].consumed - w[0].consumed) / dt).max(0.0)))
        })
        .collect();
    let lag = samples.iter().map(|s| (ago(s), s.total_lag())).collect();
    (rate, lag)
}

#[cfg(test)]
mod tests {
    use super::exposition::{quantile, Line};
    use super::*;

    #[test]
    fn an_exposition_parses_with_labels_and_escapes() {
        let lines = parse_exposition(
            "# HELP x y\nconsumer_lag{topic=\"a\\\"b\",partition=\"3\"} 12\nevents_consumed_total 5\nbad line here x\n",
        );
        assert_eq!(
            lines,
            vec![
                Line {
                    name: "consumer_lag".into(),
                    labels: vec![
                        ("topic".into(), "a\"b".into()),
                        ("partition".into(), "3".into())
                    ],
                    value: 12.0
                },
                Line {
                    name: "events_consumed_total".into(),
                    labels: vec![],
                    value: 5.0
                },
            ]
        );
    }

    #[test]
    fn the_quantile_interpolates_within_its_bucket_like_prometheus() {
        // 100 observations: 50 up to 0.1 s, 40 more up to 1 s, 10 more up to 5 s.
        let b = [
            (0.1, 50.0),
            (1.0, 90.0),
            (5.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((quantile(0.5, &b) - 0.1).abs() < 1e-9);
        // Rank 95 is halfway into the (1, 5] bucket.
        assert!((quantile(0.95, &b) - 3.0).abs() < 1e-9);
        assert_eq!(quantile(0.95, &[]), 0.0);
    }

    fn sample(at_s: i64, lag: f64) -> Sample {
        let mut s = Sample {
            at: DateTime::from_timestamp(1_700_000_000 + at_s, 0).unwrap(),
            ..Sample::default()
        };
        s.lag.insert("todo.tasks.created/0".into(), lag);
        s
    }

    #[test]
    fn an_alert_fires_only_once_its_condition_has_held_for_the_rules_for() {
        let health = Health {
            history: Arc::default(),
        };
        let state = |h: &Health| {
            h.alerts()
                .into_iter()
                .find(|a| a.name == "ConsumerLagHigh")
                .unwrap()
                .state
        };
        health.record(sample(0, 5.0));
        assert_eq!(state(&health), AlertState::Ok);
        health.record(sample(10, 2000.0));
        assert_eq!(state(&health), AlertState::Pending);
        health.record(sample(10 + 299, 2000.0));
        assert_eq!(state(&health), AlertState::Pending);
        health.record(sample(10 + 300, 2000.0));
        assert_eq!(state(&health), AlertState::Firing);
        health.record(sample(400, 10.0));
        assert_eq!(state(&health), AlertState::Ok);
        // Without the backend's metrics, its alert says why it is unknown.
        let publish = health.alerts().into_iter().next().unwrap();
        assert!(
            matches!(publish.state, AlertState::Unknown(ref why) if why.contains("CONSOLE_BACKEND_METRICS_URL"))
        );
    }

    #[test]
    fn the_rules_match_the_prometheus_rules_file() {
        let file = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../ops/prometheus/alerts.yml"
        ))
        .unwrap();
        for rule in &RULES {
            let at = file
                .find(&format!("alert: {}\n", rule.name))
                .unwrap_or_else(|| panic!("{} is not in alerts.yml", rule.name));
            let body = &file[at..];
            let body = &body[..body[1..].find("- alert:").map_or(body.len(), |e| e + 1)];
            let threshold = format!("> {}", rule.threshold);
            assert!(body.contains(&threshold), "{}: no `{threshold}`", rule.name);
            let hold = format!("for: {}m", rule.hold.num_minutes());
            assert!(body.contains(&hold), "{}: no `{hold}`", rule.name);
        }
    }
}
