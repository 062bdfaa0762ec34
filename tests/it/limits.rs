//! The hook at its limits (issue 21, "Counts and limits"): many refusals
//! at once.

use std::process::{Child, Stdio};

use crate::harness;
use crate::harness::cluster::Cluster;

/// Refused on pve2 (a Haswell: no AVX-512), allowed on pve4.
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve4", "hwloc-xeon-gold-6230-cascadelake"),
    ]);
    c.vm(100, "pve1", "cores: 2\ncpu: x86-64-v4\nname: vm100\n");
    c
}

/// The hook binary for `pre-start` of VM 100 migrating pve1 -> `node`.
fn hook(c: &Cluster, node: &str) -> std::process::Command {
    let mut cmd = harness::command(harness::hook_binary());
    cmd.args(["100", "pre-start"])
        .envs(c.node_env(node))
        .env("PVE_MIGRATED_FROM", "pve1")
        .stdin(Stdio::null());
    cmd
}

/// 200 hooks refusing at the same moment: every refusal is counted, as
/// `metrics` reports it (the count used to be a read-modify-write under a
/// lock that a hook gave up on after 0.5 s, losing a third of them).
#[test]
fn two_hundred_concurrent_refusals_lose_no_count() {
    const N: usize = 200;
    let c = cluster();
    let children: Vec<Child> = (0..N)
        .map(|_| {
            hook(&c, "pve2")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut refused = 0;
    let mut other = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() == Some(1) && !stderr.contains("not counted") {
            refused += 1;
        } else {
            other.push(format!("{:?}: {stderr}", out.status));
        }
    }
    assert_eq!(refused, N, "{other:#?}");
    let state = pve_cpuguard::guard::refusals::read(&c.path("state"));
    assert_eq!(state.count, N as u64);
    let metrics = c.on("pve2", &["metrics"]).run().code(0);
    metrics.stdout_has(&format!("\npve_cpuguard_refusals_total {N}\n"));
}
