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
                let mut got: Vec<String> = nodes(&av[q]["allowed"]);
                got.extend(harness::audit_json::nodes(&av[q]["unknown"]));
                // A removed node's directory stays in this test (its VMs
                // are still there), but it has no data: not a node of the
                // plan's "after".
                let after = nodes(&v[p]["after"]);
                got.retain(|n| {
                    j["cluster"]["after"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == n.as_str())
                });
                got.sort();
                assert_eq!(got, after, "{args:?}: VM {} {p}", v["vmid"]);
            }
        }
        assert_eq!(
            audit["baseline"], j["cluster"]["after"]["level"],
            "{args:?}"
        );
    }
}
