//! Batched statements (group commit): concurrent requests hand their items
//! to a few tasks, which run whatever is queued in one statement and one
//! commit and answer each request once that commit is done. Under load this
//! turns many small statements, each with its own round trip (and, for
//! writes, its own WAL flush), into a few larger ones; a lone request runs at
//! once, with no added wait.
//!
//! What a batch is, and its statement, is a [`BatchStatement`]: the writes
//! are in `store::batched_writes`, the reads in `store::batched_reads`. A
//! batch that fails is run again item by item. When the database is
//! unreachable, the batch and everything queued behind it fail at once
//! (503), instead of each batch waiting out its own acquire timeout.

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use todo_runtime::trace::{Span, SpanKind, TraceContext};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::unavailable;
use crate::error::is_unavailable;

/// One kind of batched statement: one statement for any number of items.
pub trait BatchStatement: Send + Sync + 'static {
    /// What one request asks for.
    type Item: Send + Sync + 'static;
    /// What one request gets back.
    type Output: Send + 'static;
    /// The histogram of items per statement: `metrics::TASK_WRITE_BATCH_SIZE`
    /// or `metrics::TASK_READ_BATCH_SIZE`.
    const METRIC: &'static str;
    /// Its `op` label, also in the logs.
    const OP: &'static str;
    /// The name of a batch's span.
    const SPAN: &'static str;
    /// The trace of the request that asked for `item`, if any: the batch's
    /// span links to it.
    fn trace(item: &Self::Item) -> Option<&TraceContext>;
    /// Runs `items` in one statement; one output per item, in order.
    fn run_many(
        pool: &PgPool,
        items: &[Self::Item],
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Output>>> + Send;
}

/// Runs `items` in one statement, or, if that fails for another reason
/// than an outage, one statement per item, so that one bad row fails only
/// its own request. One result per item, in order.
pub async fn run_batch<W: BatchStatement>(
    pool: &PgPool,
    items: &[W::Item],
) -> Vec<sqlx::Result<W::Output>> {
    let e = match W::run_many(pool, items).await {
        Ok(out) => return out.into_iter().map(Ok).collect(),
        Err(e) => e,
    };
    if items.len() == 1 {
        return vec![Err(e)];
    }
    if is_unavailable(&e) {
        tracing::warn!(error = %e, op = W::OP, rows = items.len(), "batched statement failed: database unavailable");
        let why = e.to_string();
        return items.iter().map(|_| Err(unavailable(&why))).collect();
    }
    tracing::warn!(error = %e, op = W::OP, rows = items.len(), "batched statement failed; running its items one by one");
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(
            W::run_many(pool, std::slice::from_ref(item))
                .await
                .map(|mut out| out.pop().expect("one output per item")),
        );
    }
    results
}

type Pending<W> = (
    <W as BatchStatement>::Item,
    oneshot::Sender<sqlx::Result<<W as BatchStatement>::Output>>,
);

/// Hands items of kind `W` to a few tasks that batch them.
pub struct Batcher<W: BatchStatement> {
    queue: mpsc::Sender<Pending<W>>,
}

impl<W: BatchStatement> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: BatchStatement> Batcher<W> {
    /// Starts `writers` tasks on `pool`, each running up to `max_batch`
    /// items per statement. They stop once every clone of the batcher is
    /// dropped and the queue is empty.
    pub fn start(pool: PgPool, writers: usize, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(writers.max(1) * max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(run_loop::<W>(pool.clone(), rx.clone(), max_batch));
        }
        Self { queue }
    }

    /// Runs `item`; returns after its batch is committed.
    pub async fn run(&self, item: W::Item) -> sqlx::Result<W::Output> {
        let (done, result) = oneshot::channel();
        self.queue
            .send((item, done))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        result.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run_loop<W: BatchStatement>(
    pool: PgPool,
    rx: Arc<Mutex<mpsc::Receiver<Pending<W>>>>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            // Whatever else is already waiting joins this batch; nothing waits
            // for more to arrive.
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let (items, answers): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        crate::metrics::batch_size(W::METRIC, W::OP, items.len());
        // Its own trace: one statement serves many requests' traces, each
        // linked (a span has one parent).
        let mut span = Span::start_linked(
            W::SPAN,
            SpanKind::Internal,
            None,
            items.iter().filter_map(W::trace),
        );
        span.record(|| {
            vec![todo_runtime::trace::Attribute::new(
                "batch.size",
                items.len() as i64,
            )]
        });
        let mut database_unavailable = false;
        for (result, done) in run_batch::<W>(&pool, &items).await.into_iter().zip(answers) {
            database_unavailable |= result.as_ref().is_err_and(is_unavailable);
            if let Err(e) = &result {
                span.fail(|| e.to_string());
            }
            let _ = done.send(result);
        }
        if database_unavailable {
            // Everything queued behind this batch would wait for the same
            // unreachable database, one acquire timeout per batch: answer it
            // now (503), so that clients see the outage at once.
            let mut rx = rx.lock().await;
            while let Ok((_, done)) = rx.try_recv() {
                let _ = done.send(Err(unavailable(
                    "the database was unavailable for the previous batch",
                )));
            }
        }
    }
}
