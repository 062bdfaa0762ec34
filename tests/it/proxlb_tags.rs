//! `proxlb-tags` end to end: the real binary on a fixture `/etc/pve`, `qm`
//! replaced at the exec boundary by a script that records its argv.

use crate::harness::cluster::Cluster;
use crate::harness::exec::Recorder;

fn argv(vmid: &str, tags: &str) -> Vec<String> {
    ["set", vmid, "--tags", tags].map(str::to_string).to_vec()
}

/// pve1 Skylake-SP and pve2 Cascade Lake (x86-64-v4), pve3 Haswell.
#[test]
fn pins_then_nothing_then_only_our_pins_change() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\ntags: prod;web\n")
        .vm(101, "pve1", "cpu: x86-64-v3\ntags: prod\n")
        .vm(102, "pve1", "cpu: x86-64-v4\ntags: plb_pin_pve3\n")
        .vm(104, "pve2", "cpu: Cascadelake-Server\n");
    let qm = Recorder::new(c.dir.path(), "qm", "exit 0\n");
    let run =
        |c: &Cluster, args: &[&str]| c.on("pve1", args).env("PVE_CPUGUARD_QM", &qm.program).run();

    let out = run(&c, &["proxlb-tags", "--dry-run"]).code(1);
    assert!(qm.calls().is_empty());
    out.stdout_has("would run:");

    let out = run(&c, &["proxlb-tags", "--apply"]).code(0);
    // 101 goes everywhere: no tag; 102 is the administrator's; 104 is on pve2.
    assert_eq!(
        qm.calls(),
        [argv("100", "prod;web;plb_pin_pve1;plb_pin_pve2")],
        "{}",
        out.stdout
    );
    out.stdout_has("VM 102: placed by the administrator's ProxLB tags (plb_pin_pve3)");
    out.stdout_has("VM 104: on node pve2: run `pve-cpuguard proxlb-tags --apply` there");
    let state = std::fs::read_to_string(c.pve().join("pve-cpuguard/proxlb-tags.json")).unwrap();
    assert!(state.contains("plb_pin_pve2"), "{state}");

    // qm wrote the tags: a second --apply calls nothing.
    qm.clear();
    c.vm(
        100,
        "pve1",
        "cpu: x86-64-v4\ntags: prod;web;plb_pin_pve1;plb_pin_pve2\n",
    );
    let out = run(&c, &["proxlb-tags", "--apply"]).code(0);
    assert!(qm.calls().is_empty(), "{}", out.stdout);
    out.stdout_has("tags are current on this node: no call needed");

    // pve2 lost AVX-512: 100 can go nowhere but its own node. Only our
    // pins go; the administrator's tags stay.
    c.samples
        .insert("pve2".into(), "archspec-linux-rhel7-haswell".into());
    c.write_cache(&["pve1".into(), "pve2".into(), "pve3".into()]);
    run(&c, &["proxlb-tags", "--apply"]).code(0);
    assert_eq!(qm.calls(), [argv("100", "prod;web;plb_ignore_cpuguard")]);
    // As qm left it.
    c.vm(
        100,
        "pve1",
        "cpu: x86-64-v4\ntags: prod;web;plb_ignore_cpuguard\n",
    );
    let json = run(&c, &["-o", "json", "proxlb-tags"]).json();
    assert_eq!(json["calls"], serde_json::json!([]));
    let vm100 = json["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vmid"] == "100")
        .unwrap();
    assert_eq!(vm100["ours"], serde_json::json!(["plb_ignore_cpuguard"]));
    assert_eq!(vm100["tags"], serde_json::Value::Null);
}
