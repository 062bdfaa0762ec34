//! One record per node decides, and every command tells the same story
//! (issue 10). The fake cluster's local node `pve1` is the nested EPYC of
//! tests/data/qmp: its /proc/cpuinfo says x86-64-v3, but its QEMU under KVM
//! (a recorded, unedited QMP transcript) cannot give SSE3, so not even
//! `kvm64` starts there. `status`, `baseline`, `audit`, `check`, the hook,
//! `migrate` (with a fake `qm` at the exec boundary), `metrics`,
//! `inspect` and `why-not` must report the same level for every node, the
//! same cluster level and the same start verdict per VM and node, and every
//! CPU type any of them recommends must be accepted on every node.

use crate::harness;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::harness::cluster::Cluster;
use crate::harness::exec::{argv, Recorder};
use pve_cpuguard::cache::{Cache, NodeRecord};
use pve_cpuguard::reach::kvm_probe::{self, Accel};
use serde_json::Value;

const NODES: [&str; 3] = ["pve1", "pve2", "pve3"];
/// VM → (owner, cpu: line or none).
const VMS: [(u32, &str, Option<&str>); 4] = [
    (100, "pve2", Some("x86-64-v3")),
    (101, "pve3", Some("x86-64-v2-AES")),
    (102, "pve1", None),
    (103, "pve3", Some("x86-64-v4")),
];

/// The nested EPYC's recorded cpuinfo, written into the cluster's temp
/// dir with `svm` on every flags line: that machine runs KVM through an
/// out-of-tree module and shows none, a Proxmox VE node with KVM shows it.
fn local_cpuinfo(c: &Cluster) -> PathBuf {
    let path = c.path("pvm-epyc-cpuinfo.txt");
    if !path.exists() {
        let text = std::fs::read_to_string(harness::data("qmp/pvm-epyc-cpuinfo.txt")).unwrap();
        let with_svm: String = text
            .lines()
            .map(|l| {
                if l.starts_with("flags") {
                    format!("{l} svm\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&path, with_svm).unwrap();
    }
    path
}

/// The cluster; `kvm`: whether pve1's scan got QEMU's answer (else its
/// probe failed and the record holds why).
fn cluster(kvm: bool) -> Cluster {
    let mut c = Cluster::new(&[
        // pve1's own sample is replaced below (cache and PVE_CPUGUARD_CPUINFO).
        ("pve1", "archspec-linux-ubuntu20.04-zen3"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-rocky8.5-zen4"),
    ]);
    let mut cache = Cache::load(&c.cache()).unwrap();
    let info = pve_cpuguard::reach::local::cpuinfo(&local_cpuinfo(&c)).unwrap();
    let answer = if kvm {
        let bytes = std::fs::read(harness::data("qmp/qemu-7.2-pvm-epyc-kvm.jsonl")).unwrap();
        Ok(kvm_probe::interpret(&bytes, b"", Accel::Kvm, "recorded").unwrap())
    } else {
        Err("qemu-system-x86_64: Could not access KVM kernel module: Permission denied".into())
    };
    let rec = NodeRecord::new("pve1", "10.0.0.9", &info, None, pve_cpuguard::cache::now())
        .with_kvm(Some(answer));
    cache.nodes.insert("pve1".into(), rec);
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    for (vmid, node, cpu) in VMS {
        let conf = match cpu {
            Some(cpu) => format!("name: vm{vmid}\ncpu: {cpu}\nmemory: 2048\n"),
            None => format!("name: vm{vmid}\nmemory: 2048\n"),
        };
        c.vm(vmid, node, &conf);
    }
    c
}

/// The binary as if on `node` (pve1 reads the nested EPYC's cpuinfo).
fn on(c: &Cluster, node: &str, args: &[&str]) -> harness::Run {
    let run = c.on(node, args);
    if node == "pve1" {
        run.env("PVE_CPUGUARD_CPUINFO", local_cpuinfo(c))
    } else {
        run
    }
}

fn json(c: &Cluster, node: &str, args: &[&str], code: i32) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    on(c, node, &a).run().code(code).json()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("null").to_string()
}

/// What one command says: node → level, the cluster level, and
/// (vmid, node) → may start.
#[derive(Debug, Default, PartialEq)]
struct Story {
    levels: BTreeMap<String, String>,
    cluster: String,
    starts: BTreeMap<(u32, String), bool>,
}

/// Runs every command and checks they agree; returns the common story and
/// every CPU type some command recommended for every node.
fn tell(c: &Cluster) -> (Story, Vec<String>) {
    let mut recommended: Vec<String> = Vec::new();
    let mut levels: Vec<(&str, BTreeMap<String, String>)> = Vec::new();
    let mut clusters: Vec<(&str, String)> = Vec::new();
    let mut views: Vec<(&str, String)> = Vec::new();

    let status = json(c, "pve1", &["status"], 0);
    let baseline = json(c, "pve1", &["baseline"], 0);
    let audit = on(c, "pve1", &["audit", "-o", "json"]).run().json();
    // (command, its JSON, its list of nodes, its cluster level)
    for (cmd, v, nodes, cluster) in [
        ("status", &status, "nodes", "cluster_cpu_type"),
        ("baseline", &baseline, "node_levels", "level"),
        ("audit", &audit, "nodes", "baseline"),
    ] {
        levels.push((
            cmd,
            v[nodes]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| (s(&n["name"]), s(&n["level"])))
                .collect(),
        ));
        clusters.push((cmd, s(&v[cluster])));
        views.push((cmd, s(&v[nodes][0]["view"])));
    }
    recommended.extend(audit["works_everywhere"].as_str().map(first_word));
    let mut audit_starts = BTreeMap::new();
    for vm in crate::harness::audit_json::vms(&audit) {
        let vmid = u32::try_from(vm["vmid"].as_u64().unwrap()).unwrap();
        recommended.extend(vm["works_everywhere"].as_str().map(first_word));
        for n in vm["start"]["allowed"].as_array().unwrap() {
            audit_starts.insert((vmid, s(n)), true);
        }
        for n in crate::harness::audit_json::nodes(&vm["start"]["refused"]) {
            audit_starts.insert((vmid, n), false);
        }
        assert!(
            vm["start"]["unknown"].as_object().unwrap().is_empty(),
            "{vm}"
        );
    }

    let metrics = on(c, "pve1", &["metrics"]).run().code(0).stdout;
    let mut m_levels = BTreeMap::new();
    let mut m_cluster = String::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("pve_cpuguard_node_level{node=\"") {
            let (node, rest) = rest.split_once('"').unwrap();
            let level = rest.split('"').nth(1).unwrap();
            m_levels.insert(node.to_string(), level.to_string());
        }
        if let Some(rest) = line.strip_prefix("pve_cpuguard_cluster_level{level=\"") {
            m_cluster = rest.split('"').next().unwrap().to_string();
        }
        if line.starts_with("pve_cpuguard_node_view{node=\"pve1\"") {
            views.push(("metrics", line.split('"').nth(3).unwrap().to_string()));
        }
    }
    levels.push(("metrics", m_levels));
    clusters.push(("metrics", m_cluster));

    let inspect = json(c, "pve1", &["inspect"], 0);
    views.push(("inspect", s(&inspect["view"])));
    assert_eq!(
        s(&inspect["level"]),
        levels[0].1["pve1"],
        "inspect on pve1: {inspect}"
    );

    // check, the hook and migrate: every VM against every node.
    let mut check_starts = BTreeMap::new();
    let mut hook_starts = BTreeMap::new();
    let mut migrate_starts = BTreeMap::new();
    let qm = Recorder::new(c.dir.path(), "qm", "exit 0\n");
    for (vmid, owner, _) in VMS {
        let id = vmid.to_string();
        let mut args = vec!["check", id.as_str(), "--mode", "start", "-o", "json"];
        for n in NODES {
            args.extend(["--target", n]);
        }
        let check = on(c, "pve1", &args).run();
        let check = check.json();
        recommended.extend(check["works_everywhere"].as_str().map(first_word));
        for n in NODES {
            let d = &check["decisions"][n];
            check_starts.insert((vmid, n.to_string()), d["allow"].as_bool().unwrap());
            assert_eq!(s(&d["level"]), levels[0].1[n], "check's level of {n}");

            let hook = on(c, n, &["hook", &id, "pre-start"]).run();
            assert!(hook.code == 0 || hook.code == 1, "{}", hook.stderr);
            hook_starts.insert((vmid, n.to_string()), hook.code == 0);
            recommended.extend(recommended_in(&hook.stderr));

            if n != owner {
                qm.clear();
                let m = on(c, owner, &["migrate", &id, n])
                    .env("PVE_CPUGUARD_QM", &qm.program)
                    .env("PVE_CPUGUARD_PROBE", "off")
                    .run();
                match m.code {
                    0 => assert_eq!(qm.calls(), [argv(&["migrate", &id, n])], "qm argv"),
                    1 => assert!(qm.calls().is_empty(), "qm ran although refused"),
                    other => panic!("migrate exit {other}: {}", m.stderr),
                }
                migrate_starts.insert((vmid, n.to_string()), m.code == 0);
                recommended.extend(recommended_in(&m.stderr));
            }
        }
    }

    // The same level for every node, the same cluster level.
    for (cmd, l) in &levels {
        assert_eq!(
            l, &levels[0].1,
            "{cmd} disagrees with status on node levels"
        );
    }
    for (cmd, l) in &clusters {
        assert_eq!(
            l, &clusters[0].1,
            "{cmd} disagrees with status on the cluster level"
        );
    }
    for (cmd, v) in &views {
        assert_eq!(v, &views[0].1, "{cmd} disagrees on which view decided pve1");
    }
    // The same start verdict per VM and node.
    assert_eq!(check_starts, audit_starts, "check vs audit");
    assert_eq!(hook_starts, audit_starts, "hook vs audit");
    for (k, v) in &migrate_starts {
        assert_eq!(Some(v), audit_starts.get(k), "migrate vs audit for {k:?}");
    }
    recommended.sort();
    recommended.dedup();
    (
        Story {
            levels: levels[0].1.clone(),
            cluster: clusters[0].1.clone(),
            starts: audit_starts,
        },
        recommended,
    )
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or(s).to_string()
}

/// The CPU types a hook's or migrate's refusal recommends for every node.
fn recommended_in(stderr: &str) -> impl Iterator<Item = String> + '_ {
    stderr.lines().filter_map(|line| {
        line.trim()
            .strip_prefix("CPU type that works on every node: ")
            .map(first_word)
    })
}

/// Every recommended type is accepted on every node, by `why-not` on that
/// node (the local view) and by `check` for a VM of that type.
fn accepted_everywhere(c: &mut Cluster, cpu: &str) {
    for n in NODES {
        on(c, n, &["why-not", cpu]).run().code(0);
    }
    c.vm(199, "pve2", &format!("cpu: {cpu}\n"));
    let mut args = vec!["check", "199", "--mode", "start"];
    for n in NODES {
        args.extend(["--target", n]);
    }
    on(c, "pve1", &args).run().code(0);
}

#[test]
fn every_command_tells_the_same_story() {
    // QEMU's answer decides pve1: below kvm64, whatever cpuinfo says.
    let c = cluster(true);
    let (story, recommended) = tell(&c);
    assert_eq!(story.levels["pve1"], "below-kvm64");
    assert_eq!(story.levels["pve2"], "x86-64-v3");
    assert_eq!(story.levels["pve3"], "x86-64-v4");
    assert_eq!(story.cluster, "below-kvm64");
    assert!(
        recommended.is_empty(),
        "nothing starts on pve1, so nothing is recommended for every node: {recommended:?}"
    );
    for (vmid, _, _) in VMS {
        assert!(!story.starts[&(vmid, "pve1".into())], "VM {vmid} on pve1");
    }
    assert!(story.starts[&(100, "pve3".into())]);
    assert!(!story.starts[&(103, "pve2".into())]);
    // The disagreement is a note beside the one answer, and the node is
    // flagged as below the floor.
    let status = on(&c, "pve1", &["status"]).run().code(0).stdout;
    assert!(status.contains("pve1 | 10.0.0.9 | below-kvm64"), "{status}");
    assert!(
        status.contains("\nView: pve1 kvm, pve2 cpuinfo, pve3 cpuinfo\n"),
        "{status}"
    );
    assert!(
        status.contains(
            "note: pve1: /proc/cpuinfo alone would say x86-64-v3; QEMU 7.2.22 under KVM decides"
        ),
        "{status}"
    );
    assert!(!status.contains("pve1 | 10.0.0.9 | x86-64-v3"), "{status}");
    // The hook's refusal on pve1 says which view decided.
    on(&c, "pve1", &["hook", "100", "pre-start"])
        .run()
        .code(1)
        .stderr_has("  view: kvm (checked with QEMU 7.2.22 under KVM)");
    let check = on(&c, "pve1", &["check", "100", "--mode", "start"])
        .run()
        .stdout;
    assert!(
        check.contains("No CPU type works on every node: not even kvm64 starts on pve1"),
        "{check}"
    );
}

#[test]
fn a_failed_probe_is_a_warning_and_recommendations_pass_the_verdict() {
    // pve1's probe failed: cpuinfo decides, and every output says so.
    let mut c = cluster(false);
    let (story, recommended) = tell(&c);
    assert_eq!(story.levels["pve1"], "x86-64-v3");
    assert_eq!(story.cluster, "x86-64-v3");
    assert_eq!(recommended, ["x86-64-v3"]);
    for cpu in &recommended {
        accepted_everywhere(&mut c, cpu);
    }
    let status = on(&c, "pve1", &["status"]).run().code(0).stdout;
    assert!(
        status.contains(
            "note: pve1: QEMU probe failed (qemu-system-x86_64: Could not access KVM kernel module"
        ),
        "{status}"
    );
    assert!(
        status.contains("\nView: pve1 cpuinfo, pve2 cpuinfo, pve3 cpuinfo\n"),
        "{status}"
    );
}
