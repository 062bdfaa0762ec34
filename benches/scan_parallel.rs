//! Benchmark: a scan of 16 nodes that each answer 1 s late must take at
//! most 2x the time of a scan of one such node (a sequential scan, like
//! ProxCLMC's, takes 16x).
//!
//! Real sshd processes on loopback addresses (the integration tests'
//! harness), each with `ForceCommand sleep 1; cat CPUINFO …` and its own
//! empty home for root (as a fresh node has: this machine's `~/.bashrc`
//! initialises pyenv on every login, which made sixteen logins on two
//! shared cores measure the dotfiles, ratio 2.4–2.6); the measured unit is
//! the whole `pve-cpuguard scan` process. Run by hand, as root:
//!
//! ```sh
//! cargo bench --bench scan_parallel
//! ```
//!
//! Exits 1 when the ratio is above 2.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

use std::time::Duration;

use harness::SshCluster;

const DELAY: f64 = 1.0;
const RUNS: usize = 5;

fn cluster(nodes: usize) -> SshCluster {
    let samples = harness::all_samples()
        .into_iter()
        .filter(|n| pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n)).is_ok())
        .collect::<Vec<_>>();
    let mut c = SshCluster::new();
    c.timeout = 10.0;
    for i in 0..nodes {
        c.sshd_delayed(
            &format!("node{:02}", i + 1),
            &samples[i % samples.len()],
            Some(DELAY),
        );
    }
    c.write_config();
    c
}

/// Median wall time of `RUNS` scans.
fn measure(c: &SshCluster) -> (Duration, Vec<Duration>) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let run = c.run(&["scan"]);
            assert_eq!(run.code, 0, "scan failed:\n{}\n{}", run.stdout, run.stderr);
            run.elapsed
        })
        .collect();
    let all = times.clone();
    times.sort();
    (times[RUNS / 2], all)
}

fn main() {
    let one = cluster(1);
    let (t1, all1) = measure(&one);
    drop(one);
    let sixteen = cluster(16);
    let (t16, all16) = measure(&sixteen);
    let ratio = t16.as_secs_f64() / t1.as_secs_f64();
    let fmt = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "scan, 1 node answering {DELAY} s late:   median {:.3} s  (runs: {})",
        t1.as_secs_f64(),
        fmt(&all1)
    );
    println!(
        "scan, 16 nodes answering {DELAY} s late: median {:.3} s  (runs: {})",
        t16.as_secs_f64(),
        fmt(&all16)
    );
    println!("ratio 16/1: {ratio:.2} (limit 2.00; sequential would be >= 16)");
    if ratio > 2.0 {
        eprintln!("FAIL: 16 nodes took more than twice one node");
        std::process::exit(1);
    }
}
