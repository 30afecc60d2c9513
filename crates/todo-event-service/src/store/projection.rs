//! The task projection: current state per task, whatever order its events
//! arrive in.
//!
//! Each event writes one or two groups of fields, and each group is
//! last-writer-wins on its own [`Stamp`]: content (title, description) and
//! status. Completion times are kept as first and last seen. Because that merge is commutative,
//! associative and idempotent, a batch's events are folded per task here into
//! one [`TaskDelta`], and the database merges the delta into the stored row with
//! the same rule (`stamp_newer` in the migration): one upsert row per task and
//! batch, and the same end state as applying the events one by one, in any order.

use chrono::{DateTime, Utc};
use todo_events::{Event, Payload, TaskStatus};

/// When a change happened: the task's row version (v2) and the event's time
/// (`created_at`, `updated_at`, ...), for v1 events that have no version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `task_version`, when the event has it.
    pub version: Option<i64>,
    /// The payload's time of the change.
    pub at: DateTime<Utc>,
}

impl Stamp {
    /// Is `self` newer than `old`? By version when both have one, else by time
    /// (a tie goes to the later arrival). Mirrors SQL `stamp_newer`.
    pub fn newer_than(&self, old: &Stamp) -> bool {
        match (self.version, old.version) {
            (Some(new), Some(old)) => new > old,
            _ => self.at >= old.at,
        }
    }
}

/// A group's value with the stamp it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped<T> {
    /// Its stamp.
    pub stamp: Stamp,
    /// Its value.
    pub value: T,
}

/// The content group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
}

/// What a batch's events say about one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDelta {
    /// The task.
    pub task_id: i64,
    /// Newest content.
    pub content: Option<Stamped<Content>>,
    /// Newest status.
    pub status: Option<Stamped<TaskStatus>>,
    /// Latest completion seen.
    pub last_completed_at: Option<DateTime<Utc>>,
    /// First completion seen.
    pub first_completed_at: Option<DateTime<Utc>>,
    /// Creation time, from `task.created`.
    pub created_at: Option<DateTime<Utc>>,
    /// Owner, when an event names one.
    pub user_id: Option<String>,
    /// Deletion time: the tombstone.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Highest task_version seen.
    pub task_version: Option<i64>,
    /// Latest event time seen.
    pub last_event_at: DateTime<Utc>,
}

fn keep_newer<T>(slot: &mut Option<Stamped<T>>, new: Stamped<T>) {
    match slot {
        Some(old) if !new.stamp.newer_than(&old.stamp) => {}
        _ => *slot = Some(new),
    }
}

fn min_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl TaskDelta {
    fn empty(task_id: i64, at: DateTime<Utc>) -> Self {
        Self {
            task_id,
            content: None,
            status: None,
            last_completed_at: None,
            first_completed_at: None,
            created_at: None,
            user_id: None,
            deleted_at: None,
            task_version: None,
            last_event_at: at,
        }
    }

    /// Folds one event into the delta.
    pub fn apply(&mut self, event: &Event) {
        let p = &event.payload;
        let stamp = Stamp {
            version: p.task_version(),
            at: p.occurred_at(),
        };
        self.last_event_at = self.last_event_at.max(stamp.at);
        self.task_version = self.task_version.max(stamp.version);
        if let Some(u) = p.user_id() {
            self.user_id = Some(u.to_owned());
        }
        match p {
            Payload::Created(c) => {
                self.created_at = min_opt(self.created_at, Some(c.created_at));
                let content = Content {
                    title: c.title.clone(),
                    description: c.description.clone(),
                };
                keep_newer(
                    &mut self.content,
                    Stamped {
                        stamp,
                        value: content,
                    },
                );
                keep_newer(
                    &mut self.status,
                    Stamped {
                        stamp,
                        value: c.status,
                    },
                );
            }
            Payload::Updated(u) => {
                let content = Content {
                    title: u.title.clone(),
                    description: u.description.clone(),
                };
                keep_newer(
                    &mut self.content,
                    Stamped {
                        stamp,
                        value: content,
                    },
                );
                keep_newer(
                    &mut self.status,
                    Stamped {
                        stamp,
                        value: u.status,
                    },
                );
            }
            Payload::Completed(c) => {
                self.first_completed_at = min_opt(self.first_completed_at, Some(c.completed_at));
                self.last_completed_at = self.last_completed_at.max(Some(c.completed_at));
                keep_newer(
                    &mut self.status,
                    Stamped {
                        stamp,
                        value: TaskStatus::Complete,
                    },
                );
            }
            Payload::Deleted(d) => {
                self.deleted_at = min_opt(self.deleted_at, Some(d.deleted_at));
            }
        }
    }
}

/// One delta per task touched by `events`, sorted by task id (a fixed lock
/// order across concurrent transactions).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<TaskDelta> {
    let mut by_task: std::collections::BTreeMap<i64, TaskDelta> = Default::default();
    for e in events {
        by_task
            .entry(e.task_id())
            .or_insert_with(|| TaskDelta::empty(e.task_id(), e.payload.occurred_at()))
            .apply(e);
    }
    by_task.into_values().collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use todo_events::{
        Changes, EventVersion, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated,
    };
    use uuid::Uuid;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn created(v: Option<i64>, at: i64, title: &str) -> Event {
        let p = TaskCreated {
            task_id: 7,
            title: title.into(),
            description: None,
            status: TaskStatus::Incomplete,
            created_at: t(at),
            user_id: None,
            task_version: v,
        };
        Event::new(p.into(), EventVersion::V2, Uuid::new_v4())
    }

    fn updated(v: Option<i64>, at: i64, title: &str, status: TaskStatus) -> Event {
        let p = TaskUpdated {
            task_id: 7,
            title: title.into(),
            description: Some("d".into()),
            status,
            updated_at: t(at),
            changes: Changes {
                title: true,
                description: false,
                status: false,
            },
            user_id: None,
            task_version: v,
        };
        Event::new(p.into(), EventVersion::V2, Uuid::new_v4())
    }

    fn completed(v: Option<i64>, at: i64) -> Event {
        let p = TaskCompleted {
            task_id: 7,
            completed_at: t(at),
            user_id: None,
            task_version: v,
        };
        Event::new(p.into(), EventVersion::V2, Uuid::new_v4())
    }

    fn deleted(v: Option<i64>, at: i64) -> Event {
        let p = TaskDeleted {
            task_id: 7,
            deleted_at: t(at),
            user_id: None,
            task_version: v,
        };
        Event::new(p.into(), EventVersion::V2, Uuid::new_v4())
    }

    fn permutations(events: &[Event]) -> Vec<Vec<Event>> {
        if events.len() <= 1 {
            return vec![events.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..events.len() {
            let mut rest = events.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn every_arrival_order_of_a_tasks_events_folds_to_the_same_state() {
        let history = vec![
            created(Some(1), 0, "first"),
            updated(Some(2), 10, "second", TaskStatus::Incomplete),
            completed(Some(3), 20),
            updated(Some(4), 30, "third", TaskStatus::Complete),
        ];
        let expected = fold(&history);
        for order in permutations(&history) {
            assert_eq!(fold(&order), expected);
        }
        let d = &expected[0];
        assert_eq!(d.content.as_ref().unwrap().value.title, "third");
        assert_eq!(d.status.as_ref().unwrap().value, TaskStatus::Complete);
        assert_eq!(d.first_completed_at, Some(t(20)));
        assert_eq!(d.created_at, Some(t(0)));
        assert_eq!(d.task_version, Some(4));
    }

    #[test]
    fn an_update_read_before_its_create_keeps_the_updated_title() {
        let d = &fold(&[
            updated(Some(2), 10, "renamed", TaskStatus::Incomplete),
            created(Some(1), 0, "original"),
        ])[0];
        assert_eq!(d.content.as_ref().unwrap().value.title, "renamed");
        assert_eq!(d.created_at, Some(t(0)));
    }

    #[test]
    fn v1_events_without_a_version_are_ordered_by_time() {
        let d = &fold(&[
            completed(None, 20),
            updated(None, 10, "x", TaskStatus::Incomplete),
        ])[0];
        assert_eq!(d.status.as_ref().unwrap().value, TaskStatus::Complete);
    }

    #[test]
    fn a_delete_leaves_a_tombstone_whatever_arrives_after_it() {
        let d = &fold(&[
            deleted(Some(3), 30),
            updated(Some(2), 20, "late", TaskStatus::Incomplete),
        ])[0];
        assert_eq!(d.deleted_at, Some(t(30)));
    }

    #[test]
    fn a_newer_version_wins_even_with_an_older_clock() {
        let new = Stamp {
            version: Some(5),
            at: t(0),
        };
        let old = Stamp {
            version: Some(4),
            at: t(100),
        };
        assert!(new.newer_than(&old));
        assert!(!old.newer_than(&new));
    }
}
