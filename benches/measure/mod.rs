//! Whole-process measurements for the benchmarks: wall time of repeated
//! runs (median, p90) and the peak resident memory of the children.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What repeated runs of one command took.
pub struct Sample {
    pub median: Duration,
    pub p90: Duration,
    pub min: Duration,
    pub max_rss_kib: i64,
    pub runs: usize,
}

/// Runs `make()` `warmup + runs` times (stdout/stderr discarded) and
/// measures the last `runs`. Every run must exit with `expect_code`.
pub fn measure(
    mut make: impl FnMut() -> Command,
    warmup: usize,
    runs: usize,
    expect_code: i32,
) -> Sample {
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let mut cmd = make();
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let status = cmd.status().expect("run the command");
        let elapsed = t.elapsed();
        assert_eq!(status.code(), Some(expect_code), "unexpected exit status");
        if i >= warmup {
            times.push(elapsed);
        }
    }
    times.sort();
    Sample {
        median: times[times.len() / 2],
        p90: times[times.len() * 9 / 10],
        min: times[0],
        max_rss_kib: max_rss_of_children(),
        runs,
    }
}

/// Peak RSS of the largest child waited for so far (kernel's ru_maxrss, KiB).
fn max_rss_of_children() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    usage.ru_maxrss
}

/// One line for the report.
pub fn report(name: &str, s: &Sample) {
    println!(
        "{name}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms over {} runs; peak RSS {:.1} MB",
        s.median.as_secs_f64() * 1000.0,
        s.p90.as_secs_f64() * 1000.0,
        s.min.as_secs_f64() * 1000.0,
        s.runs,
        s.max_rss_kib as f64 / 1024.0
    );
}
