//! `plan` end to end: the real binary on fixture clusters (an `/etc/pve`
//! tree in Proxmox's formats, a cache from real /proc/cpuinfo samples),
//! one table test per question, and the check that `plan`'s "after" is
//! what `audit` says of the cluster once changed.

use crate::harness;
use crate::harness::cluster::Cluster;
use serde_json::Value;

const SKYLAKE: &str = "hwloc-xeon-silver-4108-skylake-sp";
const CASCADE: &str = "hwloc-xeon-gold-6230-cascadelake";
const HASWELL: &str = "archspec-linux-rhel7-haswell";
const SANDY: &str = "hwloc-xeon-e5-2680-sandybridge-ep";

/// pve1 Skylake-SP, pve2 Cascade Lake (both x86-64-v4), pve3 Haswell
/// (x86-64-v3). VMs: 100 x86-64-v4 (HA), 101 x86-64-v3 (HA), 102
/// Cascadelake-Server, 103 x86-64-v2-AES.
fn mixed() -> Cluster {
    let mut c = Cluster::new(&[("pve1", SKYLAKE), ("pve2", CASCADE), ("pve3", HASWELL)]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nname: db\n")
        .vm(101, "pve2", "cpu: x86-64-v3\n")
        .vm(102, "pve2", "cpu: Cascadelake-Server\n")
        .vm(103, "pve3", "cpu: x86-64-v2-AES\n");
    std::fs::create_dir_all(c.pve().join("ha")).unwrap();
    std::fs::write(
        c.pve().join("ha/resources.cfg"),
        "vm: 100\n\tstate started\n\nvm: 101\n\tstate started\n",
    )
    .unwrap();
    c
}

/// pve1 Cascade Lake, the only strong node; pve2 and pve3 Haswell.
fn one_strong() -> Cluster {
    let mut c = Cluster::new(&[("pve1", CASCADE), ("pve2", HASWELL), ("pve3", HASWELL)]);
    c.vm(100, "pve1", "cpu: Cascadelake-Server\n")
        .vm(101, "pve2", "cpu: x86-64-v3\n");
    c
}

fn plan(c: &Cluster, args: &[&str], code: i32) -> harness::Done {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    c.on("pve1", &all).run().code(code)
}

fn vm(j: &Value, vmid: u64) -> &Value {
    j["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vmid"] == vmid)
        .unwrap_or_else(|| panic!("VM {vmid} in {j}"))
}

fn nodes(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn no_change_reports_no_difference() {
    for c in [mixed(), one_strong()] {
        let out = plan(&c, &[], 0);
        out.stdout_has("No VM gains or loses a node.")
            .stdout_has("Nothing gets worse.")
            .stdout_lacks("qm set");
        let j = plan(&c, &["-o", "json"], 0).json();
        assert_eq!(j["cluster"]["before"], j["cluster"]["after"]);
        for v in j["vms"].as_array().unwrap() {
            assert_eq!(v["start"]["before"], v["start"]["after"], "{v}");
            assert_eq!(v["live"]["before"], v["live"]["after"], "{v}");
        }
        assert_eq!(j["worse"], serde_json::json!([]));
        assert_eq!(j["ha"]["before"], j["ha"]["after"]);
    }
}

/// The questions, each a row: the options, the exit code, lines the text
/// must have, and (VMID, start after, live after) from the JSON.
#[test]
fn table_of_questions() {
    struct Row {
        what: &'static str,
        cluster: fn() -> Cluster,
        args: Vec<String>,
        code: i32,
        text: &'static [&'static str],
        after: &'static [(u64, &'static [&'static str], &'static [&'static str])],
    }
    let sandy = harness::cpuinfo(SANDY).display().to_string();
    let rows = [
        Row {
            what: "add a weak node",
            cluster: mixed,
            args: vec!["--add-node".into(), format!("pve4={sandy}")],
            code: 1,
            text: &[
                "Cluster CPU type: x86-64-v3 → x86-64-v2-AES",
                "VM 100: cannot start on new node pve4; cannot live-migrate to new node pve4",
                "VM 101: cannot start on new node pve4",
                "ha-manager rules add node-affinity cpuguard-",
            ],
            after: &[
                (100, &["pve1", "pve2"], &["pve2"]),
                (101, &["pve1", "pve2", "pve3"], &["pve1", "pve3"]),
                (
                    103,
                    &["pve1", "pve2", "pve3", "pve4"],
                    &["pve1", "pve2", "pve4"],
                ),
            ],
        },
        Row {
            what: "retire the only strong node",
            cluster: one_strong,
            args: vec!["--remove-node".into(), "pve1".into()],
            code: 1,
            text: &[
                "Cluster CPU type: x86-64-v3 (unchanged)",
                "its node is removed: move it first (live to: none)",
                "No node to start on: now none; after VM 100",
                "VM 100: no node left to start on",
            ],
            after: &[(100, &[], &[]), (101, &["pve2", "pve3"], &["pve3"])],
        },
        Row {
            what: "move VMs to a lower type",
            cluster: mixed,
            args: vec![
                "--set-cpu".into(),
                "100=x86-64-v3".into(),
                "--set-cpu".into(),
                "102=x86-64-v3".into(),
            ],
            code: 0,
            text: &[
                "cpu x86-64-v4 → x86-64-v3",
                "start: gains pve3",
                "qm set 100 --cpu x86-64-v3    # on pve1",
                "qm set 102 --cpu x86-64-v3    # on pve2",
                "next cold start",
                "Movable to every node after it: VM 100, 102",
                "ha-manager rules remove cpuguard-",
                "Nothing gets worse.",
            ],
            after: &[
                (100, &["pve1", "pve2", "pve3"], &["pve2", "pve3"]),
                (102, &["pve1", "pve2", "pve3"], &["pve1", "pve3"]),
            ],
        },
        Row {
            what: "every VM to one type",
            cluster: mixed,
            args: vec!["--set-cpu-all".into(), "x86-64-v2-AES".into()],
            code: 0,
            text: &["Movable to every node after it: VM 100, 102"],
            after: &[(101, &["pve1", "pve2", "pve3"], &["pve1", "pve3"])],
        },
    ];
    for row in rows {
        let c = (row.cluster)();
        if row.what == "add a weak node" || row.what == "move VMs to a lower type" {
            // ha-rules applied for the cluster as it is: VM 100 on pve1, pve2.
            let rules = ha_rules_now(&c);
            std::fs::write(c.pve().join("ha/rules.cfg"), rules).unwrap();
        }
        let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
        let out = plan(&c, &args, row.code);
        for t in row.text {
            assert!(
                out.stdout.contains(t),
                "{}: no {t:?} in\n{}",
                row.what,
                out.stdout
            );
        }
        for line in out.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "{}: too long: {line}",
                row.what
            );
        }
        let mut json_args = args.clone();
        json_args.extend(["-o", "json"]);
        let j = plan(&c, &json_args, row.code).json();
        for (vmid, start, live) in row.after {
            let v = vm(&j, *vmid);
            assert_eq!(
                nodes(&v["start"]["after"]),
                *start,
                "{}: VM {vmid}",
                row.what
            );
            assert_eq!(nodes(&v["live"]["after"]), *live, "{}: VM {vmid}", row.what);
        }
    }
}

/// rules.cfg as `ha-manager` leaves it after `ha-rules --apply` on the
/// mixed cluster: VM 100 kept on pve1 and pve2.
fn ha_rules_now(_c: &Cluster) -> String {
    let nodes: pve_cpuguard::guard::ha_rules::Nodes =
        ["pve1", "pve2"].map(|n| (n.to_string(), None)).into();
    format!(
        "node-affinity: {}\n\tcomment {}\n\tnodes pve1,pve2\n\tresources vm:100\n\tstrict 1\n\n",
        pve_cpuguard::guard::ha_rules::rule_id(&nodes),
        pve_cpuguard::guard::ha_rules::COMMENT
    )
}

#[test]
fn usage_errors_exit_2_and_name_what_is_wrong() {
    let c = mixed();
    for (args, says) in [
        (
            vec!["--remove-node", "pve9"],
            "--remove-node pve9: no such node",
        ),
        (
            vec!["--set-cpu", "999=x86-64-v3"],
            "--set-cpu 999: no such VM",
        ),
        (vec!["--set-cpu", "100"], "expected VMID=VALUE"),
        (
            vec!["--set-cpu", "100=custom-nope"],
            "custom-nope is not in cpu-models.conf",
        ),
        (vec!["--add-node", "pve4"], "expected NAME=FILE"),
        (
            vec!["--set-cpu-all", "cputype=x86-64-v3,bogus=1"],
            "cannot parse cpu",
        ),
    ] {
        let out = plan(&c, &args, 2);
        out.stderr_has(says).stderr_has("note:");
    }
}

#[test]
fn a_node_from_a_published_record_file() {
    let c = mixed();
    let file = c.path("pve4.json");
    // On the new machine, not in the cluster: no /etc/pve at all.
    let f = file.display().to_string();
    harness::Run::new(["publish", "--probe", "off", "--output-file", &f])
        .envs([
            ("PVE_CPUGUARD_PVE_DIR", c.path("nowhere")),
            ("PVE_CPUGUARD_NODE", "newbox".into()),
            ("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(HASWELL)),
        ])
        .run()
        .code(0);
    let rec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(rec["node"], "newbox");
    assert_eq!(rec["schema"], 1);
    let spec = format!("pve4={}", file.display());
    let j = plan(&c, &["--add-node", &spec, "-o", "json"], 1).json();
    assert_eq!(j["added"], serde_json::json!(["pve4"]));
    assert_eq!(j["cluster"]["after"]["level"], "x86-64-v3");
    assert_eq!(
        nodes(&vm(&j, 101)["start"]["after"]),
        ["pve1", "pve2", "pve3", "pve4"]
    );
}

#[test]
fn need_names_the_least_a_new_node_must_offer() {
    let c = mixed();
    let out = plan(&c, &["--need"], 0);
    out.stdout_has("A new node must offer")
        .stdout_has("CPU vendor: GenuineIntel");
    let j = plan(&c, &["--need", "-o", "json"], 0).json();
    let need = &j["need"];
    // Cascadelake-Server needs avx512vnni, which no rung has.
    assert_eq!(need["level"], Value::Null);
    assert!(
        nodes(&need["beyond_level"]).contains(&"avx512vnni".to_string()),
        "{need}"
    );
    let models = nodes(&need["models"]);
    assert!(
        models.iter().any(|m| m.starts_with("Cascadelake-Server")),
        "{models:?}"
    );
    assert!(
        !models.iter().any(|m| m.starts_with("Haswell")),
        "{models:?}"
    );
    // Without VM 102, x86-64-v4 is enough.
    let j = plan(
        &c,
        &["--need", "--set-cpu", "102=x86-64-v4", "-o", "json"],
        0,
    )
    .json();
    assert_eq!(j["need"]["level"], "x86-64-v4");
    assert!(nodes(&j["need"]["models"])
        .iter()
        .any(|m| m.starts_with("Skylake-Server")));
}

/// `plan`'s "after" is `audit` of the changed cluster: for each change,
/// the cluster is then really changed on disk (cache record, node
/// directory, VM config) and `audit --output json` run on it.
#[test]
fn after_equals_audit_of_the_changed_cluster() {
    let sandy = harness::cpuinfo(SANDY).display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["--add-node".into(), format!("pve4={sandy}")],
        vec!["--remove-node".into(), "pve3".into()],
        vec!["--set-cpu".into(), "100=x86-64-v3".into()],
        vec![
            "--set-cpu-all".into(),
            "Haswell".into(),
            "--set-cpu".into(),
            "101=x86-64-v4".into(),
        ],
        vec![
            "--remove-node".into(),
            "pve2".into(),
            "--add-node".into(),
            format!("pve4={sandy}"),
            "--set-cpu".into(),
            "103=kvm64".into(),
        ],
    ];
    for args in cases {
        let mut c = mixed();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut ja = a.clone();
        ja.extend(["-o", "json"]);
        let j = c
            .on("pve1", &{
                let mut v = vec!["plan"];
                v.extend(ja);
                v
            })
            .run()
            .json();
        // Change the cluster for real.
        let mut kept: Vec<(String, String)> = c.samples.clone().into_iter().collect();
        for w in a.windows(2) {
            match w[0] {
                "--remove-node" => kept.retain(|(n, _)| n != w[1]),
                "--add-node" => {
                    kept.push(("pve4".into(), SANDY.into()));
                    std::fs::create_dir_all(c.pve().join("nodes/pve4/qemu-server")).unwrap();
                }
                _ => {}
            }
        }
        for (n, _) in c.samples.clone() {
            if !kept.iter().any(|(k, _)| *k == n) {
                // A retired node keeps its directory only for its VMs.
                c.samples.remove(&n);
            }
        }
        for (n, s) in &kept {
            c.samples.insert(n.clone(), s.clone());
        }
        c.write_cache(&kept.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
        for v in j["vms"].as_array().unwrap() {
            let (id, node) = (v["vmid"].as_u64().unwrap(), v["node"].as_str().unwrap());
            let (cb, ca) = (&v["cpu"]["before"], &v["cpu"]["after"]);
            if cb != ca {
                let conf = c.vm_config(node, id as u32);
                let conf = conf.replace(
                    &format!("cpu: {}\n", cb.as_str().unwrap()),
                    &format!("cpu: {}\n", ca.as_str().unwrap()),
                );
                c.vm(id as u32, node, &conf);
            }
        }
        let audit = c.on("pve1", &["audit", "-o", "json"]).run().json();
        for v in j["vms"].as_array().unwrap() {
            let av = harness::audit_json::vm(&audit, v["vmid"].as_u64().unwrap());
            for (p, q) in [("start", "start"), ("live", "live_migration")] {
                // Allowed is allowed, unknown stays unknown.
                let mut got: Vec<String> = nodes(&av[q]["allowed"]);
                let mut unknown: Vec<String> = harness::audit_json::nodes(&av[q]["unknown"]);
                // A removed node's directory stays in this test (its VMs
                // are still there), but it has no data: not a node of the
                // plan's "after".
                let in_after = |n: &String| {
                    j["cluster"]["after"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == n.as_str())
                };
                got.retain(in_after);
                unknown.retain(in_after);
                got.sort();
                unknown.sort();
                assert_eq!(got, nodes(&v[p]["after"]), "{args:?}: VM {} {p}", v["vmid"]);
                assert_eq!(
                    unknown,
                    nodes(&v[p]["unknown"]["after"]),
                    "{args:?}: VM {} {p} unknown",
                    v["vmid"]
                );
            }
        }
        // The removed node's directory left without data: the audit claims
        // no baseline (issue 23) and says the plan's over the others.
        let scanned = audit["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["freshness"]["state"] != "never-scanned")
            .count();
        let after = &j["cluster"]["after"]["level"];
        if scanned == audit["nodes"].as_array().unwrap().len() {
            assert_eq!(&audit["baseline"], after, "{args:?}");
        } else {
            assert_eq!(audit["baseline"], serde_json::Value::Null, "{args:?}");
            c.on("pve1", &["audit"]).run().stdout_has(&format!(
                "; {} on the {scanned} nodes scanned",
                after.as_str().unwrap()
            ));
        }
    }
}

/// [`mixed`] with VM 104 of a model no verdict can judge.
fn with_foobar() -> Cluster {
    let mut c = mixed();
    c.vm(104, "pve3", "cpu: Foobar\n");
    c
}

/// [`mixed`] with a pve4 in the cluster file system, never scanned.
fn with_unscanned() -> Cluster {
    let c = mixed();
    std::fs::create_dir_all(c.pve().join("nodes/pve4/qemu-server")).unwrap();
    c
}

/// Issue 1: a `cpu:` value the verdict cannot judge is a usage error
/// naming it; an existing VM the verdict cannot judge, and a node never
/// scanned, are unknown — never allowed, gained, movable, nor "Nothing
/// gets worse".
#[test]
fn unknown_is_never_counted_as_allowed() {
    // The values: exit 2, naming the value, with a note.
    for (args, says) in [
        (
            vec!["--set-cpu", "103=Foobar"],
            "--set-cpu 103: cpu 'Foobar'",
        ),
        (
            vec!["--set-cpu-all", "Foobar"],
            "--set-cpu-all: cpu 'Foobar'",
        ),
        (
            vec!["--set-cpu", "103=x86-64-v2-AES,flags=+bogus"],
            "unknown CPU flag 'bogus'",
        ),
    ] {
        let out = plan(&with_foobar(), &args, 2);
        out.stderr_has(says)
            .stderr_has("cannot be judged")
            .stderr_has("note:")
            .stdout_lacks("qm set")
            .stdout_lacks("Nothing gets worse");
    }
    struct Row {
        what: &'static str,
        cluster: fn() -> Cluster,
        args: Vec<String>,
        code: i32,
        text: &'static [&'static str],
        lacks: &'static [&'static str],
        /// (VMID, start after, start unknown after)
        vms: &'static [(u64, &'static [&'static str], &'static [&'static str])],
    }
    let cascade = harness::cpuinfo(CASCADE).display().to_string();
    let rows = [
        Row {
            what: "existing unknown VM, a node added",
            cluster: with_foobar,
            args: vec!["--add-node".into(), format!("pve4={cascade}")],
            code: 3,
            text: &[
                "start: unknown on pve1, pve2, pve3, pve4",
                "Cannot be judged after the change:",
                "VM 104: unknown on pve1, pve2, pve3, pve4: unknown CPU type 'Foobar'",
                "Nothing known gets worse",
            ],
            lacks: &[
                "Nothing gets worse.",
                "VM 104 on pve3, cpu Foobar\n    start: gains",
            ],
            vms: &[
                (104, &[], &["pve1", "pve2", "pve3", "pve4"]),
                (101, &["pve1", "pve2", "pve3", "pve4"], &[]),
            ],
        },
        Row {
            what: "a never-scanned node, a cpu: change",
            cluster: with_unscanned,
            args: vec!["--set-cpu".into(), "100=x86-64-v3".into()],
            code: 3,
            text: &[
                "start: gains pve3",
                "Movable to every node after it: unknown while pve4 was never scanned",
                "VM 100: unknown on pve4: never scanned",
            ],
            lacks: &["Nothing gets worse.", "gains pve4"],
            vms: &[(100, &["pve1", "pve2", "pve3"], &["pve4"])],
        },
        Row {
            what: "a never-scanned node, every VM to one type",
            cluster: with_unscanned,
            args: vec!["--set-cpu-all".into(), "x86-64-v2-AES".into()],
            code: 3,
            text: &["Movable to every node after it: unknown while pve4 was never scanned"],
            lacks: &["Nothing gets worse.", "gains pve4", "VM 100, 102"],
            vms: &[(101, &["pve1", "pve2", "pve3"], &["pve4"])],
        },
    ];
    for row in rows {
        let c = (row.cluster)();
        let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
        let out = plan(&c, &args, row.code);
        for t in row.text {
            assert!(
                out.stdout.contains(t),
                "{}: no {t:?} in\n{}",
                row.what,
                out.stdout
            );
        }
        for t in row.lacks {
            assert!(
                !out.stdout.contains(t),
                "{}: {t:?} in\n{}",
                row.what,
                out.stdout
            );
        }
        let mut json_args = args.clone();
        json_args.extend(["-o", "json"]);
        let j = plan(&c, &json_args, row.code).json();
        assert_eq!(j["made_movable"], serde_json::json!([]), "{}", row.what);
        assert!(
            !j["unjudged"].as_array().unwrap().is_empty(),
            "{}",
            row.what
        );
        for (vmid, start, unknown) in row.vms {
            let v = vm(&j, *vmid);
            assert_eq!(
                nodes(&v["start"]["after"]),
                *start,
                "{}: VM {vmid}",
                row.what
            );
            assert_eq!(
                nodes(&v["start"]["unknown"]["after"]),
                *unknown,
                "{}: VM {vmid}",
                row.what
            );
            for n in *unknown {
                assert!(
                    !nodes(&v["start"]["gained"]).contains(&n.to_string()),
                    "{v}"
                );
                assert!(!nodes(&v["live"]["gained"]).contains(&n.to_string()), "{v}");
            }
            if !unknown.is_empty() {
                assert_eq!(v["movable"]["after"], Value::Null, "{}: {v}", row.what);
            }
        }
    }
    // Unknown before, judged after: no gain, said as it is.
    let c = with_foobar();
    plan(&c, &["--set-cpu", "104=x86-64-v3"], 0)
        .stdout_has("    start: allowed on pve1, pve2, pve3 (unknown before)")
        .stdout_lacks("gains");
    // Unknown before and after, nothing changed: movable neither time.
    let j = plan(&with_foobar(), &["-o", "json"], 0).json();
    assert_eq!(vm(&j, 104)["movable"]["before"], Value::Null);
    assert_eq!(nodes(&vm(&j, 104)["start"]["before"]), Vec::<String>::new());
}

/// Issue 2: text and JSON agree once a never-scanned node is removed.
#[test]
fn removing_a_never_scanned_node_text_and_json_agree() {
    let c = with_unscanned();
    plan(&c, &["--remove-node", "pve4"], 0)
        .stdout_has(
            "Cluster CPU type: unknown → x86-64-v3 (now unknown while pve4 was never scanned)",
        )
        .stdout_lacks("(unchanged) on the nodes scanned");
    let j = plan(&c, &["--remove-node", "pve4", "-o", "json"], 0).json();
    assert_eq!(j["cluster"]["before"]["level"], Value::Null);
    assert_eq!(j["cluster"]["after"]["level"], "x86-64-v3");
    // The same nodes missing before and after: the answer on the others.
    plan(&c, &[], 0).stdout_has(
        "Cluster CPU type: unknown while pve4 was never scanned; x86-64-v3 (unchanged) on the \
         nodes scanned",
    );
}

/// Issue 3: stale data is named, in text and JSON, in the words of every
/// other command: a cached record, and a published record added.
#[test]
fn stale_data_is_named_with_its_age() {
    let c = mixed();
    let now = pve_cpuguard::cache::now();
    c.write_records([
        Cluster::record("pve1", "10.0.0.1", SKYLAKE, now),
        Cluster::record("pve2", "10.0.0.2", CASCADE, now - 3 * 86_400),
        Cluster::record("pve3", "10.0.0.3", HASWELL, now),
    ]);
    let out = plan(&c, &[], 0);
    out.stdout_has("Stale data:")
        .stdout_has("  pve2: scanned 3d 0h ago")
        .stdout_has("STALE: older than cache_max_age")
        .stdout_lacks("  pve3: scanned");
    let j = plan(&c, &["-o", "json"], 0).json();
    let node = |j: &Value, n: &str| {
        j["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {j}"))
            .clone()
    };
    assert_eq!(node(&j, "pve2")["freshness"]["state"], "stale");
    assert_eq!(node(&j, "pve2")["freshness"]["stale"], true);
    assert!(
        node(&j, "pve2")["freshness"]["age_seconds"]
            .as_u64()
            .unwrap()
            >= 3 * 86_400
    );
    assert_eq!(node(&j, "pve3")["freshness"]["state"], "fresh");

    // A record published 30 days ago, added.
    let c = mixed();
    let file = c.path("pve4.json");
    let f = file.display().to_string();
    harness::Run::new(["publish", "--probe", "off", "--output-file", &f])
        .envs([
            ("PVE_CPUGUARD_PVE_DIR", c.path("nowhere")),
            ("PVE_CPUGUARD_NODE", "newbox".into()),
            ("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(CASCADE)),
        ])
        .run()
        .code(0);
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let old = now - 30 * 86_400;
    rec["published_at"] = old.into();
    rec["record"]["scanned_at"] = old.into();
    std::fs::write(&file, rec.to_string()).unwrap();
    let spec = format!("pve4={f}");
    plan(&c, &["--add-node", &spec], 0)
        .stdout_has("Stale data:")
        .stdout_has("  pve4 (added): scanned 30d 0h ago")
        .stdout_has("STALE");
    let j = plan(&c, &["--add-node", &spec, "-o", "json"], 0).json();
    assert_eq!(node(&j, "pve4")["added"], true);
    assert_eq!(node(&j, "pve4")["freshness"]["stale"], true);
}

/// Issue 4: `--add-node` of a name the cluster has, or given twice.
#[test]
fn add_node_with_an_existing_or_repeated_name_is_a_usage_error() {
    let c = mixed();
    let h = harness::cpuinfo(HASWELL).display().to_string();
    let (pve1, pve4) = (format!("pve1={h}"), format!("pve4={h}"));
    plan(&c, &["--add-node", &pve1], 2)
        .stderr_has("--add-node pve1: the cluster has a node of that name")
        .stderr_has(
            "note: to model a CPU change of pve1, use --remove-node pve1 --add-node pve1b=FILE",
        );
    plan(&c, &["--add-node", &pve4, "--add-node", &pve4], 2)
        .stderr_has("--add-node pve4: given twice")
        .stderr_has("note:");
}

/// Issue 5: `ha-manager` calls pending now are not the plan's.
#[test]
fn no_change_lists_no_ha_calls() {
    // No rules.cfg: `ha-rules` has calls pending for the HA VMs now.
    let c = mixed();
    plan(&c, &[], 0)
        .stdout_lacks("ha-manager")
        .stdout_has("HA rules: unchanged by this plan (`pve-cpuguard ha-rules` shows");
    let j = plan(&c, &["-o", "json"], 0).json();
    assert_eq!(j["ha"]["calls"], j["ha"]["calls_now"]);
    // A change that does not touch them lists none either.
    plan(&c, &["--set-cpu", "103=x86-64-v2"], 0).stdout_lacks("ha-manager");
}

/// Issue 6: no node data, nothing to plan by: exit 3, as audit.
#[test]
fn empty_cache_exits_3() {
    let c = mixed();
    c.write_records([]);
    let out = harness::Run::of(c.command(None, &["plan"])).run().code(3);
    out.stderr_has("no node data")
        .stderr_has("note: run `pve-cpuguard scan` first")
        .stdout_lacks("Nothing gets worse");
    let c = with_unscanned();
    c.write_records([]);
    harness::Run::of(c.command(None, &["plan", "--set-cpu", "100=x86-64-v3"]))
        .run()
        .code(3)
        .stderr_has("no node data");
}
