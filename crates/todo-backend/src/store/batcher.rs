//! Group commit: concurrent requests hand their writes to a few writer
//! tasks, which write whatever is queued in one statement and one commit and
//! answer each request once that commit is done. Under load this turns many
//! small commits, each with its own WAL flush and round trip, into a few
//! larger ones; a lone request is written at once, with no added wait.
//!
//! What a batch is, and its statement, is a [`BatchWrite`]
//! (`store::batched_writes`). A batch that fails is written again item by
//! item. When the database is unreachable, the batch and everything queued
//! behind it fail at once (503), instead of each batch waiting out its own
//! acquire timeout.

use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use todo_runtime::trace::{Span, SpanKind, TraceContext};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::unavailable;
use crate::error::is_unavailable;

/// One kind of batched write: one statement for any number of items.
pub trait BatchWrite: Send + Sync + 'static {
    /// What one request asks to write.
    type Item: Send + Sync + 'static;
    /// What one request gets back.
    type Output: Send + 'static;
    /// The `op` label of `task_write_batch_size`.
    const OP: &'static str;
    /// The name of a batch's span.
    const SPAN: &'static str;
    /// The trace of the request that asked for `item`, if any: the batch's
    /// span links to it.
    fn trace(item: &Self::Item) -> Option<&TraceContext>;
    /// Writes `items` in one statement; one output per item, in order.
    fn write_many(
        pool: &PgPool,
        items: &[Self::Item],
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Output>>> + Send;
}

/// Writes `items` in one statement, or, if that fails for another reason
/// than an outage, one statement per item, so that one bad row fails only
/// its own request. One result per item, in order.
pub async fn write_batch<W: BatchWrite>(
    pool: &PgPool,
    items: &[W::Item],
) -> Vec<sqlx::Result<W::Output>> {
    let e = match W::write_many(pool, items).await {
        Ok(out) => return out.into_iter().map(Ok).collect(),
        Err(e) => e,
    };
    if items.len() == 1 {
        return vec![Err(e)];
    }
    if is_unavailable(&e) {
        tracing::warn!(error = %e, op = W::OP, rows = items.len(), "batched write failed: database unavailable");
        let why = e.to_string();
        return items.iter().map(|_| Err(unavailable(&why))).collect();
    }
    tracing::warn!(error = %e, op = W::OP, rows = items.len(), "batched write failed; writing its rows one by one");
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(
            W::write_many(pool, std::slice::from_ref(item))
                .await
                .map(|mut out| out.pop().expect("one output per item")),
        );
    }
    results
}

type Pending<W> = (
    <W as BatchWrite>::Item,
    oneshot::Sender<sqlx::Result<<W as BatchWrite>::Output>>,
);

/// Hands writes of kind `W` to a few writer tasks that batch them.
pub struct Batcher<W: BatchWrite> {
    queue: mpsc::Sender<Pending<W>>,
}

impl<W: BatchWrite> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<W: BatchWrite> Batcher<W> {
    /// Starts `writers` writer tasks on `pool`, each writing up to
    /// `max_batch` items per statement. They stop once every clone of the
    /// batcher is dropped and the queue is empty.
    pub fn start(pool: PgPool, writers: usize, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, rx) = mpsc::channel(writers.max(1) * max_batch * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_loop::<W>(pool.clone(), rx.clone(), max_batch));
        }
        Self { queue }
    }

    /// Writes `item`; returns after its batch is committed.
    pub async fn write(&self, item: W::Item) -> sqlx::Result<W::Output> {
        let (done, result) = oneshot::channel();
        self.queue
            .send((item, done))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        result.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn write_loop<W: BatchWrite>(
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
        crate::metrics::write_batch(W::OP, items.len());
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
        for (result, done) in write_batch::<W>(&pool, &items)
            .await
            .into_iter()
            .zip(answers)
        {
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
