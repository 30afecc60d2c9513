//! Where the relay's read of unpublished rows starts: the floor, an id below
//! which every row is known to be published.
//!
//! Why not from the first row: marking a row published takes it out of the
//! partial index of unpublished ids only logically. Its index entry stays
//! until VACUUM removes it, and autovacuum waits for a fifth of the table to
//! be dead: on an outbox that keeps a week of rows, millions of entries. A
//! read from the first id walks all of them, every time (63 ms and 5 900
//! pages per read on a 10-million-row outbox, docs/performance.md). From the
//! floor, the index descent lands past them.
//!
//! Why not simply from the last id read: ids are drawn when a row is written
//! but become visible when its transaction commits, so a lower id can appear
//! after higher ones were read (a straggler). It must still go out, and
//! before any later change of its task, which can only be written after it
//! committed.
//!
//! The rule. A read with snapshot `S` that found `first` as its smallest
//! unpublished id proposes `first` as the next floor. A row below `first` not
//! visible to `S` was written by a transaction running at `S`: its id was
//! drawn before `S` (later ids are higher than every id visible to `S`), and
//! its writer held a transaction id by then (the writers draw outbox ids
//! after their first write, see `todo_outbox::write`), so that transaction
//! id is below `S.xmax`. Once a later read's snapshot has `xmin >= S.xmax`,
//! all of those transactions have ended, and that read, still from the old
//! floor, saw their rows: the floor moves to the smaller of `first` and what
//! that read found first.
//!
//! Rows marked unpublished again (a replay) lie below the floor: a replay
//! sends a NOTIFY that resets it, and the relay reads from the first id at
//! least every [`FULL_READ_EVERY`] anyway.

use std::time::{Duration, Instant};

use todo_outbox::relay::ReadSnapshot;

/// The longest the relay reads from the floor without one read from the
/// first id: a bound on how late a row queued again below the floor by
/// anything other than a replay (which resets the floor) can be published.
pub const FULL_READ_EVERY: Duration = Duration::from_secs(10);

/// Where the next read starts; see the module docs.
#[derive(Debug)]
pub struct Floor {
    /// Every row below this id is published.
    at: i64,
    /// The next floor, once every transaction below `xmax` has ended.
    proposed: Option<Proposal>,
    /// When `at` was last 0.
    since_full: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Proposal {
    first: i64,
    xmax: i64,
}

impl Default for Floor {
    fn default() -> Self {
        Self {
            at: 0,
            proposed: None,
            since_full: Instant::now(),
        }
    }
}

impl Floor {
    /// The id the next read starts from.
    pub fn start(&mut self) -> i64 {
        if self.since_full.elapsed() >= FULL_READ_EVERY {
            self.reset();
        }
        self.at
    }

    /// [`Floor::after_read`] with both found.
    fn read(&mut self, snapshot: ReadSnapshot, first: i64) {
        if let Some(p) = self.proposed {
            if snapshot.xmin >= p.xmax {
                self.at = self.at.max(p.first.min(first));
                self.proposed = None;
            }
        }
        if self.proposed.is_none() {
            self.proposed = Some(Proposal {
                first,
                xmax: snapshot.xmax,
            });
        }
    }

    /// After a read from [`Floor::start`] that ran with `snapshot` and found
    /// `first` as its smallest unpublished id. A read that found no
    /// unpublished row, or came back without its snapshot, proposes nothing.
    pub fn after_read(&mut self, snapshot: Option<ReadSnapshot>, first: Option<i64>) {
        if let (Some(snapshot), Some(first)) = (snapshot, first) {
            self.read(snapshot, first);
        }
    }

    /// Reads start from the first id again (rows were queued again below
    /// the floor, or the relay lost track of what it sent).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(xmin: i64, xmax: i64) -> ReadSnapshot {
        ReadSnapshot { xmin, xmax }
    }

    #[test]
    fn a_proposal_waits_for_every_transaction_running_at_its_read() {
        let mut f = Floor::default();
        f.read(snap(100, 105), 50);
        assert_eq!(
            f.start(),
            0,
            "transactions 100..105 may still add rows below 50"
        );
        f.read(snap(104, 110), 60);
        assert_eq!(f.start(), 0, "transaction 104 still runs");
        f.read(snap(105, 112), 70);
        assert_eq!(f.start(), 50);
    }

    #[test]
    fn a_straggler_found_when_the_proposal_settles_holds_the_floor_below_it() {
        let mut f = Floor::default();
        f.read(snap(100, 105), 50);
        // Transaction 103 committed row 40 after the first read.
        f.read(snap(105, 106), 40);
        assert_eq!(f.start(), 40);
    }

    #[test]
    fn the_floor_never_moves_down_but_resets_to_zero() {
        let mut f = Floor::default();
        f.read(snap(1, 2), 50);
        f.read(snap(2, 3), 60);
        assert_eq!(f.start(), 50);
        f.read(snap(3, 4), 70);
        assert_eq!(f.start(), 60);
        f.reset();
        assert_eq!(f.start(), 0);
    }

    #[test]
    fn a_read_that_found_nothing_proposes_nothing() {
        let mut f = Floor::default();
        f.after_read(Some(snap(1, 2)), None);
        f.after_read(None, Some(40));
        f.after_read(Some(snap(2, 3)), Some(60));
        f.after_read(Some(snap(3, 4)), Some(70));
        assert_eq!(f.start(), 60);
    }

    #[test]
    fn reads_start_from_the_first_id_now_and_then() {
        let mut f = Floor::default();
        f.read(snap(1, 2), 50);
        f.read(snap(2, 3), 60);
        f.since_full -= FULL_READ_EVERY;
        assert_eq!(f.start(), 0);
    }
}
