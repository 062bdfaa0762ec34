//! One policy, one settings path (issue 10): `check` decides unknown
//! answers exactly as the hook does, `why-not` reads the configuration
//! file like every other command, and `check` finds a VM on another node
//! without `.vmlist`.

use crate::harness;

use crate::harness::cluster::Cluster;
use std::path::{Path, PathBuf};

fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    // A model no QEMU defines: the verdict is "unknown".
    c.vm(100, "pve1", "cpu: NoSuchCpu\n");
    c
}

/// `check` on pve1 of VM 100 starting on pve2 under the configuration
/// file `conf`: its JSON, after its exit code is asserted.
fn check_start_on_pve2(c: &Cluster, conf: &Path, code: i32) -> serde_json::Value {
    c.on(
        "pve1",
        &[
            "check", "100", "--mode", "start", "--target", "pve2", "-o", "json",
        ],
    )
    .env("PVE_CPUGUARD_CONFIG", conf)
    .run()
    .code(code)
    .json()
}

#[test]
fn check_and_hook_apply_the_same_policy_to_unknown_answers() {
    let c = cluster();
    // Default policy: allowed without proof by both.
    c.on("pve2", &["hook", "100", "pre-start"]).run().code(0);
    let d = check_start_on_pve2(&c, &std::path::PathBuf::from("/dev/null"), 3);
    assert_eq!(d["decisions"]["pve2"]["allow"], true, "{d}");
    assert!(d["unknown_nodes"]["pve2"].is_object(), "{d}");

    // Strict, from the configuration file: refused by both.
    let conf = c.path("strict.conf");
    std::fs::write(&conf, "policy = strict\n").unwrap();
    c.on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_CPUGUARD_CONFIG", &conf)
        .run()
        .code(1);
    let d = check_start_on_pve2(&c, &conf, 1);
    assert_eq!(d["decisions"]["pve2"]["allow"], false, "{d}");
    let reasons = d["not_allowed_nodes"]["pve2"]["reasons"].to_string();
    assert!(reasons.contains("policy strict"), "{d}");
}

#[test]
fn why_not_reads_the_configuration_file() {
    let c = cluster();
    c.cpu_models("cpu-model: tsx\n\tflags +hle;+rtm\n\treported-model kvm64\n");
    let conf = c.path("paths.conf");
    std::fs::write(&conf, format!("pve_dir = {}\n", c.pve().display())).unwrap();
    // Only the configuration file names the cluster file system: the custom
    // model is found there (the Skylake-SP sample has hle and rtm).
    let why_not = |env: &[(&str, PathBuf)]| {
        harness::Run::new(["why-not", "custom-tsx"])
            .envs(env.iter().cloned())
            .env(
                "PVE_CPUGUARD_CPUINFO",
                harness::cpuinfo("hwloc-xeon-silver-4108-skylake-sp"),
            )
            .env("PVE_CPUGUARD_CACHE", c.path("no-cache.json"))
            .run()
    };
    why_not(&[("PVE_CPUGUARD_CONFIG", conf)])
        .code(0)
        .stdout_has("custom-tsx: compatible");
    // Without it, /etc/pve has no such model: unknown.
    why_not(&[
        ("PVE_CPUGUARD_CONFIG", std::path::PathBuf::from("/dev/null")),
        ("PVE_CPUGUARD_PVE_DIR", c.path("empty")),
    ])
    .code(3);
}

#[test]
fn check_finds_a_vm_on_another_node_without_vmlist_and_names_a_missing_one() {
    let c = cluster();
    std::fs::remove_file(c.pve().join(".vmlist")).unwrap();
    std::fs::write(
        c.pve().join("nodes/pve2/qemu-server/101.conf"),
        "cpu: x86-64-v3\n",
    )
    .unwrap();
    let d = c
        .on("pve1", &["check", "101", "--mode", "start", "-o", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(d["node"], "pve2", "{d}");
    c.on("pve1", &["check", "555"])
        .run()
        .code(2)
        .stderr_has("VM 555 does not exist");
}

#[test]
fn inspect_finds_the_cache_through_the_configuration_file() {
    let c = cluster();
    // The cache holds pve1 with its flags; the configuration file alone
    // names the cache, and inspect reads this node's record there.
    let conf = c.path("cache.conf");
    std::fs::write(&conf, format!("cache = {}\n", c.cache().display())).unwrap();
    let mut cache = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    cache.nodes.get_mut("pve1").unwrap().kvm_error = Some("no /dev/kvm".into());
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    let j = harness::Run::new(["inspect", "-o", "json"])
        .env("PVE_CPUGUARD_CONFIG", &conf)
        .env("PVE_CPUGUARD_NODE", "pve1")
        .env(
            "PVE_CPUGUARD_CPUINFO",
            harness::cpuinfo("hwloc-xeon-silver-4108-skylake-sp"),
        )
        .run()
        .code(0)
        .json();
    assert_eq!(j["view"], "cpuinfo", "{j}");
    assert!(
        j["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("QEMU probe failed (no /dev/kvm)"),
        "{j}"
    );
}
