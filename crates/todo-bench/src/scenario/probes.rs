//! /proc probes: machine CPU busy share and our own CPU time.

use std::time::Duration;

use tokio::time::Instant;

use crate::sampler;
use crate::stats;

/// Machine CPU busy share over `over`.
pub async fn cpu_busy_over(over: Duration) -> Option<f64> {
    let a = sampler::cpu_jiffies();
    tokio::time::sleep(over).await;
    cpu_busy_since(a)
}

/// Machine CPU busy share from `start` (a [`sampler::cpu_jiffies`] reading)
/// to now.
pub fn cpu_busy_since(start: Option<(u64, u64)>) -> Option<f64> {
    let (a, b) = (start?, sampler::cpu_jiffies()?);
    (b.1 > a.1).then(|| stats::round3(100.0 * (b.0 - a.0) as f64 / (b.1 - a.1) as f64))
}

/// Waits until the machine's CPU is less than `limit` percent busy over 3 s,
/// or `longest` passed.
pub async fn wait_quiet(limit: f64, longest: Duration) {
    let deadline = Instant::now() + longest;
    loop {
        let busy = cpu_busy_over(Duration::from_secs(3)).await.unwrap_or(0.0);
        if busy < limit {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("machine still {busy:.0} % busy after {longest:?}; running anyway");
            return;
        }
        eprintln!("machine {busy:.0} % busy (other work); waiting for < {limit:.0} %");
    }
}

/// CPU seconds (user + system) this process used so far.
pub fn own_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // NB: USER_HZ is 100 on every Linux we run on.
    Some(ticks / 100.0)
}
