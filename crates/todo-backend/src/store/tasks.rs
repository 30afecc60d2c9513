//! Reads of `tasks` and the ids of new tasks. `user` scopes every query:
//! `None` (no auth) sees all tasks, `Some(sub)` only that user's. Writes, with
//! their outbox rows, are in `store::batched_writes`.

use sqlx::{PgConnection, PgPool, QueryBuilder};
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

/// Tasks by id, any number in one statement: for each `(id, user)`, the
/// task if it exists and that user may see it, in the order asked.
pub async fn get_many(
    pool: &PgPool,
    items: &[(i64, Option<String>)],
) -> sqlx::Result<Vec<Option<Task>>> {
    let rows: Vec<OrderedTaskRow> = sqlx::query_as(&format!(
        "SELECT v.ord, {COLUMNS}
         FROM unnest($1::int[], $2::bigint[], $3::text[]) AS v(ord, want_id, want_user)
         JOIN tasks ON id = v.want_id AND (v.want_user IS NULL OR user_id = v.want_user)"
    ))
    .bind((0..items.len() as i32).collect::<Vec<_>>())
    .bind(items.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(items.iter().map(|(_, u)| u.as_deref()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let mut tasks = vec![None; items.len()];
    for r in rows {
        tasks[r.ord as usize] = Some(r.task.into());
    }
    Ok(tasks)
}

/// A row of `tasks` with the position of the request that asked for it.
#[derive(sqlx::FromRow)]
struct OrderedTaskRow {
    ord: i32,
    #[sqlx(flatten)]
    task: TaskRow,
}

/// A page of tasks in id order, after `cursor`. One statement per
/// combination of filters, each a plain comparison: connections plan a
/// statement once (`todo_runtime::db`), and a plan for `($2 IS NULL OR
/// user_id = $2)` could use neither `tasks_user_id_idx` nor `tasks_status_idx`.
#[tracing::instrument(skip(conn))]
pub async fn list(
    conn: &mut PgConnection,
    user: Option<&str>,
    status: Option<TaskStatus>,
    after_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Task>> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM tasks WHERE id > "));
    query.push_bind(after_id);
    if let Some(user) = user {
        query.push(" AND user_id = ").push_bind(user);
    }
    if let Some(status) = status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    query.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<TaskRow> = query.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(Task::from).collect())
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
