//! Coverage in `audit`: which VMs carry the guard's hookscript, and which
//! guarded VMs could start on a node whose record says the hook file is
//! missing from their (not shared) storage. Fixture `/etc/pve` tree with a
//! real storage.cfg; cache records from real /proc/cpuinfo samples, with
//! the `hook_storages` field each node publishes.

use crate::harness::cluster::Cluster;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

/// pve1 and pve3 say which storages hold the hook file; pve2's record is
/// from an older version (does not say).
fn cluster(pve3_has_it: bool) -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    std::fs::write(
        c.pve().join("storage.cfg"),
        "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,snippets\n\n\
         cephfs: cephfs\n\tpath /mnt/pve/cephfs\n\tcontent backup,snippets\n\tfs-name cephfs\n",
    )
    .unwrap();
    c.vm(100, "pve1", &format!("cpu: x86-64-v3\n{GUARD}"))
        .vm(101, "pve1", "cpu: x86-64-v3\n")
        .vm(
            102,
            "pve2",
            "cpu: x86-64-v3\nhookscript: cephfs:snippets/pve-cpuguard-hook\n",
        )
        .vm(
            103,
            "pve2",
            "cpu: x86-64-v4\nhookscript: local:snippets/backup.pl\n",
        )
        .vm(104, "pve1", &format!("cpu: x86-64-v4\n{GUARD}"));
    let mut cache: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.cache()).unwrap()).unwrap();
    cache["nodes"]["pve1"]["hook_storages"] = serde_json::json!(["local"]);
    cache["nodes"]["pve3"]["hook_storages"] = if pve3_has_it {
        serde_json::json!(["local", "cephfs"])
    } else {
        serde_json::json!(["cephfs"])
    };
    std::fs::write(c.cache(), cache.to_string()).unwrap();
    c
}

#[test]
fn coverage_line_and_a_node_lacking_the_hook_file() {
    let c = cluster(false);
    let out = c.on("pve1", &["audit"]).run().code(1);
    // Lines are wrapped at 100 columns, continuations indented by 4.
    let s = &out.stdout.replace("\n    ", " ");
    assert!(
        s.contains("\nCoverage: 3 of 5 VMs guarded; unguarded: 101, 103\n"),
        "{s}"
    );
    // 100 (x86-64-v3, on local, not shared) could start on pve3, whose
    // record says local lacks the file; pve2 does not say: no alarm. 104
    // cannot start on pve3 anyway; 102 is on a shared storage.
    assert!(
        s.contains("warning: VM 100 could start on pve3, where storage 'local' lacks the hook file: its start there fails (\"script 'local:snippets/pve-cpuguard-hook' does not exist\")\nnote: run `pve-cpuguard attach --all --storage local` on pve3\n"),
        "{s}"
    );
    assert!(!s.contains("warning: VM 104"), "{s}");
    assert!(!s.contains("warning: VM 102"), "{s}");
    // The summary opens the report; coverage closes it.
    assert!(s.starts_with("5 VMs, "), "{s}");
    assert!(
        s.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("note: run `pve-cpuguard attach"),
        "{s}"
    );

    let json = c.on("pve1", &["-o", "json", "audit"]).run().code(1).json();
    assert_eq!(
        json["coverage"],
        serde_json::json!({
            "vms": 5, "guarded": 3, "unguarded": [101, 103],
            "missing_hook_file": [{"vmid": 100, "storage": "local", "nodes": ["pve3"]}]
        })
    );
}

#[test]
fn no_warning_once_every_node_has_the_file() {
    let c = cluster(true);
    let out = c.on("pve1", &["audit"]).run().code(1);
    out.stdout_lacks("lacks the hook file");
}

#[test]
fn attach_names_the_nodes_that_still_need_the_hook_file() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    let vz = c.path("vz");
    std::fs::create_dir_all(vz.join("snippets")).unwrap();
    std::fs::write(
        c.pve().join("storage.cfg"),
        format!("dir: local\n\tpath {}\n\tcontent snippets\n", vz.display()),
    )
    .unwrap();
    c.vm(100, "pve1", "cpu: x86-64-v3\n");
    let mut cache: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.cache()).unwrap()).unwrap();
    cache["nodes"]["pve2"]["hook_storages"] = serde_json::json!([]);
    cache["nodes"]["pve3"]["hook_storages"] = serde_json::json!(["local"]);
    std::fs::write(c.cache(), cache.to_string()).unwrap();
    let hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pve-cpuguard-hook");
    let out = c
        .on("pve1", &["attach", "--dry-run", "100"])
        .env("PVE_CPUGUARD_HOOK_FILE", &hook)
        .run()
        .code(0);
    out.stdout_has("note: nodes whose record says storage 'local' lacks the hook file: pve2\n");
}
