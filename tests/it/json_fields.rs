//! Machine output carries structured fields: in a cluster that mixes CPU
//! vendors, `works_everywhere` is still a CPU type (the vendor caveat is the
//! `vendors` list), and the documented schema (docs/json.md) names every
//! top-level field the commands print.

use crate::harness::cluster::Cluster;

const LADDER: [&str; 5] = [
    "kvm64",
    "x86-64-v2",
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
];

fn mixed() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-ubuntu20.04-zen3"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nname: big\n");
    c
}

#[test]
fn works_everywhere_is_a_cpu_type_in_a_mixed_vendor_cluster() {
    let c = mixed();
    let check = c.on("pve1", &["check", "100", "-o", "json"]).run().json();
    assert_eq!(check["works_everywhere"], "x86-64-v3", "{check}");
    assert_eq!(
        check["vendors"],
        serde_json::json!(["AuthenticAMD", "GenuineIntel"]),
        "{check}"
    );
    let audit = c.on("pve1", &["audit", "-o", "json"]).run().json();
    assert_eq!(audit["works_everywhere"], "x86-64-v3", "{audit}");
    for v in audit["vms"].as_array().unwrap() {
        let w = v["works_everywhere"].as_str().unwrap();
        assert!(LADDER.contains(&w), "{v}");
    }
    // The text output keeps the caveat for people.
    let text = c.on("pve1", &["check", "100"]).run();
    assert!(
        text.stdout.contains(
            "CPU type that works on every node: x86-64-v3 (starts on every node; the nodes mix"
        ),
        "{}",
        text.stdout
    );
}

#[test]
fn the_schema_document_names_every_top_level_field() {
    let c = mixed();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    let section = |cmd: &str| -> String {
        let start = doc
            .find(&format!("\n## {cmd}"))
            .unwrap_or_else(|| panic!("docs/json.md has no section for {cmd}"));
        let rest = &doc[start + 4..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
    };
    c.write_corosync(&[("pve1", "10.0.0.1"), ("pve2", "10.0.0.2")]);
    for (cmd, args) in [
        ("inspect", &["inspect"][..]),
        ("check", &["check", "100"]),
        ("status", &["status"]),
        ("baseline", &["baseline"]),
        ("audit", &["audit"]),
        ("why-not", &["why-not", "x86-64-v3"]),
        // Last: it rewrites the cache.
        ("scan", &["scan", "--no-ssh", "--probe", "off"]),
    ] {
        let mut full = vec!["-o", "json"];
        full.extend(args);
        let v = c.on("pve1", &full).run().json();
        let text = section(cmd);
        // why-not's fields are the shared verdict's, named in the preamble.
        let text = if cmd == "why-not" {
            format!("{text}{}", &doc[..doc.find("\n## ").unwrap()])
        } else {
            text
        };
        for key in v.as_object().unwrap().keys() {
            assert!(
                text.contains(&format!("`{key}`")),
                "docs/json.md, section {cmd}, does not name `{key}`"
            );
        }
    }
}
