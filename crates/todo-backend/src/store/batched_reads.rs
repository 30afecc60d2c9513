//! The reads that go through [`Batcher`](super::batcher::Batcher): a task by
//! id, as update, complete and delete read it before they write it. Under
//! load, many such reads share one statement (`store::tasks::get_many`).

use sqlx::PgPool;
use todo_runtime::trace::TraceContext;

use super::batcher::BatchStatement;
use crate::domain::Task;

/// Reads of one task each: `(task id, user)`, answered with the task if it
/// exists and the user may see it.
pub struct Reads;

impl BatchStatement for Reads {
    type Item = (i64, Option<String>);
    type Output = Option<Task>;
    const METRIC: &'static str = crate::metrics::TASK_READ_BATCH_SIZE;
    const OP: &'static str = "read";
    const SPAN: &'static str = "read batch";

    fn trace(_: &Self::Item) -> Option<&TraceContext> {
        None
    }

    async fn run_many(pool: &PgPool, items: &[Self::Item]) -> sqlx::Result<Vec<Option<Task>>> {
        super::tasks::get_many(pool, items).await
    }
}
