//! `audit --output json` is normalised (issue 23, docs/json.md): each
//! distinct answer, verdict, requirement and finding once, VMs referring to
//! them by id, no reference dangling and no entry unused
//! (`harness::audit_json` resolves and checks every reference).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::audit_json;
use crate::harness::cluster::Cluster;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

/// The example of docs/json.md: pve1 Skylake-SP (x86-64-v4), pve2 Haswell
/// (x86-64-v3, no AVX-512), pve3 never scanned; VMs 100 and 101 configured
/// alike on pve1.
fn twins() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", &format!("cpu: x86-64-v4\nname: db\n{GUARD}"))
        .vm(101, "pve1", &format!("cpu: x86-64-v4\nname: db2\n{GUARD}"));
    c.write_cache(&["pve1".to_string(), "pve2".to_string()]);
    c
}

fn table<'a>(doc: &'a Value, name: &str) -> &'a Vec<Value> {
    doc[name]
        .as_array()
        .unwrap_or_else(|| panic!("no table {name}: {doc}"))
}

/// An entry without its id: what it states.
fn content(v: &Value) -> Value {
    let mut v = v.as_object().unwrap().clone();
    v.remove("id");
    Value::Object(v)
}

#[test]
fn two_vms_configured_alike_on_the_same_node_share_every_entry() {
    let c = twins();
    let doc = c.on("pve1", &["audit", "-o", "json"]).run().code(1).json();
    assert_eq!(doc["format"], 2);
    // One refusal (pve2 lacks AVX-512) and one node without data: two
    // verdicts, stated once for both VMs and both questions.
    assert_eq!(
        table(&doc, "verdicts"),
        &serde_json::json!([
            {"id": 0, "verdict": "incompatible", "codes": ["missing-flags"],
             "reasons": ["missing flags: avx512bw, avx512cd, avx512dq, avx512f, avx512vl"]},
            {"id": 1, "verdict": "unknown", "codes": [],
             "reasons": ["never scanned"]},
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        table(&doc, "answers"),
        &serde_json::json!([
            {"id": 0, "question": "start", "allowed": ["pve1"],
             "refused": {"pve2": 0}, "unknown": {"pve3": 1}},
            {"id": 1, "question": "live_migration", "allowed": [],
             "refused": {"pve2": 0}, "unknown": {"pve3": 1}},
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    for name in ["requirements", "findings", "suggestions"] {
        assert_eq!(table(&doc, name).len(), 1, "{name}: {doc}");
    }
    assert_eq!(doc["findings"][0]["code"], "above-baseline");
    assert_eq!(doc["findings"][0]["nodes"], serde_json::json!(["pve2"]));
    assert_eq!(doc["requirements"][0]["cpu"], "x86-64-v4");
    assert_eq!(doc["suggestions"][0]["works_everywhere"], "x86-64-v3");
    let refs = |v: &Value| {
        (
            v["requirement"].clone(),
            v["start"].clone(),
            v["live_migration"].clone(),
            v["flags"].clone(),
            v["suggestion"].clone(),
        )
    };
    let vms = table(&doc, "vms");
    assert_eq!(vms.len(), 2);
    assert_eq!(refs(&vms[0]), refs(&vms[1]));
    assert_eq!(vms[1]["name"], "db2");
    // The references resolve, and nothing is unused.
    assert_eq!(audit_json::vms(&doc).len(), 2);
}

/// A cluster of several CPUs and VMs of many kinds: every entry of every
/// table is distinct from the others of its table, and the VMs' references
/// all resolve.
#[test]
fn each_distinct_entry_is_stated_once() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-ubuntu20.04-zen3"),
        ("pve4", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve5", "hwloc-xeon-e5-2680-sandybridge-ep"),
    ]);
    let configs = [
        "cpu: x86-64-v4\n",
        "cpu: x86-64-v3\n",
        "cpu: host\n",
        "cpu: max\n",
        "cpu: kvm64\nhugepages: 1024\n",
        "cpu: x86-64-v2-AES,phys-bits=host\n",
        "cpu: Cascadelake-Server\nsockets: 2\ncores: 32\n",
        "cpu: NoSuchModel\n",
        "cpu: x86-64-v2-AES\n[PENDING]\ncpu: x86-64-v4\n",
    ];
    let nodes = ["pve1", "pve2", "pve3", "pve4", "pve5"];
    let mut vmid = 100;
    for (i, conf) in configs.iter().enumerate() {
        // Each configuration on two nodes, twice on the first, half of
        // them guarded.
        for node in [nodes[i % 5], nodes[(i + 2) % 5], nodes[i % 5]] {
            let guard = if vmid % 2 == 0 { GUARD } else { "" };
            c.vm(vmid, node, &format!("{conf}name: vm{vmid}\n{guard}"));
            vmid += 1;
        }
    }
    let doc = c.on("pve1", &["audit", "-o", "json"]).run().code(1).json();
    for name in [
        "requirements",
        "verdicts",
        "answers",
        "findings",
        "suggestions",
    ] {
        let rows = table(&doc, name);
        let distinct: BTreeSet<String> = rows.iter().map(|r| content(r).to_string()).collect();
        assert_eq!(
            distinct.len(),
            rows.len(),
            "{name} repeats an entry: {rows:?}"
        );
    }
    // Enough of each to mean something: refusals of several kinds.
    assert!(table(&doc, "verdicts").len() >= 5, "{doc}");
    assert!(table(&doc, "answers").len() > configs.len(), "{doc}");
    let vms = audit_json::vms(&doc);
    assert_eq!(vms.len(), 27);
    // VMs configured alike on one node refer to the same answers.
    let on = |id: u64| vms.iter().find(|v| v["vmid"] == id).unwrap();
    assert_eq!(
        table(&doc, "vms")[0]["start"],
        table(&doc, "vms")[2]["start"]
    );
    assert_eq!(
        table(&doc, "vms")[0]["live_migration"],
        table(&doc, "vms")[2]["live_migration"]
    );
    // A host VM's live answer depends on the node its guest runs on.
    assert_ne!(on(106)["live_migration"], on(107)["live_migration"]);
}

/// The checks can fail: a reference past its table, and an entry no VM
/// refers to, are caught.
#[test]
fn a_dangling_or_unused_entry_is_caught() {
    let c = twins();
    let doc = c.on("pve1", &["audit", "-o", "json"]).run().code(1).json();
    let mut dangling = doc.clone();
    dangling["vms"][0]["start"] = serde_json::json!(7);
    let caught = std::panic::catch_unwind(|| audit_json::vms(&dangling));
    assert!(caught.is_err(), "a dangling answer id went unnoticed");
    let mut unused = doc.clone();
    unused["findings"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": 1, "code": "cannot-judge", "message": "x", "nodes": []}));
    let caught = std::panic::catch_unwind(|| audit_json::vms(&unused));
    assert!(caught.is_err(), "an unused finding went unnoticed");
    let mut verdict = doc;
    verdict["answers"][0]["refused"]["pve2"] = serde_json::json!(1);
    let caught = std::panic::catch_unwind(|| audit_json::vms(&verdict));
    assert!(
        caught.is_err(),
        "an unknown verdict as a refusal went unnoticed"
    );
}
