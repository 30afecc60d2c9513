//! Consumer lag per assigned partition: high watermark minus committed offset.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tokio_util::sync::CancellationToken;

use super::KafkaConsumer;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples lag every `every` until cancelled.
pub(crate) async fn sample(
    consumer: Weak<KafkaConsumer>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(c) = consumer.upgrade() else { return };
        match sample_once(c).await {
            Ok(lags) => {
                for (topic, partition, lag) in lags {
                    crate::metrics::lag(&topic, partition, lag);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not sample consumer lag"),
        }
    }
}

/// Lag of every assigned partition.
pub(crate) async fn sample_once(
    consumer: Arc<KafkaConsumer>,
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    // NB: the committed-offset and watermark calls block; they run off the
    // runtime, the watermark queries side by side (one round trip each).
    let c = consumer.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let assignment = c.assignment()?;
        if assignment.count() == 0 {
            return Ok::<_, anyhow::Error>(Vec::new());
        }
        let committed = c.committed_offsets(assignment, CALL_TIMEOUT)?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect())
    })
    .await??;
    let queries = committed.into_iter().map(|(topic, partition, offset)| {
        let c = consumer.clone();
        tokio::task::spawn_blocking(move || {
            let (low, high) = c.fetch_watermarks(&topic, partition, CALL_TIMEOUT)?;
            let from = match offset {
                Offset::Offset(o) => o,
                _ => low,
            };
            Ok::<_, anyhow::Error>((topic, partition, (high - from).max(0)))
        })
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(queries).await {
        out.push(r??);
    }
    Ok(out)
}
