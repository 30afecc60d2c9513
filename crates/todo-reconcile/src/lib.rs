//! Reconciles what the backend wrote with what the event service applied.
//! Every event id in the outbox (published or not) must be in the audit log
//! exactly once; the projection must match the tasks table.
//!
//! `todoctl verify` prints this report and todo-bench records it; both read it
//! through this crate, so neither links a service to get it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use sqlx::PgPool;
use uuid::Uuid;

/// What a reconciliation found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Event ids in the outbox.
    pub expected: usize,
    /// Of those, how many of each event type.
    pub expected_by_type: BTreeMap<String, i64>,
    /// Of those, how many the audit log has.
    pub delivered: usize,
    /// Expected but not in the audit log.
    pub missing: Vec<Uuid>,
    /// Effects applied more than once: audit rows beyond one per event id,
    /// plus analytics counts beyond the number of audited events.
    pub duplicated_effects: i64,
    /// Outbox rows not yet published by the relay.
    pub unpublished: i64,
    /// Tasks whose projection differs from the tasks table (id, why).
    pub mismatched: Vec<(i64, String)>,
}

impl Report {
    /// No gap at all.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.duplicated_effects == 0 && self.mismatched.is_empty()
    }

    /// The report for a script: the counts, and whether it is clean.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "expected": self.expected,
            "expected_by_type": self.expected_by_type,
            "delivered": self.delivered,
            "missing": self.missing.len(),
            "duplicated_effects": self.duplicated_effects,
            "mismatched": self.mismatched.len(),
            "unpublished": self.unpublished,
            "clean": self.is_clean(),
        })
    }

    /// The report for a person.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "expected           {}", self.expected)?;
        writeln!(out, "delivered          {}", self.delivered)?;
        writeln!(out, "missing            {}", self.missing.len())?;
        writeln!(out, "duplicated effects {}", self.duplicated_effects)?;
        writeln!(out, "mismatched         {}", self.mismatched.len())?;
        writeln!(out, "unpublished        {}", self.unpublished)?;
        for id in self.missing.iter().take(10) {
            writeln!(out, "  missing event {id}")?;
        }
        for (task, why) in self.mismatched.iter().take(10) {
            writeln!(out, "  task {task}: {why}")?;
        }
        writeln!(
            out,
            "{}",
            if self.is_clean() {
                "OK: nothing missing, nothing applied twice"
            } else {
                "GAPS FOUND"
            }
        )
    }
}

/// One reconciliation pass.
pub async fn reconcile(backend: &PgPool, events: &PgPool) -> Result<Report, sqlx::Error> {
    let expected: HashSet<Uuid> = todo_outbox::read::event_ids(backend)
        .await?
        .into_iter()
        .collect();
    let unpublished = todo_outbox::backlog::unpublished_count(backend).await?;
    let audited = todo_audit::log::event_ids(events).await?;
    let audited_set: HashSet<Uuid> = audited.iter().copied().collect();
    let counted = todo_audit::log::analytics_total(events).await?;
    let duplicated_effects =
        (audited.len() - audited_set.len()) as i64 + (counted - audited.len() as i64).max(0);
    let mut missing: Vec<Uuid> = expected.difference(&audited_set).copied().collect();
    missing.sort();

    let tasks = todo_outbox::tasks::snapshot(backend).await?;
    let projection: HashMap<i64, todo_audit::log::ProjectedTask> =
        todo_audit::log::projection(events)
            .await?
            .into_iter()
            .map(|p| (p.task_id, p))
            .collect();
    let mut mismatched = Vec::new();
    let live: HashSet<i64> = tasks.iter().map(|t| t.id).collect();
    for t in &tasks {
        match projection.get(&t.id) {
            None => mismatched.push((t.id, "no projection".to_owned())),
            Some(p) if p.deleted => mismatched.push((t.id, "projected as deleted".to_owned())),
            Some(p) => {
                let mut why = Vec::new();
                if p.title.as_deref() != Some(t.title.as_str()) {
                    why.push(format!("title {:?} != {:?}", p.title, t.title));
                }
                if p.status.as_deref() != Some(t.status.as_str()) {
                    why.push(format!("status {:?} != {:?}", p.status, t.status));
                }
                if p.task_version.is_some_and(|v| v != t.version) {
                    why.push(format!("version {:?} != {}", p.task_version, t.version));
                }
                if !why.is_empty() {
                    mismatched.push((t.id, why.join(", ")));
                }
            }
        }
    }
    // A projected task that no longer exists must be a tombstone. Only tasks
    // this outbox knows are checked (the event store may hold other sources).
    let known: HashSet<i64> = todo_outbox::read::task_ids(backend)
        .await?
        .into_iter()
        .collect();
    for (id, p) in &projection {
        if !p.deleted && !live.contains(id) && known.contains(id) {
            mismatched.push((*id, "deleted task not tombstoned".to_owned()));
        }
    }
    mismatched.sort();
    let expected_by_type = todo_outbox::read::counts_by_type(backend)
        .await?
        .into_iter()
        .collect();
    Ok(Report {
        expected: expected.len(),
        expected_by_type,
        delivered: expected.len() - missing.len(),
        missing,
        duplicated_effects,
        unpublished,
        mismatched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_report_carries_every_figure_that_chaos_reads() {
        let report = Report {
            expected: 5,
            expected_by_type: BTreeMap::from([
                ("task.completed".to_owned(), 2),
                ("task.created".to_owned(), 3),
            ]),
            delivered: 4,
            missing: vec![Uuid::nil()],
            duplicated_effects: 2,
            unpublished: 1,
            mismatched: vec![(7, "no projection".into())],
        };

        let json = report.to_json();

        assert_eq!(
            json,
            serde_json::json!({
                "expected": 5,
                "expected_by_type": { "task.completed": 2, "task.created": 3 },
                "delivered": 4,
                "missing": 1,
                "duplicated_effects": 2,
                "mismatched": 1,
                "unpublished": 1,
                "clean": false,
            })
        );
    }

    #[test]
    fn a_report_with_no_gap_is_clean_in_json_too() {
        let report = Report {
            expected: 3,
            delivered: 3,
            unpublished: 3,
            ..Default::default()
        };

        assert_eq!(report.to_json()["clean"], serde_json::json!(true));
    }
}
