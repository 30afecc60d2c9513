//! The Prometheus text exposition as the sampler reads it, and a
//! histogram's quantile computed as Prometheus does.

/// One metric line of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Metric name.
    pub name: String,
    /// Labels, in order.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Line {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The metric lines of a text exposition (comments and lines that do not
/// parse are skipped).
pub fn parse_exposition(text: &str) -> Vec<Line> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let (head, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = head.split_once('{') else {
        return Some(Line {
            name: head.to_owned(),
            labels: Vec::new(),
            value,
        });
    };
    let mut labels = Vec::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        // The value runs to the first quote that is not escaped.
        let mut val = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => val.push('\n'),
                    c => val.push(c),
                },
                (i, '"') => break i,
                (_, c) => val.push(c),
            }
        };
        labels.push((key.trim_start_matches(',').to_owned(), val));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(Line {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The `q` quantile of cumulative `buckets` (upper bound, count), as
/// Prometheus computes it; 0 when empty.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    if total <= 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return lower;
            }
            let inside = count - below;
            return if inside > 0.0 {
                lower + (le - lower) * (rank - below) / inside
            } else {
                le
            };
        }
        (lower, below) = (le, count);
    }
    lower
}
