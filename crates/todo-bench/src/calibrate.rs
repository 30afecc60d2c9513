//! How fast the machine is, so that reports from different machines (or from
//! one machine at different times) can be told apart: a fixed single-thread
//! CPU workload and the latency of a durable 8 KiB write, measured before the
//! load starts. Machines of one kind have been seen to differ by 3× in both.
//!
//! The workload uses the standard library only, so changes to the stack's
//! code never move the figure; only the machine (and the compiler) do.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use crate::report::Calibration;

/// Runs of the CPU workload (about 40 ms each on a slow machine); the median
/// counts, steadier than the fastest on a shared host.
const CPU_RUNS: usize = 15;
/// Durable writes timed; the median counts.
const FSYNC_WRITES: usize = 50;

/// Both figures. `dir` holds the scratch file of the write test (removed).
pub fn calibrate(dir: &Path) -> Calibration {
    Calibration {
        cpu_ms: cpu_ms(),
        fsync_us: match fsync_us(dir) {
            Ok(us) => Some(us),
            Err(e) => {
                eprintln!(
                    "calibration: timing durable writes in {} failed: {e}",
                    dir.display()
                );
                None
            }
        },
    }
}

/// Median milliseconds of [`CPU_RUNS`] runs of [`workload`].
pub fn cpu_ms() -> f64 {
    let mut times: Vec<f64> = (0..CPU_RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(workload(black_box(200_000)));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut times)
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Sorting, hashing, allocating and formatting, like a service's request
/// path: `n` pseudo-random numbers sorted, a quarter of them formatted into
/// a hash map, then looked up. Returns a checksum so nothing is optimised out.
fn workload(n: usize) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut values: Vec<u64> = (0..n).map(|_| next()).collect();
    values.sort_unstable();
    let map: HashMap<u64, String> = values
        .iter()
        .step_by(4)
        .map(|&v| (v, format!("task {v}")))
        .collect();
    values
        .iter()
        .filter_map(|v| map.get(v))
        .fold(0u64, |acc, s| acc.wrapping_add(s.len() as u64))
}

/// Median microseconds of an 8 KiB overwrite followed by `fdatasync` (what
/// a database's commit waits for on this disk).
pub fn fsync_us(dir: &Path) -> std::io::Result<f64> {
    let path = dir.join(".calibration-fsync");
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        let block = [0x5au8; 8192];
        // NB: written once and synced before timing, as a database's WAL
        // segments are: a write that grows the file also flushes its size.
        for _ in 0..FSYNC_WRITES {
            file.write_all(&block)?;
        }
        file.sync_all()?;
        let mut times = Vec::with_capacity(FSYNC_WRITES);
        for i in 0..FSYNC_WRITES {
            let start = Instant::now();
            file.write_all_at(&block, (i * block.len()) as u64)?;
            file.sync_data()?;
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok(median(&mut times))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_and_finds_every_formatted_value() {
        // A quarter of the values are in the map, each "task " + digits long.
        let sum = workload(1_000);
        assert_eq!(sum, workload(1_000));
        assert!(sum >= 250 * 6, "{sum}");
    }

    #[test]
    fn calibration_measures_both_figures() {
        let dir = std::env::temp_dir().join(format!("calibrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = calibrate(&dir);
        assert!(c.cpu_ms > 0.0 && c.cpu_ms.is_finite(), "{c:?}");
        assert!(c.fsync_us.is_some_and(|us| us > 0.0), "{c:?}");
        assert!(!dir.join(".calibration-fsync").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
