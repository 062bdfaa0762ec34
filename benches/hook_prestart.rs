//! Benchmark: `pve-cpuguard hook <vmid> pre-start` as a whole process with a
//! warm cache, the way Proxmox VE runs it on every VM start. Target: median
//! at most 2 ms and peak memory at most 10 MB.
//!
//! A 16-node cluster cache built from the real /proc/cpuinfo samples; the
//! hook runs on pve04 for (a) an incoming live migration from pve01 and (b)
//! an ordinary start (which also compares the VM with every other node).
//!
//! ```sh
//! cargo bench --bench hook_prestart
//! ```
//!
//! Two builds of the same code are measured: the one `cargo` links
//! (dynamically) and, when `packaging/build-deb.sh` has run, the one the
//! package installs (`target/assets/pve-cpuguard-hook`, linked statically:
//! no dynamic loader on every VM start). The target applies to the one
//! Proxmox VE runs: the packaged build when present.
//!
//! Exits 1 when a median is above 2 ms or the peak RSS above 10 MB.
//! With `HOOK_BENCH_KEEP=1` the fixture is kept and the two commands are
//! printed, to profile them by hand (`perf stat`, `valgrind`).

mod measure;
#[path = "../tests/util/mod.rs"]
mod util;

use std::process::Command;

use util::cluster::Cluster;

fn main() {
    let samples: Vec<String> = util::all_cpuinfo()
        .iter()
        .filter(|p| pve_cpuguard::cpu::cpuinfo::read(p).is_ok())
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .take(16)
        .collect();
    let names: Vec<String> = (1..=samples.len()).map(|i| format!("pve{i:02}")).collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(samples.iter().map(String::as_str))
        .collect();
    let mut c = Cluster::new(&pairs);
    c.vm(
        100,
        "pve01",
        "boot: order=scsi0\ncores: 4\ncpu: x86-64-v2-AES\nmemory: 8192\nname: bench\nostype: l26\n",
    );
    // The binary the hook file runs (`pve-cpuguard hook` is the same code
    // with the whole tool linked in).
    let packaged =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/assets/pve-cpuguard-hook");
    let mut bins = vec![(
        "cargo build, dynamic",
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_pve-cpuguard-hook")),
    )];
    if packaged.exists() {
        bins.push(("packaged, static", packaged));
    }
    let keep = std::env::var_os("HOOK_BENCH_KEEP").is_some();
    // For scale: what starting any process costs on this machine now
    // (first, so that its peak RSS is its own).
    let floor = measure::measure(|| Command::new("/bin/true"), 30, 500, 0);
    measure::report("for scale, /bin/true", &floor);
    let mut worst_ok = true;
    let judged = bins.len() - 1;
    for (i, (build, bin)) in bins.iter().enumerate() {
        for (label, migrated_from) in [
            ("live migration pve01 -> pve04", "pve01"),
            ("ordinary start on pve04", ""),
        ] {
            let make_cmd = || {
                let mut cmd = Command::new(bin);
                cmd.args(["100", "pre-start"])
                    .env("PVE_MIGRATED_FROM", migrated_from)
                    .envs(c.node_env("pve04"));
                cmd
            };
            let s = measure::measure(make_cmd, 30, 500, 0);
            if keep {
                let cmd = make_cmd();
                let env: Vec<String> = cmd
                    .get_envs()
                    .map(|(k, v)| {
                        format!("{}={}", k.to_string_lossy(), v.unwrap().to_string_lossy())
                    })
                    .collect();
                println!("{} {} 100 pre-start", env.join(" "), bin.display());
            }
            measure::report(
                &format!("hook pre-start ({build}), {label}, {} nodes", samples.len()),
                &s,
            );
            if i == judged {
                worst_ok &= s.median.as_secs_f64() <= 0.002 && s.max_rss_kib <= 10 * 1024;
            }
        }
    }
    if keep {
        println!("fixture kept in {}", c.dir.keep().display());
    }
    if !worst_ok {
        eprintln!("above the target (median 2 ms, peak RSS 10 MB)");
        std::process::exit(1);
    }
}
