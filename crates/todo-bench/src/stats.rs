//! Percentile math: HDR histograms of microseconds, summaries in milliseconds,
//! and quantiles of Prometheus histograms (read off the services' /metrics).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram keeps exactly: 10 minutes, in microseconds.
pub const MAX_MICROS: u64 = 600_000_000;

/// A histogram of microseconds, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static bounds are valid")
}

/// Records a duration in microseconds; values below 1 µs count as 1 µs,
/// values above the bound as the bound.
pub fn record_micros(h: &mut Histogram<u64>, micros: i64) {
    h.saturating_record(micros.clamp(1, MAX_MICROS as i64) as u64);
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl LatencySummary {
    /// The summary of a histogram of microseconds (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round3(us as f64 / 1_000.0);
        Self {
            count: h.len(),
            mean_ms: round3(h.mean() / 1_000.0),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Rounds to 3 decimals (report figures, not precision).
pub fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// One sample line of the Prometheus text format: name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct PromSample {
    /// Metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub name: String,
    /// Label pairs in written order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl PromSample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text exposition format (comments skipped; label
/// values may hold escaped quotes; timestamps ignored).
pub fn parse_prometheus(text: &str) -> Vec<PromSample> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let Some(close) = line.rfind('}') else {
                    continue;
                };
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close]),
                    &line[close + 1..],
                )
            }
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, Vec::new(), r),
                None => continue,
            },
        };
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.push(PromSample {
            name: name.trim().to_owned(),
            labels,
            value,
        });
    }
    out
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return labels;
        }
        if chars.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim().to_owned(), value));
    }
}

/// Sum of every sample named `name` (all label sets); `None` when absent.
pub fn sum_of(samples: &[PromSample], name: &str) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for s in samples.iter().filter(|s| s.name == name) {
        found = true;
        total += s.value;
    }
    found.then_some(total)
}

/// Largest sample named `name`; `None` when absent.
pub fn max_of(samples: &[PromSample], name: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .reduce(f64::max)
}

/// Cumulative buckets `(le, count)` of histogram `name`, summed over label
/// sets, sorted by `le`.
pub fn buckets_of(samples: &[PromSample], name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.name == bucket) {
        let Some(le) = s.label("le").and_then(|v| {
            if v == "+Inf" {
                Some(f64::INFINITY)
            } else {
                v.parse().ok()
            }
        }) else {
            continue;
        };
        match by_le.iter_mut().find(|(l, _)| *l == le) {
            Some((_, c)) => *c += s.value,
            None => by_le.push((le, s.value)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_le
}

/// `after - before`, bucket by bucket (counts observed between two scrapes).
/// A counter reset (the process restarted) keeps `after` as it is.
pub fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let reset = after
        .iter()
        .any(|(le, c)| before.iter().any(|(l, b)| l == le && b > c));
    after
        .iter()
        .map(|(le, c)| {
            let b = if reset {
                0.0
            } else {
                before
                    .iter()
                    .find(|(l, _)| l == le)
                    .map(|x| x.1)
                    .unwrap_or(0.0)
            };
            (*le, c - b)
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside the
/// bucket as Prometheus' `histogram_quantile` does; `None` without
/// observations. A quantile in the `+Inf` bucket returns the highest finite bound.
pub fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(prev_le + (le - prev_le) * (rank - prev_count) / in_bucket);
        }
        prev_le = le;
        prev_count = count;
    }
    Some(prev_le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reports_milliseconds_from_microseconds() {
        let mut h = histogram();
        for us in 1..=1_000 {
            record_micros(&mut h, us * 100); // 0.1 ms .. 100 ms
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1_000);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        assert!(s.p50_ms <= s.p95_ms && s.p95_ms <= s.p99_ms && s.p99_ms <= s.max_ms);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros_and_odd_values_are_clamped() {
        let mut h = histogram();
        assert_eq!(LatencySummary::of(&h), LatencySummary::default());
        record_micros(&mut h, -5);
        record_micros(&mut h, i64::MAX);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_MICROS);
    }

    const METRICS: &str = r#"# HELP consumer_lag lag
# TYPE consumer_lag gauge
consumer_lag{topic="todo.tasks.created",partition="0"} 12
consumer_lag{topic="todo.tasks.created",partition="1"} 30
events_published_total{event_type="task.created"} 100
events_published_total{event_type="task.updated"} 50
odd{label="with \"quote\", comma"} 1
event_processing_duration_seconds_bucket{le="0.01"} 50
event_processing_duration_seconds_bucket{le="0.1"} 90
event_processing_duration_seconds_bucket{le="+Inf"} 100
event_processing_duration_seconds_sum 3.5
event_processing_duration_seconds_count 100
"#;

    #[test]
    fn prometheus_text_is_parsed_into_named_labelled_samples() {
        let s = parse_prometheus(METRICS);
        assert_eq!(sum_of(&s, "consumer_lag"), Some(42.0));
        assert_eq!(max_of(&s, "consumer_lag"), Some(30.0));
        assert_eq!(sum_of(&s, "events_published_total"), Some(150.0));
        assert_eq!(sum_of(&s, "missing"), None);
        let odd = s.iter().find(|x| x.name == "odd").unwrap();
        assert_eq!(odd.label("label"), Some("with \"quote\", comma"));
        assert_eq!(
            sum_of(&s, "event_processing_duration_seconds_count"),
            Some(100.0)
        );
    }

    #[test]
    fn bucket_quantiles_interpolate_like_histogram_quantile() {
        let s = parse_prometheus(METRICS);
        let b = buckets_of(&s, "event_processing_duration_seconds");
        assert_eq!(b.len(), 3);
        // rank 50 is the top of the first bucket.
        assert!((bucket_quantile(&b, 0.5).unwrap() - 0.01).abs() < 1e-12);
        // rank 70: halfway through (0.01, 0.1].
        assert!((bucket_quantile(&b, 0.7).unwrap() - 0.055).abs() < 1e-12);
        // rank 95 is in +Inf: the highest finite bound.
        assert_eq!(bucket_quantile(&b, 0.95), Some(0.1));
        assert_eq!(bucket_quantile(&[], 0.5), None);
    }

    #[test]
    fn bucket_deltas_count_what_happened_between_scrapes_and_survive_a_restart() {
        let before = vec![(0.01, 10.0), (f64::INFINITY, 20.0)];
        let after = vec![(0.01, 15.0), (f64::INFINITY, 40.0)];
        assert_eq!(
            bucket_delta(&before, &after),
            vec![(0.01, 5.0), (f64::INFINITY, 20.0)]
        );
        let restarted = vec![(0.01, 1.0), (f64::INFINITY, 2.0)];
        assert_eq!(bucket_delta(&before, &restarted), restarted);
    }
}
