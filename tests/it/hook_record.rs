//! The hookscript judges this node by its cached record instead of reading
//! all of /proc/cpuinfo only while that record is still current
//! (src/cache/current.rs): a changed microcode, flag set or kernel, or a
//! record of non-uniform (hybrid) CPUs, makes it read everything and decide
//! on what it read now. Correctness tests, not timings.

use crate::harness;

use crate::harness::cluster::Cluster;
use pve_cpuguard::cache::{Cache, NodeRecord};

const SAMPLE: &str = "hwloc-xeon-gold-6230-cascadelake";

/// A one-node cluster whose record of `pve1` is `recorded` (cpuinfo text)
/// with `kernel`, and whose /proc/cpuinfo now is `now`; VM 100 on it wants
/// `x86-64-v4` (AVX-512).
fn node(recorded: &str, kernel: Option<String>, now: &str) -> (Cluster, std::path::PathBuf) {
    let mut c = Cluster::new(&[("pve1", SAMPLE)]);
    let rec_path = c.path("recorded-cpuinfo");
    std::fs::write(&rec_path, recorded).unwrap();
    let info = pve_cpuguard::reach::local::cpuinfo(&rec_path).unwrap();
    let mut cache = Cache::load(&c.cache()).unwrap();
    let rec = NodeRecord::new("pve1", "local", &info, kernel, cache.updated_at);
    cache.nodes.insert("pve1".into(), rec);
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    let now_path = c.path("proc-cpuinfo");
    std::fs::write(&now_path, now).unwrap();
    c.vm(
        100,
        "pve1",
        "cores: 4\ncpu: x86-64-v4\nmemory: 4096\nname: v4\n",
    );
    (c, now_path)
}

fn start(c: &Cluster, cpuinfo: &std::path::Path, policy: &str) -> harness::Done {
    c.on("pve1", &["hook", "100", "pre-start"])
        .env("PVE_CPUGUARD_CPUINFO", cpuinfo)
        .env("PVE_CPUGUARD_POLICY", policy)
        .run()
}

fn running_kernel() -> Option<String> {
    pve_cpuguard::cache::current::kernel_release()
}

/// The sample as a 4-thread host.
fn host() -> String {
    let text = std::fs::read_to_string(harness::cpuinfo(SAMPLE)).unwrap();
    harness::threads::cpuinfo_with_threads(&text, 4)
}

/// `text` with the AVX-512 flags gone from processor blocks `which`.
fn without_avx512(text: &str, which: impl Fn(usize) -> bool) -> String {
    text.split("\n\n")
        .enumerate()
        .map(|(i, block)| {
            if !which(i) {
                return block.to_string();
            }
            block
                .lines()
                .map(|l| {
                    if l.starts_with("flags") {
                        l.split(' ')
                            .filter(|w| !w.starts_with("avx512"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn a_current_record_stands_in_and_nothing_past_the_first_cpu_is_read() {
    // A file that is malformed after its first block: under `strict` a
    // full reading would refuse the start as unknown.
    let now = format!("{}this line is not cpuinfo\n", host());
    let (c, path) = node(&host(), running_kernel(), &now);
    start(&c, &path, "strict").code(0);
    // The same node whose record cannot stand in (no kernel recorded)
    // reads it all and stumbles on the bad line.
    let (c, path) = node(&host(), None, &now);
    start(&c, &path, "strict").code(1).stderr_has("not cpuinfo");
}

#[test]
fn changed_microcode_and_flags_are_read_afresh() {
    // Recorded with AVX-512; now a microcode update (as with Intel's
    // Downfall mitigation options) leaves the CPUs without it.
    let now = without_avx512(&host(), |_| true).replace("0x5000021", "0x5003604");
    let (c, path) = node(&host(), running_kernel(), &now);
    start(&c, &path, "default")
        .code(1)
        .stdout_has("pve-cpuguard");
    // The control: unchanged, the same VM starts.
    let (c, path) = node(&host(), running_kernel(), &host());
    start(&c, &path, "default").code(0);
}

#[test]
fn changed_flags_alone_are_read_afresh() {
    // Same microcode, a boot option (`clearcpuid=`) took AVX-512 away.
    let now = without_avx512(&host(), |_| true);
    let (c, path) = node(&host(), running_kernel(), &now);
    start(&c, &path, "default").code(1);
}

#[test]
fn another_kernel_reads_everything() {
    // The first CPU still looks as recorded, the others do not: only the
    // full reading sees it, and the kernel change forces that reading.
    let now = without_avx512(&host(), |i| i > 0);
    let (c, path) = node(&host(), Some("5.4.0-0-not-running".into()), &now);
    start(&c, &path, "default").code(1);
    // With the running kernel recorded the first CPU decides: this is the
    // blind spot the module header names (a change on other CPUs only).
    let (c, path) = node(&host(), running_kernel(), &now);
    start(&c, &path, "default").code(0);
}

#[test]
fn a_record_of_non_uniform_cpus_is_never_trusted() {
    // Hybrid: the record itself shows CPUs that differ, so its first
    // block says nothing about the others.
    let hybrid = without_avx512(&host(), |i| i % 2 == 1);
    let info = {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(&p, &hybrid).unwrap();
        pve_cpuguard::reach::local::cpuinfo(&p).unwrap()
    };
    assert!(!info.uniform);
    assert!(!info.flags.contains("avx512f"));
    let (c, path) = node(&hybrid, running_kernel(), &hybrid);
    start(&c, &path, "default").code(1);
}
