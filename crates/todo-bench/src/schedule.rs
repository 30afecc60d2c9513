//! Open-loop schedules: when each request is meant to be sent, decided by the
//! clock alone. A slow response never delays the next send, and a request's
//! latency is measured from its intended send time, so a stall shows up in the
//! latency of every request it delayed (no coordinated omission).

use std::time::Duration;

/// A constant rate for a while.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Requests per second.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
}

/// Consecutive steps (one step: a constant rate; several: a ramp).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One scheduled send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// Index of the step it belongs to.
    pub step: usize,
    /// Intended send time, from the start of the run.
    pub at: Duration,
}

impl Schedule {
    /// `rate` per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        Self {
            steps: vec![Step { rate, duration }],
        }
    }

    /// One step per rate, each `each` long.
    pub fn ramp(rates: &[f64], each: Duration) -> Self {
        Self {
            steps: rates
                .iter()
                .map(|&rate| Step {
                    rate,
                    duration: each,
                })
                .collect(),
        }
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        self.steps.iter().map(|s| s.duration).sum()
    }

    /// Start of step `i`, from the start of the run.
    pub fn step_start(&self, i: usize) -> Duration {
        self.steps[..i].iter().map(|s| s.duration).sum()
    }

    /// Number of sends in step `i`: the i-th send of a step is at i / rate,
    /// for every i / rate < duration.
    pub fn step_sends(&self, i: usize) -> u64 {
        let s = &self.steps[i];
        if s.rate <= 0.0 {
            return 0;
        }
        (s.duration.as_secs_f64() * s.rate - 1e-9).ceil().max(0.0) as u64
    }

    /// Sends over the whole schedule.
    pub fn total_sends(&self) -> u64 {
        (0..self.steps.len()).map(|i| self.step_sends(i)).sum()
    }

    /// Every send, in time order.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.steps.len()).flat_map(move |step| {
            let start = self.step_start(step);
            let rate = self.steps[step].rate;
            (0..self.step_sends(step)).map(move |j| Slot {
                step,
                at: start + Duration::from_secs_f64(j as f64 / rate),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_sends_rate_times_duration_evenly_spaced() {
        let s = Schedule::constant(1_000.0, Duration::from_secs(3));
        let slots: Vec<Slot> = s.slots().collect();
        assert_eq!(slots.len(), 3_000);
        assert_eq!(s.total_sends(), 3_000);
        assert_eq!(slots[0].at, Duration::ZERO);
        assert_eq!(slots[1].at, Duration::from_millis(1));
        assert_eq!(slots[2_999].at, Duration::from_millis(2_999));
    }

    #[test]
    fn a_fractional_rate_rounds_the_last_send_inside_the_window() {
        let s = Schedule::constant(2.5, Duration::from_secs(1));
        let at: Vec<Duration> = s.slots().map(|x| x.at).collect();
        assert_eq!(
            at,
            vec![
                Duration::ZERO,
                Duration::from_millis(400),
                Duration::from_millis(800)
            ]
        );
    }

    #[test]
    fn ramp_steps_follow_each_other_and_sends_never_go_back_in_time() {
        let s = Schedule::ramp(&[10.0, 20.0], Duration::from_secs(2));
        assert_eq!(s.duration(), Duration::from_secs(4));
        assert_eq!(s.step_start(1), Duration::from_secs(2));
        let slots: Vec<Slot> = s.slots().collect();
        assert_eq!(slots.len(), 20 + 40);
        assert!(slots.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(
            slots[20],
            Slot {
                step: 1,
                at: Duration::from_secs(2)
            }
        );
        assert!(slots.iter().all(|x| x.at < s.duration()));
    }

    #[test]
    fn a_zero_rate_step_sends_nothing() {
        let s = Schedule::constant(0.0, Duration::from_secs(5));
        assert_eq!(s.slots().count(), 0);
    }
}
