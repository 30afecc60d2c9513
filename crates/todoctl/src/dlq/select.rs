//! Which dead letters a `dlq` command is about: the filters an operator
//! gives, and the state each dead letter is in.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use todo_audit::dlq_actions::{Disposition, DispositionKind};
use todo_events::headers;
use todo_kafka::TopicNames;

use todo_kafka::ReadRecord;

/// Which dead letters.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Filter {
    /// Only this error class (the `dlq.error_class` header).
    #[arg(long)]
    pub error_class: Option<String>,
    /// Only dead letters from this original topic (contract name, e.g. todo.tasks.created).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this dead letter, by its partition and offset in the DLQ topic
    /// (`dlq list` shows them as `<dlq topic>[PARTITION]@OFFSET`); repeat for several.
    #[arg(long = "dead-letter", value_name = "PARTITION:OFFSET")]
    pub dead_letters: Vec<DeadLetterId>,
    /// At most this many (of those in the state asked for).
    #[arg(long)]
    pub max: Option<usize>,
}

/// One dead letter: its partition and offset in the DLQ topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeadLetterId {
    /// Partition of the DLQ topic.
    pub partition: i32,
    /// Offset in it.
    pub offset: i64,
}

impl FromStr for DeadLetterId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not PARTITION:OFFSET (two numbers, e.g. 0:42)");
        let (p, o) = s.split_once(':').ok_or_else(bad)?;
        let partition: i32 = p.parse().map_err(|_| bad())?;
        let offset: i64 = o.parse().map_err(|_| bad())?;
        if partition < 0 || offset < 0 {
            return Err(bad());
        }
        Ok(Self { partition, offset })
    }
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// What has been done to a dead letter, as recorded by `dlq replay` and
/// `dlq discard`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Neither replayed nor discarded yet.
    Pending,
    /// Replayed last.
    Replayed,
    /// Discarded last.
    Discarded,
    /// Whatever their state.
    #[default]
    All,
}

impl State {
    fn admits(self, disposition: Option<&Disposition>) -> bool {
        matches!(
            (self, disposition.map(|d| d.kind)),
            (State::All, _)
                | (State::Pending, None)
                | (State::Replayed, Some(DispositionKind::Replayed))
                | (State::Discarded, Some(DispositionKind::Discarded))
        )
    }
}

/// The dead letters a filter and a state select.
#[derive(Debug, Default)]
pub struct Selection {
    /// Selected, in the order read.
    pub records: Vec<ReadRecord>,
    /// Matched the filter but were left out for their state.
    pub other_state: usize,
}

impl Filter {
    fn matches(&self, names: &TopicNames, r: &ReadRecord) -> bool {
        let class_ok = self
            .error_class
            .as_deref()
            .is_none_or(|c| r.header(headers::DLQ_ERROR_CLASS) == Some(c));
        let topic_ok = self.topic.as_deref().is_none_or(|t| {
            r.header(headers::DLQ_ORIGINAL_TOPIC)
                .and_then(|o| names.canonical(o))
                == Some(t)
        });
        let id_ok = self.dead_letters.is_empty() || self.dead_letters.contains(&id_of(r));
        class_ok && topic_ok && id_ok
    }

    /// The records that match, are in `state` (by `dispositions`; with none
    /// known every record counts as pending), at most `max` of them.
    pub fn select(
        &self,
        names: &TopicNames,
        records: Vec<ReadRecord>,
        dispositions: &HashMap<(i32, i64), Disposition>,
        state: State,
    ) -> Selection {
        let mut out = Selection::default();
        for r in records.into_iter().filter(|r| self.matches(names, r)) {
            if !state.admits(dispositions.get(&(r.partition, r.offset))) {
                out.other_state += 1;
            } else if self.max.is_none_or(|m| out.records.len() < m) {
                out.records.push(r);
            }
        }
        out
    }

    /// The dead letters named with `--dead-letter` that are not in `records`.
    pub fn missing(&self, records: &[ReadRecord]) -> Vec<DeadLetterId> {
        self.dead_letters
            .iter()
            .filter(|id| !records.iter().any(|r| id_of(r) == **id))
            .copied()
            .collect()
    }

    /// The selection as recorded with an action: the filters given, and
    /// whether dead letters acted on before were included.
    pub fn to_json(&self, all: bool) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(c) = &self.error_class {
            m.insert("error_class".into(), c.as_str().into());
        }
        if let Some(t) = &self.topic {
            m.insert("topic".into(), t.as_str().into());
        }
        if !self.dead_letters.is_empty() {
            let ids: Vec<String> = self.dead_letters.iter().map(|d| d.to_string()).collect();
            m.insert("dead_letters".into(), ids.into());
        }
        if let Some(max) = self.max {
            m.insert("max".into(), max.into());
        }
        m.insert("all".into(), all.into());
        m.into()
    }
}

fn id_of(r: &ReadRecord) -> DeadLetterId {
    DeadLetterId {
        partition: r.partition,
        offset: r.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, class: &str) -> ReadRecord {
        ReadRecord {
            topic: "todo.tasks.dlq".into(),
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            value: Vec::new(),
            headers: vec![(headers::DLQ_ERROR_CLASS.into(), class.into())],
        }
    }

    fn replayed() -> Disposition {
        Disposition {
            kind: DispositionKind::Replayed,
            action_id: 1,
            event_id: None,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_dead_letter_is_named_partition_colon_offset() {
        let id: DeadLetterId = "2:40".parse().unwrap();
        assert_eq!(
            id,
            DeadLetterId {
                partition: 2,
                offset: 40
            }
        );
        assert_eq!(id.to_string(), "2:40");
        for bad in ["", "2", "2:", ":40", "a:1", "1:b", "-1:3", "1:-3", "1:2:3"] {
            let e = bad.parse::<DeadLetterId>().unwrap_err();
            assert!(e.contains("PARTITION:OFFSET"), "{bad}: {e}");
        }
    }

    #[test]
    fn max_counts_only_the_dead_letters_in_the_state_asked_for() {
        let names = TopicNames::new(String::new());
        let records = vec![record(0, 0, "a"), record(0, 1, "a"), record(0, 2, "a")];
        let done = HashMap::from([((0, 0), replayed())]);
        let filter = Filter {
            max: Some(1),
            ..Filter::default()
        };

        let s = filter.select(&names, records, &done, State::Pending);

        assert_eq!(s.records.len(), 1);
        assert_eq!(
            s.records[0].offset, 1,
            "the replayed one does not use up max"
        );
        assert_eq!(s.other_state, 1);
    }

    #[test]
    fn the_filters_combine_and_a_named_dead_letter_not_read_is_missing() {
        let names = TopicNames::new(String::new());
        let records = vec![record(0, 0, "a"), record(1, 0, "a"), record(1, 1, "b")];
        let filter = Filter {
            error_class: Some("a".into()),
            dead_letters: vec!["1:0".parse().unwrap(), "1:1".parse().unwrap()],
            ..Filter::default()
        };

        let missing = filter.missing(&records);
        let s = filter.select(&names, records, &HashMap::new(), State::All);

        assert!(missing.is_empty());
        assert_eq!(
            s.records
                .iter()
                .map(|r| (r.partition, r.offset))
                .collect::<Vec<_>>(),
            [(1, 0)]
        );
        let absent = Filter {
            dead_letters: vec!["3:9".parse().unwrap()],
            ..Filter::default()
        };
        assert_eq!(absent.missing(&[]), ["3:9".parse().unwrap()]);
    }

    #[test]
    fn the_recorded_selection_names_only_the_filters_given() {
        let filter = Filter {
            error_class: Some("handler".into()),
            dead_letters: vec!["0:7".parse().unwrap()],
            ..Filter::default()
        };
        assert_eq!(
            filter.to_json(false),
            serde_json::json!({"error_class": "handler", "dead_letters": ["0:7"], "all": false})
        );
    }
}
