//! Exponential backoff with jitter, and waiting that a cancellation cuts short:
//! the one policy behind every retry of both services (handlers, outages, the
//! relay, connecting at startup).

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// `base * factor^(attempt-1)`, capped, with "equal jitter": the wait is drawn
/// uniformly from the upper half of that value, so retries of many consumers
/// spread out but never collapse to zero.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
}

impl Backoff {
    /// A policy; a factor below 1 is taken as 1.
    pub fn new(base: Duration, factor: f64, cap: Duration) -> Self {
        Self {
            base,
            factor: factor.max(1.0),
            cap,
        }
    }

    /// The ceiling of the wait after failed attempt number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self.factor.powi(attempt.saturating_sub(1).min(64) as i32);
        let ms = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        Duration::from_secs_f64(ms)
    }

    /// The jittered wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// Sleeps for `d` unless `cancel` fires first; returns false when cancelled.
pub async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_by_the_factor_until_the_cap() {
        let b = Backoff::new(
            Duration::from_millis(100),
            2.0,
            Duration::from_millis(1_000),
        );
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_millis(1_000));
        assert_eq!(b.ceiling(500), Duration::from_millis(1_000));
    }

    #[test]
    fn the_jittered_delay_stays_in_the_upper_half_of_the_ceiling() {
        let b = Backoff::new(Duration::from_millis(100), 3.0, Duration::from_secs(10));
        for attempt in 1..8 {
            let ceiling = b.ceiling(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "{d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[tokio::test]
    async fn a_cancelled_wait_returns_false() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(!sleep_or_cancel(Duration::from_secs(3600), &cancel).await);
    }
}
