//! Issue 25: migrations from another cluster (`qm remote-migrate`, the
//! Proxmox Datacenter Manager). The target runs `pre-start` with the
//! config's `lock: migrate` and without `PVE_MIGRATED_FROM` (qemu-server
//! `vm_start_nolock`: "for remote migration the config is available on the
//! target node"): the start rules apply, and a CPU made on the source node
//! (`host`) is unknown unless the source's published record is given.

use crate::harness;

use crate::harness::cluster::Cluster;
use pve_cpuguard::cache::published;

/// pve1 Skylake-SP, pve2 Haswell. The VMs arrive on pve2.
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(101, "pve2", "cpu: host\nlock: migrate\nname: web\n")
        .vm(102, "pve2", "cpu: SandyBridge\nlock: migrate\n")
        .vm(104, "pve2", "cpu: x86-64-v3\nlock: migrate\n")
        .vm(103, "pve2", "cpu: host\n");
    c
}

/// The published record of `node` (another cluster's) serving `sample`,
/// copied to a file of the test's directory.
fn source_record(c: &Cluster, node: &str, sample: &str) -> String {
    let now = pve_cpuguard::cache::now();
    let rec = Cluster::record(node, "192.0.2.1", sample, now);
    let path = c.path(&format!("{node}.json"));
    std::fs::write(
        &path,
        published::encode(&published::envelope(node, rec, now)),
    )
    .unwrap();
    path.display().to_string()
}

fn hook(c: &Cluster, vmid: u32, env: &[(&str, &str)]) -> harness::Done {
    let mut run = c.on("pve2", &["hook", &vmid.to_string(), "pre-start"]);
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn a_host_vm_arriving_from_another_cluster_is_refused_strict_and_warned_default() {
    let c = cluster();
    let done = hook(&c, 101, &[]).code(0);
    done.stderr_has("arrives by a migration from another cluster");
    done.stderr_has("which is unknown");
    done.stderr_has("allowed without proof");
    let done = hook(&c, 101, &[("PVE_CPUGUARD_POLICY", "strict")]).code(1);
    assert!(
        done.stdout.starts_with("QEMU: pve-cpuguard: refused"),
        "{}",
        done.stdout
    );
    // The same VM without `lock: migrate` is an ordinary start: allowed.
    hook(&c, 103, &[("PVE_CPUGUARD_POLICY", "strict")]).code(0);
    // A named model (its vendor its own): the start rules only.
    let done = hook(&c, 102, &[("PVE_CPUGUARD_POLICY", "strict")]).code(0);
    assert!(!done.stderr.contains("which is unknown"), "{}", done.stderr);
    // x86-64-v3 shows the host's vendor: the source's matters.
    hook(&c, 104, &[("PVE_CPUGUARD_POLICY", "strict")])
        .code(1)
        .stdout_has("the source cluster's node, which is unknown");
    // A local live migration (PVE_MIGRATED_FROM) is not a remote one.
    let done = hook(&c, 101, &[("PVE_MIGRATED_FROM", "pve1")]);
    assert!(!done.stderr.contains("another cluster"), "{}", done.stderr);
}

#[test]
fn the_source_record_in_the_configuration_file_decides() {
    let c = cluster();
    let conf = c.path("remote.conf");
    let conf_s = conf.display().to_string();
    // The source is a Haswell too: its host CPU is what pve2 gives.
    let same = source_record(&c, "far1", "archspec-linux-rhel7-haswell");
    std::fs::write(
        &conf,
        format!("policy = strict\nremote_source_record = {same}\n"),
    )
    .unwrap();
    let done = hook(&c, 101, &[("PVE_CPUGUARD_CONFIG", &conf_s)]).code(0);
    assert!(!done.stderr.contains("which is unknown"), "{}", done.stderr);
    // A Skylake source: its host CPU has AVX-512, pve2 has not.
    let wider = source_record(&c, "far2", "hwloc-xeon-silver-4108-skylake-sp");
    std::fs::write(&conf, format!("remote_source_record = {wider}\n")).unwrap();
    let done = hook(&c, 101, &[("PVE_CPUGUARD_CONFIG", &conf_s)]).code(1);
    done.stderr_has("far2's published record");
    // A record that cannot be read: named, and the source is unknown.
    let missing = c.path("nope.json").display().to_string();
    std::fs::write(&conf, format!("remote_source_record = {missing}\n")).unwrap();
    let done = hook(&c, 101, &[("PVE_CPUGUARD_CONFIG", &conf_s)]).code(0);
    done.stderr_has("remote_source_record: ");
    done.stderr_has("nope.json");
    done.stderr_has("which is unknown");
}

#[test]
fn check_judges_a_remote_migration_with_or_without_the_source_record() {
    let c = cluster();
    let json = c
        .on(
            "pve2",
            &[
                "-o", "json", "check", "101", "--mode", "remote", "--policy", "strict",
            ],
        )
        .run()
        .code(1)
        .json();
    assert_eq!(json["mode"], "remote");
    assert_eq!(json["source_record_node"], serde_json::Value::Null);
    // Every node may receive it, its own included.
    let refused = json["not_allowed_nodes"].as_object().unwrap();
    assert_eq!(refused.keys().collect::<Vec<_>>(), ["pve1", "pve2"]);
    assert!(refused["pve2"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("another cluster"));

    let same = source_record(&c, "far1", "archspec-linux-rhel7-haswell");
    let out = c
        .on(
            "pve2",
            &["check", "101", "--source-record", &same, "--target", "pve2"],
        )
        .run()
        .code(0);
    out.stdout_has("remote-migration (source far1, from its record)");
    out.stdout_has("pve2: allowed");

    let bad = c.path("bad.json");
    std::fs::write(&bad, "{\"schema\": 1}").unwrap();
    let out = c
        .on(
            "pve2",
            &["check", "101", "--source-record", bad.to_str().unwrap()],
        )
        .run()
        .code(2);
    out.stderr_has("--source-record: ");
    out.stderr_has("\nnote: ");
}
