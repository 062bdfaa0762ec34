//! `migrate` decides from the cache, and reads the target again over SSH
//! (a real sshd) only when its record is stale.

use crate::harness::cluster::Cluster;
use crate::harness::exec::{argv, Recorder};
use crate::harness::{Done, SshCluster};

const SKYLAKE: &str = "hwloc-xeon-silver-4108-skylake-sp";
const HASWELL: &str = "archspec-linux-rhel7-haswell";
const CASCADE: &str = "hwloc-xeon-gold-6230-cascadelake";

/// pve1 (local, Skylake-SP) and pve2 (a real sshd serving Haswell, v3),
/// with a cache that claims pve2 is a Cascade Lake (v4) read `age` seconds ago.
fn setup(age: u64) -> (SshCluster, Recorder) {
    let mut c = SshCluster::new();
    c.local("pve1", SKYLAKE);
    c.sshd("pve2", HASWELL);
    c.write_config();
    let now = pve_cpuguard::cache::now();
    c.write_records([
        Cluster::record("pve1", &c.node("pve1").addr, SKYLAKE, now),
        Cluster::record("pve2", &c.node("pve2").addr, CASCADE, now - age),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nname: db\n");
    let qm = Recorder::new(c.dir.path(), "qm", "");
    (c, qm)
}

fn migrate(c: &SshCluster, qm: &Recorder) -> Done {
    c.cmd(&["migrate", "100", "pve2", "--online"])
        .env("PVE_CPUGUARD_QM", &qm.program)
        .env("PVE_CPUGUARD_CONFIG", std::path::PathBuf::from("/dev/null"))
        .env("PVE_CPUGUARD_SYSLOG_SOCKET", c.path("none.sock"))
        .run()
}

#[test]
fn a_fresh_record_decides_without_the_network() {
    let (c, qm) = setup(60);
    // The cache says v4 (wrong, but fresh): allowed, qm runs, no SSH needed.
    let run = migrate(&c, &qm);
    run.code(0);
    assert_eq!(qm.calls(), [argv(&["migrate", "100", "pve2", "--online"])]);
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.cache()).unwrap()).unwrap();
    assert!(cache["nodes"]["pve2"]["model_name"]
        .as_str()
        .unwrap()
        .contains("Gold 6230"));
}

#[test]
fn a_stale_target_is_read_again_over_ssh_and_that_decides() {
    let (c, qm) = setup(10 * 3600);
    let run = migrate(&c, &qm).code(1);
    run.stderr_has("read it again just now");
    run.stderr_has("missing flags: avx512bw");
    assert_eq!(qm.calls(), Vec::<Vec<String>>::new(), "qm must not run");
    // The fresh record went into the cache; pve1's record is kept.
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.cache()).unwrap()).unwrap();
    assert!(
        cache["nodes"]["pve2"]["model_name"]
            .as_str()
            .unwrap()
            .contains("E5-2680 v3"),
        "{cache}"
    );
    assert!(cache["nodes"]["pve1"].is_object());
}

#[test]
fn a_stale_target_that_cannot_be_reached_falls_back_to_the_cache_with_a_warning() {
    let (mut c, qm) = setup(10 * 3600);
    c.stop("pve2");
    let run = migrate(&c, &qm).code(0);
    run.stderr_has("could not read 'pve2' again");
    run.stderr_has(
        "the record of 'pve2': scanned 10h 0m ago, STALE: older than cache_max_age (2h 0m)",
    );
    assert_eq!(qm.calls(), [argv(&["migrate", "100", "pve2", "--online"])]);
}
