//! `metrics`: the exact Prometheus text, written atomically for
//! node_exporter's textfile collector, with the last refusal recorded by
//! the real hook.

use crate::harness::cluster::Cluster;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

/// Rewrites the cache so that every record was scanned `age` seconds ago.
fn age_cache(c: &Cluster, age: u64) {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.cache()).unwrap()).unwrap();
    let then = pve_cpuguard::cache::now() - age;
    for (_, n) in v["nodes"].as_object_mut().unwrap() {
        n["scanned_at"] = then.into();
    }
    std::fs::write(c.cache(), serde_json::to_vec(&v).unwrap()).unwrap();
}

/// Replaces the value of each cache-age line with `N` after checking it is
/// within a few seconds of `age` (the clock moves while the test runs).
fn normalise(text: &str, age: u64) -> String {
    text.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("pve_cpuguard_cache_age_seconds{") {
                let (labels, value) = rest.rsplit_once(' ').unwrap();
                let v: u64 = value.parse().unwrap();
                assert!((age..age + 30).contains(&v), "{l}");
                format!("pve_cpuguard_cache_age_seconds{{{labels} N")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const EXPECTED: &str = r#"# HELP pve_cpuguard_node_level CPU level of the node on Proxmox VE's ladder (0 kvm64, 1 x86-64-v2, 2 x86-64-v2-AES, 3 x86-64-v3, 4 x86-64-v4; -1 no data or below-kvm64), from the node's one answer (QEMU's under KVM when recorded, else /proc/cpuinfo).
# TYPE pve_cpuguard_node_level gauge
pve_cpuguard_node_level{node="pve1",level="x86-64-v4"} 4
pve_cpuguard_node_level{node="pve2",level="x86-64-v3"} 3
pve_cpuguard_node_level{node="pve9",level="unknown"} -1
# HELP pve_cpuguard_node_view Which view decided the node's answer: kvm (QEMU under KVM), tcg or cpuinfo.
# TYPE pve_cpuguard_node_view gauge
pve_cpuguard_node_view{node="pve1",view="cpuinfo"} 1
pve_cpuguard_node_view{node="pve2",view="cpuinfo"} 1
# HELP pve_cpuguard_cache_age_seconds Age of the node's cached CPU record.
# TYPE pve_cpuguard_cache_age_seconds gauge
pve_cpuguard_cache_age_seconds{node="pve1"} N
pve_cpuguard_cache_age_seconds{node="pve2"} N
# HELP pve_cpuguard_node_stale 1 when the node has no data, its record is older than cache_max_age, or its last refresh failed.
# TYPE pve_cpuguard_node_stale gauge
pve_cpuguard_node_stale{node="pve1"} 0
pve_cpuguard_node_stale{node="pve2"} 0
pve_cpuguard_node_stale{node="pve9"} 1
# HELP pve_cpuguard_node_vms_lost VMs that can no longer start on, or live-migrate to, the node since it appeared or its CPU capability dropped (audit flag node-admission; 0 otherwise).
# TYPE pve_cpuguard_node_vms_lost gauge
pve_cpuguard_node_vms_lost{node="pve1"} 0
pve_cpuguard_node_vms_lost{node="pve2"} 0
pve_cpuguard_node_vms_lost{node="pve9"} 0
# HELP pve_cpuguard_cluster_level Cluster baseline: the highest level the verdict accepts on every node (-1 while some node has no data, or below-kvm64).
# TYPE pve_cpuguard_cluster_level gauge
pve_cpuguard_cluster_level{level="unknown"} -1
# HELP pve_cpuguard_vms VMs in the cluster.
# TYPE pve_cpuguard_vms gauge
pve_cpuguard_vms 3
# HELP pve_cpuguard_vms_at_risk VMs whose CPU type cannot start or live-migrate everywhere (any audit flag but no-guard-hookscript).
# TYPE pve_cpuguard_vms_at_risk gauge
pve_cpuguard_vms_at_risk 2
# HELP pve_cpuguard_vms_running_cpu_differs Running VMs whose CPU is not what their configuration gives at the next cold start (recorded at their start).
# TYPE pve_cpuguard_vms_running_cpu_differs gauge
pve_cpuguard_vms_running_cpu_differs 0
# HELP pve_cpuguard_vms_unguarded VMs without the guard's hookscript (coverage).
# TYPE pve_cpuguard_vms_unguarded gauge
pve_cpuguard_vms_unguarded 1
# HELP pve_cpuguard_vms_flagged VMs the audit flags, by flag.
# TYPE pve_cpuguard_vms_flagged gauge
pve_cpuguard_vms_flagged{flag="above-baseline"} 1
pve_cpuguard_vms_flagged{flag="host-cpu-in-mixed-cluster"} 1
pve_cpuguard_vms_flagged{flag="ha-cannot-recover"} 0
pve_cpuguard_vms_flagged{flag="no-guard-hookscript"} 1
pve_cpuguard_vms_flagged{flag="cannot-judge"} 0
pve_cpuguard_vms_flagged{flag="pending-cannot-start"} 0
pve_cpuguard_vms_flagged{flag="node-admission"} 0
# HELP pve_cpuguard_last_refusal_timestamp_seconds When the guard on this node last refused a start or migration (0: never).
# TYPE pve_cpuguard_last_refusal_timestamp_seconds gauge
"#;

fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve9", "archspec-linux-rhel7-haswell"),
    ]);
    c.write_cache(&["pve1".into(), "pve2".into()]);
    c.vm(100, "pve1", &format!("cpu: x86-64-v4\n{GUARD}"))
        .vm(101, "pve1", &format!("cpu: host\n{GUARD}"))
        .vm(102, "pve2", "cpu: x86-64-v3\n");
    age_cache(&c, 300);
    c
}

#[test]
fn exact_format_before_and_after_a_refusal() {
    let c = cluster();
    let out = c.on("pve2", &["metrics"]).run().code(0);
    assert_eq!(
        normalise(&out.stdout, 300),
        format!(
            "{EXPECTED}pve_cpuguard_last_refusal_timestamp_seconds 0\n\
             # HELP pve_cpuguard_refusals_total Starts and migrations the guard refused on this node.\n\
             # TYPE pve_cpuguard_refusals_total counter\n\
             pve_cpuguard_refusals_total 0\n"
        )
    );

    // The real hook refuses VM 100 (avx512) on pve2 and records it.
    let before = pve_cpuguard::cache::now();
    c.on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(1);
    c.on("pve2", &["hook", "100", "pre-start"]).run().code(1);
    let out = c.on("pve2", &["metrics"]).run().code(0);
    let text = normalise(&out.stdout, 300);
    let tail = text.strip_prefix(EXPECTED).expect(&text);
    let mut lines = tail.lines();
    let stamp: u64 = lines
        .next()
        .unwrap()
        .strip_prefix("pve_cpuguard_last_refusal_timestamp_seconds ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        stamp >= before && stamp <= pve_cpuguard::cache::now(),
        "{stamp}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        [
            "# HELP pve_cpuguard_refusals_total Starts and migrations the guard refused on this node.",
            "# TYPE pve_cpuguard_refusals_total counter",
            "pve_cpuguard_refusals_total 2",
        ]
    );
}

#[test]
fn stale_records_and_the_output_file() {
    let c = cluster();
    age_cache(&c, 3 * 3600);
    let dir = c.path("textfile");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pve-cpuguard.prom");
    std::fs::write(&file, "old\n").unwrap();
    let out = c
        .on(
            "pve1",
            &["metrics", "--output-file", file.to_str().unwrap()],
        )
        .run()
        .code(0);
    assert_eq!(out.stdout, "");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("pve_cpuguard_node_stale{node=\"pve1\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("pve_cpuguard_node_stale{node=\"pve2\"} 1\n"),
        "{text}"
    );
    // Only the finished file is left: no temporary for the collector to read.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["pve-cpuguard.prom"]);
    // A larger cache_max_age makes them fresh again (flag > default).
    let out = c
        .on("pve1", &["metrics", "--cache-max-age", "1d"])
        .run()
        .code(0);
    out.stdout_has("pve_cpuguard_node_stale{node=\"pve1\"} 0\n");
    let out = c
        .on(
            "pve1",
            &[
                "metrics",
                "--output-file",
                c.path("no/such/dir/x.prom").to_str().unwrap(),
            ],
        )
        .run()
        .code(2);
    out.stderr_has("cannot write");
}

/// pve2 was a Skylake-SP at the previous scan and is a Haswell now (a CPU
/// swap, or a BIOS setting that hides AVX-512): the refresh records the
/// drop, the audit flags the VMs pve2 no longer takes, and the metrics
/// count them for pve2 only.
#[test]
fn a_node_whose_capability_dropped_counts_the_vms_it_lost() {
    use pve_cpuguard::cache::{Cache, Update};
    let c = cluster();
    let now = pve_cpuguard::cache::now();
    let mut earlier = Cache::load(&c.cache()).unwrap();
    earlier.nodes.insert(
        "pve2".into(),
        Cluster::record("pve2", "10.0.0.2", "hwloc-xeon-silver-4108-skylake-sp", now),
    );
    let updates = [
        Update::Scanned(Box::new(Cluster::record(
            "pve1",
            "10.0.0.1",
            "hwloc-xeon-silver-4108-skylake-sp",
            now,
        ))),
        Update::Scanned(Box::new(Cluster::record(
            "pve2",
            "10.0.0.2",
            "archspec-linux-rhel7-haswell",
            now,
        ))),
    ];
    let next = earlier.merge(None, &updates, now);
    let message = &next.admissions["pve2"].message;
    assert!(message.starts_with("pve2 CPU changed from ") && message.contains(" lost "));
    assert!(!next.admissions.contains_key("pve1"));
    std::fs::write(c.cache(), next.to_json()).unwrap();
    let out = c.on("pve1", &["metrics"]).run().code(0);
    out.stdout_has("pve_cpuguard_node_vms_lost{node=\"pve1\"} 0\n");
    // 100 (x86-64-v4) cannot start there; 101 (host) cannot move there live.
    out.stdout_has("pve_cpuguard_node_vms_lost{node=\"pve2\"} 2\n");
    out.stdout_has("pve_cpuguard_vms_flagged{flag=\"node-admission\"} 2\n");
    // The audit says which and why.
    let out = c
        .on("pve1", &["audit", "--finding", "node-admission"])
        .run();
    out.stdout_has("can no longer start on, or live-migrate to, pve2");
    // Its summary counts both: it judges live migrations when a node was
    // admitted, though it shows none.
    let out = c.on("pve1", &["audit"]).run();
    out.stdout_has("node-admission 2");
}
