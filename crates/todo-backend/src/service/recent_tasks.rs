//! The tasks this instance wrote last, so that a change to one of them can
//! skip the read it would otherwise make first (`Tasks::write_checked`).
//!
//! A remembered task is only a guess at the row. Every change is still
//! written only if the row is at the version the change started from, so a
//! stale guess (another instance changed or deleted the task since) costs a
//! write that does not apply and a read, never a wrong version or event. A
//! guess that would answer without writing (an update that changes nothing,
//! a complete of a complete task) is checked against the database first.
//!
//! Bounded by bytes, not entries: a task's description can be 10 000
//! characters. Eviction is quick_cache's (CLOCK-Pro), so tasks changed again
//! soon after they were written stay longest.

use std::mem::size_of;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::domain::Task;

/// Bytes a remembered task is counted as: the struct and its strings.
#[derive(Clone, Copy, Debug, Default)]
struct TaskBytes;

impl Weighter<i64, Task> for TaskBytes {
    fn weight(&self, _: &i64, task: &Task) -> u64 {
        (size_of::<(i64, Task)>()
            + task.title.len()
            + task.description.as_ref().map_or(0, String::len)
            + task.user_id.as_ref().map_or(0, String::len)) as u64
    }
}

/// A rough task size, to size the cache's table: a struct, a short title.
const TYPICAL_TASK_BYTES: u64 = 256;

/// Tasks by id, up to a number of bytes; `None` when the cache is off.
#[derive(Clone)]
pub struct RecentTasks {
    cache: Option<Arc<Cache<i64, Task, TaskBytes>>>,
}

impl RecentTasks {
    /// Up to `bytes` of tasks; 0 turns the cache off (every change reads first).
    pub fn new(bytes: u64) -> Self {
        let cache = (bytes > 0).then(|| {
            let items = (bytes / TYPICAL_TASK_BYTES).max(1) as usize;
            Arc::new(Cache::with_weighter(items, bytes, TaskBytes))
        });
        Self { cache }
    }

    /// The remembered state of task `id`, if `user` may see it (`None`: no
    /// auth, every task), counted as a hit or a miss. A task the user may
    /// not see is a miss, so that its 404 comes from the database, as for
    /// any other read.
    pub fn lookup(&self, id: i64, user: Option<&str>) -> Option<Task> {
        let task = self
            .cache
            .as_ref()?
            .get(&id)
            .filter(|t| user.is_none_or(|u| t.user_id.as_deref() == Some(u)));
        crate::metrics::task_cache_lookup(if task.is_some() { "hit" } else { "miss" });
        task
    }

    /// Remembers `task` as written.
    pub fn remember(&self, task: &Task) {
        if let Some(cache) = &self.cache {
            cache.insert(task.id, task.clone());
        }
    }

    /// Forgets task `id`: deleted.
    pub fn forget(&self, id: i64) {
        if let Some(cache) = &self.cache {
            cache.remove(&id);
        }
    }

    /// Forgets task `id`: a write from its remembered state did not apply,
    /// so the row has moved on. Counted as stale.
    pub fn found_stale(&self, id: i64) {
        crate::metrics::task_cache_lookup("stale");
        self.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{now, TaskTitle};

    fn task(id: i64, user: Option<&str>, description_len: usize) -> Task {
        let mut t = Task::new(id, &TaskTitle::parse("a title").unwrap(), None, user, now());
        t.description = (description_len > 0).then(|| "d".repeat(description_len));
        t
    }

    #[test]
    fn a_remembered_task_is_returned_until_forgotten() {
        let recent = RecentTasks::new(1 << 20);
        let t = task(7, None, 0);
        recent.remember(&t);
        assert_eq!(recent.lookup(7, None), Some(t));
        recent.forget(7);
        assert_eq!(recent.lookup(7, None), None);
    }

    #[test]
    fn a_task_of_another_user_is_a_miss() {
        let recent = RecentTasks::new(1 << 20);
        recent.remember(&task(7, Some("alice"), 0));
        assert_eq!(recent.lookup(7, Some("bob")), None);
        assert!(recent.lookup(7, Some("alice")).is_some());
        assert!(recent.lookup(7, None).is_some(), "no auth sees every task");
    }

    #[test]
    fn a_second_write_replaces_the_first() {
        let recent = RecentTasks::new(1 << 20);
        let mut t = task(7, None, 0);
        recent.remember(&t);
        t.version = 2;
        recent.remember(&t);
        assert_eq!(recent.lookup(7, None).unwrap().version, 2);
    }

    #[test]
    fn the_cache_holds_no_more_bytes_than_it_is_given() {
        // 4 MiB for 1 000 tasks of about 10 KiB each.
        let recent = RecentTasks::new(4 << 20);
        for id in 0..1_000 {
            recent.remember(&task(id, None, 10_000));
        }
        let cache = recent.cache.as_ref().unwrap();
        assert!(cache.weight() <= 4 << 20, "weight {}", cache.weight());
        assert!(
            cache.len() <= 410,
            "{} tasks of 10 KiB in 4 MiB",
            cache.len()
        );
        assert!(!cache.is_empty(), "the latest tasks are kept");
    }

    #[test]
    fn zero_bytes_turns_the_cache_off() {
        let recent = RecentTasks::new(0);
        recent.remember(&task(7, None, 0));
        assert!(recent.cache.is_none());
        assert_eq!(recent.lookup(7, None), None);
    }
}
