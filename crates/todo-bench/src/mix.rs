//! The request mix (create, update, complete, delete, and the liveness probe
//! for the HTTP ceiling) and the pool of tasks the generator owns, so that every request changes something and writes exactly
//! one event: updates always change the title, completes pick incomplete tasks,
//! and a task is checked out while a request on it is in flight, so a delete
//! never races an update of the same task.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Error;

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /tasks`: task.created.
    Create,
    /// `PUT /tasks/{id}` with a new title: task.updated.
    Update,
    /// `POST /tasks/{id}/complete` on an incomplete task: task.completed.
    Complete,
    /// `DELETE /tasks/{id}`: task.deleted.
    Delete,
    /// `GET /health`: no task, no event; the HTTP stack alone (`ceiling`).
    Health,
}

impl Op {
    /// Every op, in a fixed order (index of per-op arrays).
    pub const ALL: [Op; 5] = [Op::Create, Op::Update, Op::Complete, Op::Delete, Op::Health];

    /// Position in [`Op::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as in `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Complete => "complete",
            Op::Delete => "delete",
            Op::Health => "health",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Relative weights of the ops.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mix {
    /// Weight per op, in [`Op::ALL`] order.
    pub weights: [f64; Op::ALL.len()],
}

impl Default for Mix {
    /// create 40, update 30, complete 15, delete 15: the task pool grows slowly,
    /// every event type flows.
    fn default() -> Self {
        Self {
            weights: [40.0, 30.0, 15.0, 15.0, 0.0],
        }
    }
}

impl Mix {
    /// Only `op`.
    pub fn only(op: Op) -> Self {
        let mut weights = [0.0; Op::ALL.len()];
        weights[op.index()] = 1.0;
        Self { weights }
    }

    /// The op for a uniform draw `u` in `[0, 1)`.
    pub fn pick(&self, u: f64) -> Op {
        let total: f64 = self.weights.iter().sum();
        let mut x = u.clamp(0.0, 1.0) * total;
        for op in Op::ALL {
            let w = self.weights[op.index()];
            if x < w {
                return op;
            }
            x -= w;
        }
        // u == 1.0 or rounding: the last op with a weight.
        Op::ALL
            .into_iter()
            .rev()
            .find(|op| self.weights[op.index()] > 0.0)
            .unwrap_or(Op::Create)
    }

    /// Share of each op, summing to 1.
    pub fn shares(&self) -> [f64; Op::ALL.len()] {
        let total: f64 = self.weights.iter().sum();
        self.weights.map(|w| w / total)
    }
}

impl FromStr for Mix {
    type Err = Error;

    /// `create=40,update=30,complete=15,delete=15`; missing ops weigh 0.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut weights = [0.0; Op::ALL.len()];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "mix: unknown op {name:?} (create, update, complete, delete, health)"
                    ))
                })?;
            let w: f64 = weight
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("mix: weight of {name} is not a number")))?;
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::Config(format!("mix: weight of {name} must be >= 0")));
            }
            weights[op.index()] = w;
        }
        let on_tasks = [Op::Update, Op::Complete, Op::Delete]
            .iter()
            .any(|op| weights[op.index()] > 0.0);
        if weights[Op::Create.index()] <= 0.0 && on_tasks {
            return Err(Error::Config(
                "mix: create needs a weight above 0 (update, complete and delete act on created tasks)".into(),
            ));
        }
        if weights.iter().all(|w| *w <= 0.0) {
            return Err(Error::Config("mix: no op has a weight above 0".into()));
        }
        Ok(Self { weights })
    }
}

impl fmt::Display for Mix {
    /// The task ops always, the probe only when it has a weight.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Op::ALL
            .iter()
            .filter(|op| **op != Op::Health || self.weights[op.index()] > 0.0)
            .map(|op| format!("{}={}", op.name(), self.weights[op.index()]))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A request to send: the op and the task it acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Create a new task.
    Create,
    /// Rename task `id`; `complete` says which pool it returns to.
    Update { id: i64, complete: bool },
    /// Complete the incomplete task `id`.
    Complete { id: i64 },
    /// Delete task `id`.
    Delete { id: i64 },
    /// Ask the liveness endpoint.
    Health,
}

impl Planned {
    /// The op this request is.
    pub fn op(&self) -> Op {
        match self {
            Planned::Create => Op::Create,
            Planned::Update { .. } => Op::Update,
            Planned::Complete { .. } => Op::Complete,
            Planned::Delete { .. } => Op::Delete,
            Planned::Health => Op::Health,
        }
    }
}

/// The live tasks this generator created, split by status. A task being
/// worked on is in neither list.
#[derive(Debug, Default)]
pub struct TaskPool {
    incomplete: Vec<i64>,
    complete: Vec<i64>,
}

impl TaskPool {
    /// Tasks in the pool (not counting checked-out ones).
    pub fn len(&self) -> usize {
        self.incomplete.len() + self.complete.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Turns the drawn `op` into a request, checking out its task; `r` is a
    /// uniform draw that chooses the task. Falls back to a create when no task
    /// fits (an empty pool, or nothing left to complete).
    pub fn plan(&mut self, op: Op, r: f64) -> Planned {
        fn take(v: &mut Vec<i64>, r: f64) -> Option<i64> {
            if v.is_empty() {
                return None;
            }
            let i = ((r * v.len() as f64) as usize).min(v.len() - 1);
            Some(v.swap_remove(i))
        }
        let total = self.len();
        // Pick from either list in proportion to its size.
        let from_any = |pool: &mut Self| -> Option<(i64, bool)> {
            if total == 0 {
                return None;
            }
            let split = pool.incomplete.len() as f64 / total as f64;
            if r < split {
                take(&mut pool.incomplete, r / split).map(|id| (id, false))
            } else {
                take(&mut pool.complete, (r - split) / (1.0 - split)).map(|id| (id, true))
            }
        };
        match op {
            Op::Create => Planned::Create,
            Op::Update => match from_any(self) {
                Some((id, complete)) => Planned::Update { id, complete },
                None => Planned::Create,
            },
            Op::Complete => match take(&mut self.incomplete, r) {
                Some(id) => Planned::Complete { id },
                None => Planned::Create,
            },
            Op::Delete => match from_any(self) {
                Some((id, _)) => Planned::Delete { id },
                None => Planned::Create,
            },
            Op::Health => Planned::Health,
        }
    }

    /// Returns a task after its request: `created` is the new task's id for a
    /// create. A failed delete drops the task (its state is unknown); other
    /// failures return it unchanged.
    pub fn settle(&mut self, planned: Planned, ok: bool, created: Option<i64>) {
        match planned {
            Planned::Create => {
                if let Some(id) = created {
                    self.incomplete.push(id);
                }
            }
            Planned::Update { id, complete } => {
                if complete {
                    self.complete.push(id)
                } else {
                    self.incomplete.push(id)
                }
            }
            Planned::Complete { id } => {
                if ok {
                    self.complete.push(id)
                } else {
                    self.incomplete.push(id)
                }
            }
            Planned::Delete { .. } | Planned::Health => {}
        }
    }

    /// Takes every task out of the pool (for clean-up).
    pub fn drain(&mut self) -> Vec<i64> {
        let mut all = std::mem::take(&mut self.incomplete);
        all.append(&mut self.complete);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_names_and_weights_and_prints_back() {
        let mix: Mix = "create=50, update=25,complete=25".parse().unwrap();
        assert_eq!(mix.weights, [50.0, 25.0, 25.0, 0.0, 0.0]);
        assert_eq!(mix.to_string(), "create=50,update=25,complete=25,delete=0");
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix);
    }

    #[test]
    fn a_mix_without_creates_or_with_an_unknown_op_is_rejected() {
        assert!("update=1".parse::<Mix>().is_err());
        assert!("create=1,rename=2".parse::<Mix>().is_err());
        assert!("create=x".parse::<Mix>().is_err());
        assert!("create=-1".parse::<Mix>().is_err());
        assert!("create=0".parse::<Mix>().is_err());
    }

    #[test]
    fn a_mix_of_the_probe_alone_needs_no_creates_and_plans_no_task() {
        let mix: Mix = "health=1".parse().unwrap();
        assert_eq!(mix, Mix::only(Op::Health));
        assert_eq!(
            mix.to_string(),
            "create=0,update=0,complete=0,delete=0,health=1"
        );
        assert_eq!(mix.pick(0.5), Op::Health);
        let mut pool = TaskPool::default();
        let planned = pool.plan(mix.pick(0.5), 0.5);
        assert_eq!(planned, Planned::Health);
        pool.settle(planned, true, None);
        assert!(pool.is_empty());
    }

    #[test]
    fn picking_follows_the_weights() {
        let mix = Mix::default();
        let n = 10_000;
        let mut counts = [0usize; Op::ALL.len()];
        for i in 0..n {
            counts[mix.pick((i as f64 + 0.5) / n as f64).index()] += 1;
        }
        assert_eq!(counts, [4_000, 3_000, 1_500, 1_500, 0]);
        assert_eq!(mix.pick(1.0), Op::Delete);
        assert_eq!(mix.pick(0.0), Op::Create);
    }

    #[test]
    fn an_empty_pool_turns_every_task_op_into_a_create() {
        let mut pool = TaskPool::default();
        for op in [Op::Create, Op::Update, Op::Complete, Op::Delete] {
            assert_eq!(pool.plan(op, 0.3), Planned::Create);
        }
    }

    #[test]
    fn a_checked_out_task_is_not_handed_out_twice() {
        let mut pool = TaskPool::default();
        pool.settle(Planned::Create, true, Some(7));
        let first = pool.plan(Op::Delete, 0.0);
        assert_eq!(first, Planned::Delete { id: 7 });
        assert_eq!(pool.plan(Op::Update, 0.0), Planned::Create);
        pool.settle(first, true, None);
        assert!(pool.is_empty());
    }

    #[test]
    fn completed_tasks_are_not_completed_again_but_can_be_updated() {
        let mut pool = TaskPool::default();
        pool.settle(Planned::Create, true, Some(1));
        let c = pool.plan(Op::Complete, 0.5);
        assert_eq!(c, Planned::Complete { id: 1 });
        pool.settle(c, true, None);
        assert_eq!(pool.plan(Op::Complete, 0.5), Planned::Create);
        let u = pool.plan(Op::Update, 0.5);
        assert_eq!(
            u,
            Planned::Update {
                id: 1,
                complete: true
            }
        );
        pool.settle(u, true, None);
        assert_eq!(pool.drain(), vec![1]);
    }
}
