//! The task use cases. Every change writes the task and its outbox event in
//! one statement (so one transaction and one round trip; see
//! `store::batched_writes`), then wakes the relay; Kafka is never on the
//! request path. Changes to an existing task read it, compute the new
//! version and write it only if the task is still at the version read
//! (optimistic concurrency), retrying when another change got there first.
//! A task this instance wrote recently is not read: its state as written
//! (`RecentTasks`) stands in for the read, under the same version check.

use std::sync::Arc;

use sqlx::PgPool;
use todo_events::Payload;

use crate::domain::{now, Task, TaskDescription, TaskId, TaskStatus, TaskTitle};
use crate::error::{ApiError, Result};
use crate::outbox::{payloads, EventWriter, Origin, OutboxRow};
use crate::service::recent_tasks::RecentTasks;
use crate::store::batched_reads::Reads;
use crate::store::batched_writes::{Changes, Creates, Deletes};
use crate::store::batcher::Batcher;
use crate::store::tasks::{self as store, TaskIds};

/// Reads and writes of one change before it gives up (409) because other
/// changes to the same task kept landing between its read and its write.
const MAX_ATTEMPTS: u32 = 8;

/// How tasks are written: group commit by a few writer tasks per kind of
/// write.
#[derive(Clone, Copy, Debug)]
pub struct WriteSettings {
    /// Task ids taken from the database at a time.
    pub id_block: i64,
    /// Writer tasks per kind of write (create, change, delete).
    pub writers: usize,
    /// Most writes in one statement.
    pub max_batch: usize,
    /// Bytes of recently written tasks kept to skip the read before a
    /// change (0: off).
    pub cache_bytes: u64,
}

/// The task use cases over one database. `user` scopes every one: `None`
/// (no auth) sees all tasks, `Some(sub)` only that user's; a task the user
/// may not see does not exist (404).
#[derive(Clone)]
pub struct Tasks {
    pool: PgPool,
    events: EventWriter,
    ids: Arc<TaskIds>,
    creates: Batcher<Creates>,
    changes: Batcher<Changes>,
    deletes: Batcher<Deletes>,
    reads: Batcher<Reads>,
    recent: RecentTasks,
}

/// What `PUT /tasks/{id}` asks to change; `None` keeps a field.
#[derive(Debug, Default)]
pub struct Edit {
    /// New title.
    pub title: Option<TaskTitle>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<TaskDescription>>,
    /// New status.
    pub status: Option<TaskStatus>,
}

/// Which tasks a list asks for.
#[derive(Clone, Copy, Debug)]
pub struct ListQuery {
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Tasks with ids above this one (the previous page's cursor; 0: from the start).
    pub after: i64,
    /// Page size.
    pub limit: i64,
}

/// One page of tasks in id order.
#[derive(Debug)]
pub struct Page {
    /// The tasks.
    pub items: Vec<Task>,
    /// The id after which the next page starts; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// What a change does to the task it read.
enum Next {
    /// Nothing: the task is answered as it is, no new version, no event.
    Keep,
    /// The task's new state and its event.
    Change(Task, Payload),
    /// The task goes, with this event.
    Delete(Payload),
}

impl Tasks {
    /// The use cases over `pool`, writing events with `events`; starts the
    /// batch writers.
    pub fn new(pool: PgPool, events: EventWriter, settings: WriteSettings) -> Self {
        let WriteSettings {
            id_block,
            writers,
            max_batch,
            cache_bytes,
        } = settings;
        Self {
            ids: Arc::new(TaskIds::new(id_block)),
            creates: Batcher::start(pool.clone(), writers, max_batch),
            changes: Batcher::start(pool.clone(), writers, max_batch),
            deletes: Batcher::start(pool.clone(), writers, max_batch),
            reads: Batcher::start(pool.clone(), writers, max_batch),
            recent: RecentTasks::new(cache_bytes),
            pool,
            events,
        }
    }

    /// Creates a task; publishes `task.created`.
    pub async fn create(
        &self,
        user: Option<&str>,
        origin: Origin,
        title: &TaskTitle,
        description: Option<&TaskDescription>,
    ) -> Result<Task> {
        let id = self.ids.next(&self.pool).await?;
        let task = Task::new(id, title, description, user, now());
        let event = self.prepare(payloads::created(&task), origin)?;
        self.creates.run((task.clone(), event)).await?;
        self.recent.remember(&task);
        self.events.wake();
        Ok(task)
    }

    /// One task.
    pub async fn get(&self, user: Option<&str>, id: TaskId) -> Result<Task> {
        self.read(id.get(), user).await
    }

    /// A page of tasks in id order.
    pub async fn list(&self, user: Option<&str>, query: ListQuery) -> Result<Page> {
        let ListQuery {
            status,
            after,
            limit,
        } = query;
        let mut conn = self.pool.acquire().await?;
        // One more than the page: whether it exists says if a next page does.
        let mut items = store::list(&mut conn, user, status, after, limit + 1).await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|t| t.id)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Changes a task's title, description or status; publishes
    /// `task.updated` with the fields that changed (nothing changed: no new
    /// version, no event). Returns the task after the change.
    pub async fn update(
        &self,
        user: Option<&str>,
        origin: Origin,
        id: TaskId,
        edit: &Edit,
    ) -> Result<Task> {
        self.write_checked(id.get(), user, origin, |before| {
            let title = edit
                .title
                .as_ref()
                .map_or(before.title.as_str(), |t| t.as_str());
            let description = match &edit.description {
                Some(d) => d.as_ref().map(|d| d.as_str()),
                None => before.description.as_deref(),
            };
            let status = edit.status.unwrap_or(before.status());
            if title == before.title
                && description == before.description.as_deref()
                && status == before.status()
            {
                return Next::Keep;
            }
            let after = before.changed(title, description, status, now());
            let payload = payloads::updated(before, &after);
            Next::Change(after, payload)
        })
        .await
    }

    /// Marks a task complete; publishes `task.completed` (already complete:
    /// no event). Returns the task, complete.
    pub async fn complete(&self, user: Option<&str>, origin: Origin, id: TaskId) -> Result<Task> {
        self.write_checked(id.get(), user, origin, |before| {
            if before.status() == TaskStatus::Complete {
                return Next::Keep;
            }
            let after = before.changed(
                &before.title,
                before.description.as_deref(),
                TaskStatus::Complete,
                now(),
            );
            let payload = payloads::completed(&after);
            Next::Change(after, payload)
        })
        .await
    }

    /// Deletes a task; publishes `task.deleted`.
    pub async fn delete(&self, user: Option<&str>, origin: Origin, id: TaskId) -> Result<()> {
        self.write_checked(id.get(), user, origin, |before| {
            Next::Delete(payloads::deleted(before, now()))
        })
        .await
        .map(drop)
    }

    /// Reads the task, asks `next` what becomes of it, and writes that (with
    /// its event) if the task is still at the version read; otherwise reads
    /// again, up to [`MAX_ATTEMPTS`]. Returns the task as written (a deleted
    /// one as it was last read; an unchanged one as it is).
    ///
    /// The first attempt takes the task from `recent` when it is there. A
    /// write from it that does not apply means the row moved on: the task is
    /// forgotten and read. An answer without a write (`Next::Keep`) is never
    /// given from `recent`: the task is read to confirm it.
    async fn write_checked(
        &self,
        id: i64,
        user: Option<&str>,
        origin: Origin,
        next: impl Fn(&Task) -> Next,
    ) -> Result<Task> {
        let mut remembered = self.recent.lookup(id, user);
        for _ in 0..MAX_ATTEMPTS {
            let from_recent = remembered.is_some();
            let before = match remembered.take() {
                Some(task) => task,
                None => self.read(id, user).await?,
            };
            let written = match next(&before) {
                Next::Keep if from_recent => continue,
                Next::Keep => return Ok(before),
                Next::Change(after, payload) => {
                    let event = self.prepare(payload, origin)?;
                    let applied = self.changes.run((after.clone(), event)).await?;
                    if applied {
                        self.recent.remember(&after);
                    }
                    applied.then_some(after)
                }
                Next::Delete(payload) => {
                    let event = self.prepare(payload, origin)?;
                    let applied = self.deletes.run((before.id, before.version, event)).await?;
                    if applied {
                        self.recent.forget(id);
                    }
                    applied.then_some(before)
                }
            };
            match written {
                Some(task) => {
                    self.events.wake();
                    return Ok(task);
                }
                None if from_recent => self.recent.found_stale(id),
                None => {}
            }
        }
        Err(ApiError::Conflict(id))
    }

    /// The task as the user may see it, or 404. Reads that arrive together
    /// share one statement (`Reads`), as writes do.
    async fn read(&self, id: i64, user: Option<&str>) -> Result<Task> {
        self.reads
            .run((id, user.map(str::to_owned)))
            .await?
            .ok_or(ApiError::TaskNotFound(id))
    }

    /// The outbox row of `payload` (`None` when events are off). An event of
    /// ours that does not encode is a bug, not the client's fault.
    fn prepare(&self, payload: Payload, origin: Origin) -> Result<Option<OutboxRow>> {
        self.events
            .prepare(payload, origin)
            .map_err(|e| ApiError::Internal(e.into()))
    }
}
