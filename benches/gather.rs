//! Benchmark: `scan` of 64 nodes that all published their record (read
//! from the cluster file system, no network) against `scan` of the same 64
//! nodes over SSH (real sshd processes on loopback addresses, the
//! integration tests' harness), beside `/bin/true` for scale. Whole
//! processes, timed by hyperfine without a shell (`-N`). Run by hand, as
//! root:
//!
//! ```sh
//! cargo bench --bench gather
//! ```
//!
//! Exits 1 when the gather is less than 20 times faster than the SSH scan.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

use std::path::Path;
use std::process::Command;

use harness::SshCluster;

const NODES: usize = 64;
const GOAL: f64 = 20.0;

/// Copies the fixture /etc/pve (corosync.conf, nodes/*/ssh_known_hosts).
fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn main() {
    let samples = harness::all_samples()
        .into_iter()
        .filter(|n| pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n)).is_ok())
        .collect::<Vec<_>>();
    let mut c = SshCluster::new();
    c.timeout = 30.0;
    for i in 0..NODES {
        c.sshd(&format!("node{:02}", i + 1), &samples[i % samples.len()]);
    }
    c.write_config();

    // A second /etc/pve where every node has published its record, each
    // with `pve-cpuguard publish` as that node runs it.
    let published = c.dir.path().join("etc-pve-published");
    copy_tree(&c.pve(), &published);
    for (i, n) in c.nodes.iter().enumerate() {
        let mut cmd = c.command(&["publish"]);
        cmd.env("PVE_CPUGUARD_PVE_DIR", &published)
            .env("PVE_CPUGUARD_NODE", &n.name)
            .env(
                "PVE_CPUGUARD_CPUINFO",
                harness::cpuinfo(&samples[i % samples.len()]),
            );
        harness::Done::of(cmd).code(0);
    }

    let bin = harness::binary();
    let ssh_cache = c.dir.path().join("cache-ssh/cluster.json");
    let gather_cache = c.dir.path().join("cache-gather/cluster.json");
    let scan = |pve: &Path, cache: &Path| {
        format!(
            "{} scan --pve-dir {} --cache {}",
            bin.display(),
            pve.display(),
            cache.display()
        )
    };
    let ssh_cmd = scan(&c.pve(), &ssh_cache);
    let gather_cmd = scan(&published, &gather_cache);

    // Each reads what it should: every node over SSH, or every published
    // record and no SSH.
    for (pve, cache, via) in [
        (&c.pve(), &ssh_cache, "ssh"),
        (&published, &gather_cache, "pmxcfs"),
    ] {
        let mut cmd = c.command(&["--output", "json", "scan"]);
        cmd.env("PVE_CPUGUARD_PVE_DIR", pve)
            .env("PVE_CPUGUARD_CACHE", cache);
        let run = harness::Done::of(cmd);
        let run = run.code(0);
        let v = run.json();
        let nodes = v["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), NODES);
        assert!(nodes.iter().all(|n| n["via"] == via), "not all via {via}");
    }

    // hyperfine inherits the cluster's environment (key, port, user,
    // timeout); the two commands differ only in their flags.
    let json = c.dir.path().join("hyperfine.json");
    let base = c.command(&[]);
    let mut h = Command::new("hyperfine");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => h.env(k, v),
            None => h.env_remove(k),
        };
    }
    let status = h
        .args(["-N", "--warmup", "2", "--min-runs", "10", "--export-json"])
        .arg(&json)
        .arg("/bin/true")
        .arg(&gather_cmd)
        .arg(&ssh_cmd)
        .status()
        .expect("hyperfine (apt-get install hyperfine)");
    assert!(status.success(), "hyperfine failed");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let median = |i: usize| v["results"][i]["median"].as_f64().unwrap();
    let (t_true, t_gather, t_ssh) = (median(0), median(1), median(2));
    println!(
        "/bin/true:                        median {:.2} ms",
        t_true * 1000.0
    );
    println!(
        "scan, {NODES} published records:      median {:.2} ms",
        t_gather * 1000.0
    );
    println!(
        "scan, {NODES} nodes over SSH:         median {:.2} ms",
        t_ssh * 1000.0
    );
    let ratio = t_ssh / t_gather;
    println!("gather is {ratio:.1}x faster (goal: at least {GOAL}x)");
    if ratio < GOAL {
        eprintln!("FAIL: the gather is less than {GOAL}x faster than the SSH scan");
        std::process::exit(1);
    }
}
