//! Reads of `tasks` and the ids of new tasks. `user` scopes every query:
//! `None` (no auth) sees all tasks, `Some(sub)` only that user's. Writes, with
//! their outbox rows, are in `store::batched_writes`.

use sqlx::{PgConnection, PgPool};
use tokio::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::{Task, TaskStatus};

/// The columns of [`TaskRow`].
const COLUMNS: &str =
    "id, title, description, status, user_id, created_at, updated_at, completed_at, version";

/// A row of `tasks`.
#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    title: String,
    description: Option<String>,
    #[sqlx(try_from = "String")]
    status: StatusColumn,
    user_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
}

/// The status column, read from its text form.
struct StatusColumn(TaskStatus);

impl TryFrom<String> for StatusColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse::<TaskStatus>()
            .map(StatusColumn)
            .map_err(|_| format!("unknown task status {s}"))
    }
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Self {
            id: r.id,
            title: r.title,
            description: r.description,
            status: r.status.0,
            user_id: r.user_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
            version: r.version,
        }
    }
}

/// One task, if it exists and the user may see it.
#[tracing::instrument(skip(conn))]
pub async fn get(
    conn: &mut PgConnection,
    id: i64,
    user: Option<&str>,
) -> sqlx::Result<Option<Task>> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Task::from))
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
    .map(|rows: Vec<TaskRow>| rows.into_iter().map(Task::from).collect())
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
