//! Proxmox VE's own per-node CPU flags as `scan`'s second opinion: `pvesh`
//! replaced at the exec boundary by a recorder script that prints a fixed
//! answer (or garbage, or hangs); the records are real published ones.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness;
use crate::harness::exec::{argv, Recorder};
use crate::harness::SshCluster;
use pve_cpuguard::cache::{self, published, Cache};

const HASWELL: &str = "archspec-linux-rhel7-haswell";

/// pve1 published its record; pve2 has none; nothing answers SSH.
fn cluster() -> SshCluster {
    let mut c = SshCluster::new();
    c.closed("pve1");
    c.closed("pve2");
    c.write_config();
    c.cmd(&["publish"])
        .env("PVE_CPUGUARD_NODE", "pve1")
        .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(HASWELL))
        .run()
        .code(0);
    c
}

/// What pve1's published record gives a guest, in QEMU names.
fn pve1_features(c: &SshCluster) -> BTreeSet<String> {
    let p = published::load(&c.pve(), "pve1", cache::now(), u64::MAX).unwrap();
    p.record.capability().features().present.clone()
}

/// pvesh's answer for `nodes` (node → flags), one entry per flag.
fn answer(nodes: &[(&str, &BTreeSet<String>)]) -> String {
    let all: BTreeSet<&String> = nodes.iter().flat_map(|(_, f)| f.iter()).collect();
    let entries: Vec<_> = all
        .into_iter()
        .map(|f| {
            let on: Vec<&str> = nodes
                .iter()
                .filter(|(_, s)| s.contains(f))
                .map(|(n, _)| *n)
                .collect();
            json!({"name": f, "description": format!("{f} flag"), "supported-on": on})
        })
        .collect();
    serde_json::to_string_pretty(&entries).unwrap()
}

/// A `pvesh` that prints `text`.
fn pvesh_printing(c: &SshCluster, text: &str) -> Recorder {
    let file = c.dir.path().join("pvesh-answer.json");
    std::fs::write(&file, text).unwrap();
    Recorder::new(c.dir.path(), "pvesh", &format!("cat '{}'", file.display()))
}

fn scan_json(c: &SshCluster, pvesh: &Recorder, extra: &[&str]) -> harness::Done {
    let mut args = vec!["--output", "json", "scan", "--no-ssh"];
    args.extend(extra);
    c.cmd(&args).env("PVE_CPUGUARD_PVESH", &pvesh.program).run()
}

#[test]
fn pvesh_is_asked_once_with_the_exact_command_and_disagreements_are_reported() {
    let c = cluster();
    let mut lacking = pve1_features(&c);
    assert!(lacking.remove("avx2"));
    let pvesh = pvesh_printing(&c, &answer(&[("pve1", &lacking)]));
    let run = scan_json(&c, &pvesh, &[]);
    assert_eq!(
        pvesh.calls(),
        [argv(&[
            "get",
            "/cluster/qemu/cpu-flags",
            "--accel",
            "kvm",
            "--output-format",
            "json"
        ])]
    );
    let v = run.json();
    let p = &v["pvestatd"];
    assert_eq!(p["status"], "used", "{p}");
    assert_eq!(p["nodes"], json!(["pve1"]));
    let d = &p["disagreements"][0];
    assert_eq!(d["node"], "pve1");
    assert_eq!(d["record_only"], json!(["avx2"]));
    assert_eq!(d["pvestatd_only"], json!([]));
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with("pvestatd says pve1 lacks avx2 that its record has"),
        "{d}"
    );
    assert!(v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w == &d["message"]));
    // The text form warns on stderr; an agreeing list says nothing.
    let text = c
        .cmd(&["scan", "--no-ssh"])
        .env("PVE_CPUGUARD_PVESH", &pvesh.program)
        .run();
    text.stderr_has("pve-cpuguard: warning: pvestatd says pve1 lacks avx2 that its record has");
    let same = pvesh_printing(&c, &answer(&[("pve1", &pve1_features(&c))]));
    let v = scan_json(&c, &same, &[]).json();
    assert_eq!(v["pvestatd"]["disagreements"], json!([]), "{v}");
}

#[test]
fn a_node_with_neither_record_nor_ssh_is_read_from_pvestatd_and_marked_so() {
    let c = cluster();
    let pve2: BTreeSet<String> = ["vmx", "sse4.2", "avx", "avx2", "aes", "pclmulqdq"]
        .iter()
        .map(|f| (*f).to_string())
        .collect();
    let pvesh = pvesh_printing(
        &c,
        &answer(&[("pve1", &pve1_features(&c)), ("pve2", &pve2)]),
    );
    let run = scan_json(&c, &pvesh, &[]).code(0);
    let v = run.json();
    let n = harness::scanned_node(&v, "pve2");
    assert_eq!(n["via"], "pvestatd", "{n}");
    assert_eq!(n["source"], "pvestatd");
    assert_eq!(n["status"], "ok");
    assert_eq!(n["record"]["source"], "pvestatd");
    assert_eq!(v["pvestatd"]["filled"], json!(["pve2"]));
    assert_eq!(v["nodes_without_data"], json!([]));
    let rec = Cache::load(&c.cache())
        .unwrap()
        .node("pve2")
        .unwrap()
        .clone();
    assert_eq!(rec.source.as_deref(), Some("pvestatd"));
    assert!(rec.capability().has("avx2"));
    assert!(!rec.capability().has("avx512f"));
    // Without pvesh the node has no data, and the JSON says why.
    let run = c.run(&["--output", "json", "scan", "--no-ssh"]).code(1);
    let v = run.json();
    assert_eq!(v["pvestatd"]["status"], "absent");
    assert!(v["pvestatd"]["message"]
        .as_str()
        .unwrap()
        .ends_with("not found: Proxmox VE's own CPU flags (PVE 9.2 and later) not compared"));
    // The text of `status` names the source.
    let pvesh = pvesh_printing(&c, &answer(&[("pve2", &pve2)]));
    c.cmd(&["scan", "--no-ssh"])
        .env("PVE_CPUGUARD_PVESH", &pvesh.program)
        .run()
        .stdout_has("  pve2: scanned 0s ago via pvestatd\n");
    c.run(&["status"]).stdout_has(" via pvestatd");
}

#[test]
fn a_garbled_answer_is_a_warning_and_the_scan_goes_on() {
    let c = cluster();
    for (text, why) in [
        ("this is not JSON", "not JSON"),
        (
            r#"[{"name": "avx2", "supported-on": ["pve1; reboot"]}]"#,
            "invalid node name",
        ),
        (r#"{"data": []}"#, "not a JSON list"),
    ] {
        let pvesh = pvesh_printing(&c, text);
        let v = scan_json(&c, &pvesh, &[]).code(1).json();
        assert_eq!(v["pvestatd"]["status"], "problem");
        let m = v["pvestatd"]["message"].as_str().unwrap();
        assert!(
            m.contains("gave an unusable answer: ") && m.contains(why),
            "{m}"
        );
        assert_eq!(harness::scanned_node(&v, "pve1")["via"], "pmxcfs");
        let note = "note: Proxmox VE's own CPU flags (pvestatd) were not compared; \
                    the scan went on without them";
        let w = v["warnings"].as_array().unwrap();
        assert!(
            w.iter().any(|w| w.as_str().unwrap().ends_with(note)),
            "{w:?}"
        );
    }
}

#[test]
fn a_hung_pvesh_is_killed_at_the_timeout() {
    let c = cluster();
    let pvesh = Recorder::new(c.dir.path(), "pvesh", "sleep 60");
    let t = Instant::now();
    let run = c
        .cmd(&["--output", "json", "scan", "--no-ssh", "--timeout", "1"])
        .env("PVE_CPUGUARD_PVESH", &pvesh.program)
        .run()
        .code(1);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let v = run.json();
    assert_eq!(v["pvestatd"]["status"], "problem");
    let m = v["pvestatd"]["message"].as_str().unwrap();
    assert!(m.ends_with("did not finish within 1s (killed)"), "{m}");
    assert_eq!(pvesh.calls().len(), 1);
}
