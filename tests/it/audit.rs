//! `audit` end to end: the real binary on a fixture `/etc/pve` tree (VM
//! configs, `.vmlist`, `ha/resources.cfg`, `cpu-models.conf`) and a cache
//! built from real /proc/cpuinfo samples, one VM per flagged case.

use crate::harness::audit_json;
use crate::harness::cluster::Cluster;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

/// pve1 Skylake-SP (Intel, v4), pve2 Haswell-EP (Intel, v3), pve4 Cascade
/// Lake (Intel, v4).
fn intel() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve4", "hwloc-xeon-gold-6230-cascadelake"),
    ]);
    c.vm(100, "pve1", &format!("cpu: x86-64-v4\nname: big\n{GUARD}"))
        .vm(
            101,
            "pve1",
            &format!("cpu: host\nname: passthrough\n{GUARD}"),
        )
        .vm(102, "pve2", &format!("cpu: x86-64-v3\nname: fine\n{GUARD}"))
        .vm(103, "pve4", "cpu: x86-64-v2-AES\nname: unguarded\n")
        .vm(
            104,
            "pve4",
            &format!("cpu: Cascadelake-Server\nname: ha-db\n{GUARD}"),
        )
        .vm(
            105,
            "pve1",
            "cpu: x86-64-v3\nname: own-hook\nhookscript: local:snippets/backup.pl\n",
        )
        .vm(106, "pve2", &format!("cpu: NoSuchModel\n{GUARD}"))
        .vm(
            107,
            "pve1",
            &format!("cpu: x86-64-v3\nhugepages: 1024\n{GUARD}"),
        );
    std::fs::create_dir_all(c.pve().join("ha")).unwrap();
    std::fs::write(
        c.pve().join("ha/resources.cfg"),
        "vm: 104\n\tstate started\n\tmax_restart 1\n\nvm: 102\n\tstate started\n\nct: 300\n\tstate started\n",
    )
    .unwrap();
    c
}

#[test]
fn every_flagged_case_in_text() {
    let c = intel();
    let out = c.on("pve1", &["audit", "--all"]).run().code(1);
    // Every line fits 100 columns; the explanations are wrapped, their
    // continuation lines indented by 8: joined again for the checks below.
    for l in out.stdout.lines() {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    let joined = out.stdout.replace("\n        ", " ");
    let s = &joined;
    // Node table with levels and the baseline.
    assert!(
        s.contains("\n\nNodes (3; baseline x86-64-v3; CPU vendors: GenuineIntel):\n"),
        "{s}"
    );
    assert!(s.contains("\n  pve2  x86-64-v3  GenuineIntel"), "{s}");
    // Matrix rows: live-migration targets exclude the VM's own node.
    assert!(
        s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["100", "pve1", "x86-64-v4", "pve4", "all", "but", "pve2"]),
        "{s}"
    );
    assert!(
        s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["102", "pve2", "x86-64-v3", "all", "all"]),
        "{s}"
    );
    // 101 cpu: host on a mixed cluster: the Haswell lacks avx512 & co.
    assert!(
        s.contains("    - CPU 'host' passes each node's own CPU through, and the nodes have 3 different CPUs"),
        "{s}"
    );
    // 100 above the baseline, with the reason per node and the fix.
    assert!(
        s.contains("    - CPU 'x86-64-v4' is above the cluster baseline (x86-64-v3): it cannot start on pve2 (missing flags: avx512bw, avx512cd, avx512dq, avx512f, avx512vl)"),
        "{s}"
    );
    assert!(
        s.contains("    fix: `qm set 100 --cpu x86-64-v3` makes it movable everywhere (takes effect at the next VM start)\n"),
        "{s}"
    );
    // 104 HA-managed Cascade Lake model: HA could recover it onto pve2.
    assert!(
        s.contains("    - HA-managed (vm:104): if its node fails, HA may recover it onto pve1, pve2, where it cannot start"),
        "{s}"
    );
    // 103 without a hookscript, 105 with its own one.
    assert!(
        s.contains("    - no hookscript: the guard does not check its starts and migrations (run `pve-cpuguard attach 103` on pve4)"),
        "{s}"
    );
    assert!(
        s.contains("    - hookscript 'local:snippets/backup.pl' is not the guard's"),
        "{s}"
    );
    assert!(
        s.contains("    - cannot judge its CPU: unknown CPU type 'NoSuchModel'"),
        "{s}"
    );
    assert!(
        s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["106", "pve2", "NoSuchModel", "unknown", "unknown"]),
        "{s}"
    );
    // 102 is HA-managed but fits everywhere: not flagged.
    assert!(!s.contains("VM 102"), "{s}");
    assert!(
        // The summary comes first (wrapped, its continuation indented by 4).
        out.stdout.replace("\n    ", " ").starts_with("8 VMs, 6 flagged, 4 at risk (above-baseline 2, cannot-judge 1, ha-cannot-recover 1, host-cpu-in-mixed-cluster 1, no-guard-hookscript 2)\n\nNodes"),
        "{s}"
    );
}

#[test]
fn json_has_the_matrix_flags_and_suggestions() {
    let c = intel();
    let out = c.on("pve2", &["audit", "--output", "json"]).run().code(1);
    let j = out.json();
    assert_eq!(j["baseline"], "x86-64-v3");
    assert_eq!(j["summary"]["vms"], 8);
    assert_eq!(j["summary"]["at_risk"], 4);
    let vm = |id: u64| audit_json::vm(&j, id);
    let v100 = vm(100);
    assert_eq!(
        v100["live_migration"]["allowed"],
        serde_json::json!(["pve4"])
    );
    assert_eq!(
        v100["live_migration"]["refused"],
        serde_json::json!({"pve2": {
            "verdict": "incompatible",
            "codes": ["missing-flags"],
            "reasons": ["missing flags: avx512bw, avx512cd, avx512dq, avx512f, avx512vl"],
        }})
    );
    assert_eq!(
        v100["start"]["allowed"],
        serde_json::json!(["pve1", "pve4"])
    );
    assert_eq!(v100["flags"][0]["code"], "above-baseline");
    assert_eq!(
        v100["flags"][0]["finding"]["nodes"],
        serde_json::json!(["pve2"])
    );
    assert_eq!(v100["works_everywhere"], "x86-64-v3");
    assert_eq!(v100["suggestion"]["works_everywhere"], "x86-64-v3");
    assert_eq!(v100["guarded"], true);
    assert_eq!(v100["requirement"]["cpu"], "x86-64-v4");
    assert_eq!(v100["requirement"]["base"], "model");
    let v104 = vm(104);
    assert_eq!(v104["ha"], true);
    let codes: Vec<&str> = v104["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["above-baseline", "ha-cannot-recover"]);
    assert_eq!(vm(103)["flags"][0]["code"], "no-guard-hookscript");
    assert_eq!(vm(103)["guarded"], false);
    assert_eq!(vm(102)["flags"], serde_json::json!([]));
    // 1 GiB huge pages: Haswell-EP and both Xeons have pdpe1gb, so v3 fits.
    assert_eq!(vm(107)["flags"], serde_json::json!([]));
}

#[test]
fn mixed_vendors_and_unscanned_nodes() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve3", "archspec-linux-ubuntu20.04-zen3"),
        ("pve9", "archspec-linux-rhel7-haswell"),
    ]);
    // pve9 exists in the cluster file system but was never scanned.
    c.write_cache(&["pve1".into(), "pve3".into()]);
    c.vm(200, "pve1", &format!("cpu: x86-64-v3\n{GUARD}"));
    c.vm(201, "pve3", &format!("cpu: max\n{GUARD}"));
    let out = c.on("pve1", &["audit", "-o", "json"]).run().code(1);
    let j = out.json();
    let nodes = j["nodes"].as_array().unwrap();
    let pve9 = nodes.iter().find(|n| n["name"] == "pve9").unwrap();
    assert_eq!(pve9["level"], serde_json::Value::Null);
    assert_eq!(pve9["problem"], "never scanned");
    // One shape for a record's age and staleness in every command.
    assert_eq!(
        pve9["freshness"],
        serde_json::json!({"state": "never-scanned", "stale": true, "age_seconds": null,
            "why": "never scanned"})
    );
    // No baseline and no CPU type for every node is claimed while pve9
    // has no data.
    assert_eq!(j["baseline"], serde_json::Value::Null);
    assert_eq!(j["works_everywhere"], serde_json::Value::Null);
    let vms = audit_json::vms(&j);
    let v200 = &vms[0];
    // Starts everywhere it is known, but a live move to the AMD node changes
    // the vendor under the guest; pve9 is unknown.
    assert_eq!(
        v200["start"]["allowed"],
        serde_json::json!(["pve1", "pve3"])
    );
    assert_eq!(
        audit_json::nodes(&v200["live_migration"]["refused"]),
        ["pve3"]
    );
    assert_eq!(
        v200["live_migration"]["refused"]["pve3"]["codes"],
        serde_json::json!(["vendor-change"])
    );
    assert_eq!(
        v200["live_migration"]["unknown"],
        serde_json::json!({"pve9": {
            "verdict": "unknown",
            "codes": [],
            "reasons": ["never scanned"],
        }})
    );
    assert_eq!(v200["flags"], serde_json::json!([]));
    let v201 = &vms[1];
    assert_eq!(v201["flags"][0]["code"], "host-cpu-in-mixed-cluster");
    assert!(
        v201["suggestion"]["message"]
            .as_str()
            .unwrap()
            .contains("live migration between vendors stays refused"),
        "{v201}"
    );
    // The text names the unscanned node, and the unknown cells.
    let out = c.on("pve1", &["audit", "--all"]).run().code(1);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "200",
                    "pve1",
                    "x86-64-v3",
                    "none",
                    "(pve9",
                    "unknown)",
                    "all",
                    "but",
                    "pve9",
                    "(pve9",
                    "unknown)"
                ]),
        "{}",
        out.stdout
    );
    out.stdout_has("  pve9  unknown: never scanned\n");
}

#[test]
fn clean_cluster_exits_zero_and_bad_resources_cfg_names_the_line() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
    ]);
    c.vm(100, "pve1", &format!("cpu: host\n{GUARD}"));
    let out = c.on("pve1", &["audit"]).run().code(0);
    assert!(
        out.stdout
            .starts_with("1 VMs, 0 flagged, 0 at risk\n\nNodes"),
        "{}",
        out.stdout
    );
    std::fs::create_dir_all(c.pve().join("ha")).unwrap();
    std::fs::write(
        c.pve().join("ha/resources.cfg"),
        "vm: 100\n\tstate running\n",
    )
    .unwrap();
    let out = c.on("pve1", &["audit"]).run().code(2);
    out.stderr_has("ha/resources.cfg:2: invalid state 'running' (valid: started, stopped, enabled, disabled, ignored)");
}

#[test]
fn vmlist_entry_without_config_is_reported_not_fatal() {
    let mut c = Cluster::new(&[("pve1", "hwloc-xeon-gold-6230-cascadelake")]);
    c.vm(100, "pve1", &format!("cpu: host\n{GUARD}"));
    std::fs::write(
        c.pve().join(".vmlist"),
        r#"{"version": 3, "ids": {"100": {"node": "pve1", "type": "qemu", "version": 1}, "101": {"node": "pve1", "type": "qemu", "version": 1}, "300": {"node": "pve1", "type": "lxc", "version": 1}}}"#,
    )
    .unwrap();
    let out = c.on("pve1", &["audit", "-o", "json"]).run().code(1);
    let j = out.json();
    assert_eq!(j["summary"]["vms"], 2, "containers are not audited");
    let vms = audit_json::vms(&j);
    assert!(vms[1]["error"].as_str().unwrap().contains("does not exist"));
    assert_eq!(vms[1]["flags"][0]["code"], "cannot-judge");
    assert!(vms[1]["requirement"]["unknown"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
}

/// Issue 21, item 8: a `cpu:` value of 70 000 characters (a table width
/// past 65 535 panicked `audit`) or a megabyte: every command answers,
/// without a panic, and no output repeats the whole value.
#[test]
fn an_absurd_cpu_value_neither_panics_nor_floods_the_output() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    let a = "A".repeat(70_000);
    c.vm(100, "pve1", &format!("cpu: {a}\nname: long\n"))
        .vm(
            101,
            "pve1",
            &format!(
                "cpu: x86-64-v3,flags={}\nname: flags\n",
                "+a;".repeat(350_000)
            ),
        )
        .vm(102, "pve1", &format!("cpu: {a},{a}\nname: two\n"))
        .vm(
            103,
            "pve1",
            &format!("cpu: {}\x1b[2J\nname: esc\n", "B".repeat(90)),
        )
        .vm(104, "pve1", "cpu: x\x1b[2J\nname: short-esc\n");
    for args in [
        &["audit"][..],
        &["audit", "-o", "json"],
        &["audit", "-o", "html"],
        &["check", "100"],
        &["check", "101"],
        &["check", "102"],
        &["check", "103"],
        &["check", "104"],
        &["hook", "104", "pre-start"],
        &["hook", "100", "pre-start"],
        &["hook", "102", "pre-start"],
    ] {
        let done = c.on("pve1", args).run();
        assert!(
            matches!(done.code, 0..=3),
            "{args:?}: exit {}\n{}",
            done.code,
            &done.stderr[..done.stderr.len().min(2000)]
        );
        assert!(!crate::harness::has(&done.stderr, "panicked"), "{args:?}");
        // JSON and HTML carry the value itself (they are data); text and
        // messages quote at most a part of it.
        if !args.contains(&"json") && !args.contains(&"html") {
            assert!(
                !crate::harness::has(&done.stdout, &a[..1000])
                    && !crate::harness::has(&done.stderr, &a[..1000]),
                "{args:?} repeats the whole value"
            );
            assert!(
                !done.stdout.contains('\u{1b}') && !done.stderr.contains('\u{1b}'),
                "{args:?} prints a raw escape"
            );
        }
    }
}

/// The default text is a summary of groups, whatever the size; the filters
/// and `--all` give VMs in full (issue 23).
#[test]
fn the_summary_groups_findings_and_the_filters_narrow_the_vms() {
    let mut c = intel();
    // Two more `host` VMs: one group of three, not three lines.
    c.vm(108, "pve2", &format!("cpu: host\n{GUARD}")).vm(
        109,
        "pve4",
        &format!("cpu: host\n{GUARD}"),
    );
    let s = c.on("pve1", &["audit"]).run().code(1).stdout;
    assert!(s.starts_with("10 VMs, "), "{s}");
    assert!(
        s.contains("3 VMs: host-cpu-in-mixed-cluster — CPU 'host' passes each node's CPU through"),
        "{s}"
    );
    assert!(s.contains("    e.g. 101, 108, 109\n"), "{s}");
    assert!(s.contains("fix: `qm set VMID --cpu "), "{s}");
    assert!(s.contains("Every VM: `pve-cpuguard audit --all`"), "{s}");
    // No per-VM table in the summary.
    assert!(!s.contains("LIVE-MIGRATES TO"), "{s}");
    let rows = |args: &[&str]| -> Vec<String> {
        let out = c.on("pve1", args).run().stdout;
        out.lines()
            .skip_while(|l| !l.contains("LIVE-MIGRATES TO"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(rows(&["audit", "--all"]).len(), 10);
    assert_eq!(rows(&["audit", "--vm", "101", "104"]), ["101", "104"]);
    assert_eq!(rows(&["audit", "--on", "pve2"]), ["102", "106", "108"]);
    assert_eq!(
        rows(&["audit", "--finding", "host-cpu-in-mixed-cluster"]),
        ["101", "108", "109"]
    );
    c.on("pve1", &["audit", "--finding", "no-such-code"])
        .run()
        .code(2);
    // The JSON narrows alike.
    let v = c
        .on("pve1", &["audit", "--vm", "102", "-o", "json"])
        .run()
        .json();
    // Its tables hold only what that VM refers to (the resolver fails on
    // an entry no VM refers to).
    assert_eq!(audit_json::vms(&v).len(), 1);
}
