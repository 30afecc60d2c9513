//! Consumer lag per assigned partition: high watermark minus committed offset.

use std::sync::Weak;
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
        // NB: metadata, committed-offset and watermark calls block.
        let sampled = tokio::task::spawn_blocking(move || sample_once(&c)).await;
        match sampled {
            Ok(Ok(lags)) => {
                for (topic, partition, lag) in lags {
                    crate::metrics::lag(&topic, partition, lag);
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "could not sample consumer lag"),
            Err(e) => tracing::warn!(error = %e, "lag sampler panicked"),
        }
    }
}

/// Lag of every assigned partition.
pub(crate) fn sample_once(consumer: &KafkaConsumer) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let assignment = consumer.assignment()?;
    if assignment.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer.committed_offsets(assignment, CALL_TIMEOUT)?;
    let mut out = Vec::new();
    for e in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), CALL_TIMEOUT)?;
        let from = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        out.push((e.topic().to_owned(), e.partition(), (high - from).max(0)));
    }
    Ok(out)
}
