//! Benchmark: `pve-cpuguard-hook <vmid> pre-start` as a whole process with a
//! warm 64-node cache, the way Proxmox VE runs it on every VM start, on a
//! 2-thread and on a 256-thread host. Targets (issue 16): median at most
//! 2 ms on either, the 256-thread host within 1.25× of the 2-thread one,
//! peak RSS at most 10 MiB.
//!
//! Both hosts' /proc/cpuinfo are generated from the same real sample
//! (tests/it/harness/threads.rs), so only the thread count differs. Each host's
//! own record is the one `publish` writes there (uniform CPUs, its running
//! kernel), so the hook takes the path a real node takes: the first CPU
//! block checked against the record instead of the whole file read
//! (`crate::cache::current`). For comparison, the 256-thread host is also
//! measured with a record that cannot stand in (no kernel recorded), which
//! forces the full reading.
//!
//! ```sh
//! cargo bench --bench hook_prestart
//! ```
//!
//! The binary measured is the one the package installs when
//! `packaging/build-deb.sh` has run (`target/assets/pve-cpuguard-hook`,
//! linked statically), else the one `cargo` links. With `hyperfine` in
//! `PATH` each case is also timed by hyperfine beside `/bin/true` (the exec
//! floor) in the same run.
//!
//! `HOOK_BENCH_BINARY=PATH` measures another build of the hook on the same
//! fixtures (an older release, to compare before and after a change).
//!
//! Exits 1 when a target is missed. With `HOOK_BENCH_KEEP=1` the fixtures
//! are kept and each case's environment printed, to run the hook again
//! on them (`env VARS… valgrind --tool=callgrind pve-cpuguard-hook 100
//! pre-start`).

#[path = "../tests/it/harness/mod.rs"]
mod harness;
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::cluster::Cluster;
use pve_cpuguard::cache::{Cache, NodeRecord};

const SAMPLE: &str = "hwloc-xeon-gold-6230-cascadelake";
const LOCAL: &str = "pve64";

/// A 64-node cluster whose node `pve64` is a host with `threads` threads;
/// `usable`: its record carries the running kernel as `publish` writes it.
fn fixture(threads: usize, usable: bool) -> (Cluster, PathBuf) {
    let samples: Vec<String> = harness::all_samples()
        .into_iter()
        .filter(|n| pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n)).is_ok())
        .collect();
    let names: Vec<String> = (1..=64).map(|i| format!("pve{i:02}")).collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), samples[i % samples.len()].as_str()))
        .collect();
    let mut c = Cluster::new(&pairs);
    let text = std::fs::read_to_string(harness::cpuinfo(SAMPLE)).unwrap();
    let local_cpuinfo = c.path(&format!("cpuinfo-{threads}"));
    std::fs::write(
        &local_cpuinfo,
        harness::threads::cpuinfo_with_threads(&text, threads),
    )
    .unwrap();
    let mut cache = Cache::load(&c.cache()).unwrap();
    let info = pve_cpuguard::reach::local::cpuinfo(&local_cpuinfo).unwrap();
    assert_eq!(info.processors, threads);
    let kernel = usable
        .then(pve_cpuguard::cache::current::kernel_release)
        .flatten();
    let mut rec = NodeRecord::new(LOCAL, "local", &info, kernel, cache.updated_at);
    rec.source = Some("local".into());
    cache.nodes.insert(LOCAL.into(), rec);
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    c.vm(
        100,
        "pve01",
        "boot: order=scsi0\ncores: 2\ncpu: x86-64-v2-AES\nmemory: 8192\nname: bench\nostype: l26\n",
    );
    (c, local_cpuinfo)
}

fn env_of(c: &Cluster, cpuinfo: &Path, migrated_from: &str) -> Vec<(String, PathBuf)> {
    let mut env: Vec<(String, PathBuf)> = c
        .node_env(LOCAL)
        .into_iter()
        .filter(|(k, _)| *k != "PVE_CPUGUARD_CPUINFO")
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("PVE_CPUGUARD_CPUINFO".into(), cpuinfo.to_path_buf()));
    env.push(("PVE_MIGRATED_FROM".into(), PathBuf::from(migrated_from)));
    env
}

fn main() {
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/assets/pve-cpuguard-hook");
    let (build, bin) = if let Some(other) = std::env::var_os("HOOK_BENCH_BINARY") {
        ("HOOK_BENCH_BINARY", PathBuf::from(other))
    } else if packaged.exists() {
        ("packaged, static", packaged)
    } else {
        (
            "cargo build, dynamic",
            PathBuf::from(env!("CARGO_BIN_EXE_pve-cpuguard-hook")),
        )
    };
    let keep = std::env::var_os("HOOK_BENCH_KEEP").is_some();
    let hyperfine = Command::new("hyperfine").arg("--version").output().is_ok();
    // For scale: what starting any process costs on this machine now
    // (first, so that its peak RSS is its own).
    let floor = measure::measure(|| Command::new("/bin/true"), 30, 500, 0);
    measure::report("for scale, /bin/true", &floor);

    let mut ok = true;
    let mut medians = std::collections::BTreeMap::new();
    for (threads, usable) in [(2, true), (256, true), (256, false)] {
        let (c, cpuinfo) = fixture(threads, usable);
        for (label, from) in [("live migration pve01 ->", "pve01"), ("start on", "")] {
            let env = env_of(&c, &cpuinfo, from);
            if keep {
                // What to run it with again, e.g. under callgrind.
                let vars: Vec<String> = env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.display()))
                    .collect();
                println!("{label} {LOCAL}, {threads} threads: env {}", vars.join(" "));
            }
            let make = || {
                let mut cmd = Command::new(&bin);
                cmd.args(["100", "pre-start"]).envs(env.clone());
                cmd
            };
            let s = measure::measure(make, 30, 500, 0);
            let record = if usable {
                "record checked"
            } else {
                "full read"
            };
            measure::report(
                &format!("hook ({build}) {label} {LOCAL}, {threads} threads, 64 nodes, {record}"),
                &s,
            );
            if usable {
                ok &= s.median.as_secs_f64() <= 0.002 && s.max_rss_kib <= 10 * 1024;
                medians.insert((label, threads), s.median.as_secs_f64());
            }
            if hyperfine {
                let status = Command::new("hyperfine")
                    .args(["-N", "--warmup", "30", "--runs", "300", "--style", "basic"])
                    .arg("/bin/true")
                    .arg(format!("{} 100 pre-start", bin.display()))
                    .envs(env.clone())
                    .status();
                assert!(status.is_ok_and(|s| s.success()), "hyperfine failed");
            }
        }
        if keep {
            println!("fixture kept in {}", c.dir.keep().display());
        }
    }
    for label in ["live migration pve01 ->", "start on"] {
        let ratio = medians[&(label, 256)] / medians[&(label, 2)];
        println!("{label} {LOCAL}: 256 threads / 2 threads = {ratio:.2}× (target ≤ 1.25×)");
        ok &= ratio <= 1.25;
    }
    if !ok {
        eprintln!("above a target (median 2 ms, 1.25× across thread counts, peak RSS 10 MiB)");
        std::process::exit(1);
    }
}
