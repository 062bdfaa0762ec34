//! Staleness is honoured by every command that reads the cache (issue 10):
//! `status` and `baseline` mark records older than `cache_max_age` (flag,
//! variable or configuration file) in text and JSON, and exit 1.

use crate::harness::cluster::Cluster;
use pve_cpuguard::cache::Cache;

/// A cluster whose pve2 record is three days old.
fn cluster() -> Cluster {
    let c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    let mut cache = Cache::load(&c.cache()).unwrap();
    let rec = cache.nodes.get_mut("pve2").unwrap();
    rec.scanned_at -= 3 * 86_400;
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    c
}

#[test]
fn status_and_baseline_mark_old_records_stale_and_exit_1() {
    let c = cluster();
    for cmd in ["status", "baseline"] {
        let d = c.on("pve1", &[cmd, "-o", "json"]).run().code(1).json();
        assert_eq!(d["stale_nodes"], serde_json::json!(["pve2"]), "{cmd}: {d}");
        assert_eq!(d["cache_max_age_seconds"], 7200, "{cmd}: {d}");
    }
    let d = c.on("pve1", &["status", "-o", "json"]).run().json();
    assert_eq!(d["nodes"][1]["stale"], true, "{d}");
    assert_eq!(d["nodes"][0]["stale"], false, "{d}");
    c.on("pve1", &["status"])
        .run()
        .code(1)
        .stdout_has("STALE: older than cache_max_age (2h 0m)");
    c.on("pve1", &["baseline"])
        .run()
        .code(1)
        .stdout_has("warning: uses last-known data for pve2 (stale");
}

#[test]
fn cache_max_age_comes_from_flag_variable_or_file() {
    let c = cluster();
    // Flag (rejected by `status` before issue 10).
    c.on("pve1", &["status", "--cache-max-age", "4d"])
        .run()
        .code(0);
    c.on("pve1", &["baseline", "--cache-max-age", "4d"])
        .run()
        .code(0);
    // Variable.
    c.on("pve1", &["status"])
        .env("PVE_CPUGUARD_CACHE_MAX_AGE", "4d")
        .run()
        .code(0);
    // Configuration file, and the flag above it.
    let conf = c.path("age.conf");
    std::fs::write(&conf, "cache_max_age = 4d\n").unwrap();
    c.on("pve1", &["status"])
        .env("PVE_CPUGUARD_CONFIG", &conf)
        .run()
        .code(0);
    c.on("pve1", &["baseline", "--cache-max-age", "1h"])
        .env("PVE_CPUGUARD_CONFIG", &conf)
        .run()
        .code(1);
}

#[test]
fn check_marks_the_nodes_it_judged_from_stale_records() {
    let mut c = cluster();
    c.vm(100, "pve1", "cpu: x86-64-v3\n");
    let d = c
        .on("pve1", &["check", "100", "--mode", "start", "-o", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(d["decisions"]["pve2"]["stale"], true, "{d}");
    c.on("pve1", &["check", "100", "--mode", "start"])
        .run()
        .code(0)
        .stdout_has(
            "pve2: allowed (view: cpuinfo; scanned 3d 0h ago, STALE: older than cache_max_age",
        );
}

/// One definition of "stale" (`NodeRecord::is_stale`, and on a fleet node
/// `FleetNode::is_stale`): a record whose last refresh failed, or one dated
/// in the future, is stale in every command that reports staleness, not only
/// in some of them.
#[test]
fn every_command_calls_the_same_records_stale() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    let mut cache = Cache::load(&c.cache()).unwrap();
    let failed = cache.nodes.get_mut("pve2").unwrap();
    failed.last_error = Some("ssh: connection refused".into());
    failed.last_attempt_at = Some(failed.scanned_at);
    cache.nodes.get_mut("pve3").unwrap().scanned_at += 86_400;
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    c.vm(100, "pve1", "cpu: x86-64-v2-AES\n");
    let stale = serde_json::json!(["pve2", "pve3"]);

    let d = c.on("pve1", &["status", "-o", "json"]).run().code(1).json();
    assert_eq!(d["stale_nodes"], stale, "status: {d}");

    let d = c.on("pve1", &["audit", "-o", "json"]).run().json();
    let nodes = d["nodes"].as_array().expect("audit lists nodes");
    let marked: Vec<&str> = nodes
        .iter()
        .filter(|n| n["stale"] == true)
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["pve2", "pve3"], "audit: {d}");

    c.on("pve1", &["audit", "-o", "html"])
        .run()
        .stdout_has("(2 stale)");

    let d = c
        .on("pve1", &["check", "100", "--mode", "start", "-o", "json"])
        .run()
        .json();
    // `check` judges the other nodes (the VM runs on pve1).
    for node in ["pve2", "pve3"] {
        assert_eq!(d["decisions"][node]["stale"], true, "check, {node}: {d}");
    }

    let out = c.on("pve1", &["metrics"]).run().code(0);
    for (node, want) in [("pve1", 0), ("pve2", 1), ("pve3", 1)] {
        out.stdout_has(&format!(
            "pve_cpuguard_node_stale{{node=\"{node}\"}} {want}\n"
        ));
    }
}
