//! Queries on `tasks`. `user` scopes every query: `None` (no auth) sees all
//! tasks, `Some(sub)` only that user's.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::Mutex;

use crate::domain::{Task, TaskStatus};
use crate::outbox::OutboxRow;

const COLUMNS: &str =
    "id, title, description, status, user_id, created_at, updated_at, completed_at, version";

/// Binds an event (or six NULLs) as `$1`..`$7`, the parameters of
/// [`WRITE_EVENT`].
fn bind_event<'q>(
    q: QueryScalar<'q, Postgres, i64, PgArguments>,
    e: Option<&'q OutboxRow>,
) -> QueryScalar<'q, Postgres, i64, PgArguments> {
    q.bind(e.map(|e| e.event_id))
        .bind(e.map(|e| e.event_type))
        .bind(e.map(|e| e.topic.as_str()))
        .bind(e.map(|e| e.key.as_str()))
        .bind(e.map(|e| e.payload.as_slice()))
        .bind(e.map(|e| &e.headers))
        .bind(e.map(|e| e.correlation_id))
}

/// The outbox half of every change: one row per row of `t` (the task the
/// change touched), none when `$1` is NULL (events off). One statement
/// writes both, so they commit together in one round trip; `SELECT count(*)
/// FROM t` says whether the change applied.
const WRITE_EVENT: &str = "o AS (
    INSERT INTO outbox (event_id, event_type, topic, key, task_id, payload, headers, correlation_id)
    SELECT $1, $2, $3, $4, t.id, $5, $6, $7 FROM t WHERE $1::uuid IS NOT NULL)
SELECT count(*) FROM t";

/// Inserts a new task (its id from [`TaskIds`]) and its event.
#[tracing::instrument(skip_all, fields(task_id = task.id))]
pub async fn insert(
    conn: &mut PgConnection,
    task: &Task,
    event: Option<&OutboxRow>,
) -> sqlx::Result<()> {
    bind_event(
        sqlx::query_scalar(&format!(
            "WITH t AS (
                 INSERT INTO tasks (id, title, description, status, user_id, created_at, updated_at, completed_at, version)
                 VALUES ($8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id),
             {WRITE_EVENT}"
        )),
        event,
    )
    .bind(task.id)
    .bind(&task.title)
    .bind(&task.description)
    .bind(task.status().as_str())
    .bind(&task.user_id)
    .bind(task.created_at)
    .bind(task.updated_at)
    .bind(task.completed_at)
    .bind(task.version)
    .fetch_one(conn)
    .await
    .map(|_| ())
}

/// One task, if it exists and the user may see it.
#[tracing::instrument(skip(conn))]
pub async fn get(
    conn: &mut PgConnection,
    id: i64,
    user: Option<&str>,
) -> sqlx::Result<Option<Task>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Writes `after` over the task if it is still at `after.version - 1`, and
/// its event. `false` when the task changed or went away since it was read
/// (optimistic concurrency: the caller reads again). Two changes to one task
/// therefore write their outbox rows in the order of their versions.
#[tracing::instrument(skip_all, fields(task_id = after.id, version = after.version))]
pub async fn update(
    conn: &mut PgConnection,
    after: &Task,
    event: Option<&OutboxRow>,
) -> sqlx::Result<bool> {
    bind_event(
        sqlx::query_scalar(&format!(
            "WITH t AS (
                 UPDATE tasks SET title = $10, description = $11, status = $12, completed_at = $13,
                        updated_at = $14, version = $9
                 WHERE id = $8 AND version = $9 - 1 RETURNING id),
             {WRITE_EVENT}"
        )),
        event,
    )
    .bind(after.id)
    .bind(after.version)
    .bind(&after.title)
    .bind(&after.description)
    .bind(after.status().as_str())
    .bind(after.completed_at)
    .bind(after.updated_at)
    .fetch_one(conn)
    .await
    .map(|n| n == 1)
}

/// Deletes the task if it is still at `version`, and writes its event.
/// `false` when it changed or went away since it was read.
#[tracing::instrument(skip(conn, event))]
pub async fn delete(
    conn: &mut PgConnection,
    id: i64,
    version: i64,
    event: Option<&OutboxRow>,
) -> sqlx::Result<bool> {
    bind_event(
        sqlx::query_scalar(&format!(
            "WITH t AS (DELETE FROM tasks WHERE id = $8 AND version = $9 RETURNING id),
             {WRITE_EVENT}"
        )),
        event,
    )
    .bind(id)
    .bind(version)
    .fetch_one(conn)
    .await
    .map(|n| n == 1)
}

/// A page of tasks in id order, after `cursor`.
#[tracing::instrument(skip(conn))]
pub async fn list(
    conn: &mut PgConnection,
    user: Option<&str>,
    status: Option<TaskStatus>,
    after_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE id > $1 AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR status = $3)
         ORDER BY id LIMIT $4"
    ))
    .bind(after_id)
    .bind(user)
    .bind(status.map(|s| s.as_str()))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Hands out task ids, fetched from the table's sequence in blocks. A new
/// task's id is known before its insert, so its event can be encoded and
/// written by the same statement. Ids of one instance rise in creation
/// order; with several instances, each draws from its own block.
pub struct TaskIds {
    block: i64,
    state: Mutex<IdState>,
}

#[derive(Default)]
struct IdState {
    free: Vec<i64>,
    /// When the last fetch failed: requests that waited behind it fail at
    /// once instead of each waiting out its own acquire timeout.
    failed_at: Option<std::time::Instant>,
}

impl TaskIds {
    /// Ids fetched `block` at a time.
    pub fn new(block: i64) -> Self {
        Self {
            block: block.max(1),
            state: Mutex::new(IdState::default()),
        }
    }

    /// The next id; one round trip per `block` ids.
    pub async fn next(&self, pool: &PgPool) -> sqlx::Result<i64> {
        let mut state = self.state.lock().await;
        if state.free.is_empty() {
            if state
                .failed_at
                .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
            {
                return Err(super::unavailable(
                    "the database was unavailable for the last id block",
                ));
            }
            let fetched: sqlx::Result<Vec<i64>> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1)",
            )
            .bind(self.block)
            .fetch_all(pool)
            .await;
            match fetched {
                Ok(mut ids) => {
                    ids.sort_unstable_by(|a, b| b.cmp(a));
                    state.free = ids;
                    state.failed_at = None;
                }
                Err(e) => {
                    state.failed_at = Some(std::time::Instant::now());
                    return Err(e);
                }
            }
        }
        Ok(state
            .free
            .pop()
            .expect("a fetched block holds at least one id"))
    }
}
