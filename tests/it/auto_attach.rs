//! `auto_attach` end to end: the real `scan` (the refresh service's
//! command) on a fixture `/etc/pve` tree with a real `storage.cfg` and
//! corosync.conf, and `qm` replaced at the exec boundary by a script that
//! records its argv (one argument per line, a `--` line after each call)
//! and edits the VM config as `qm set` would.

use crate::harness;

use std::path::{Path, PathBuf};

use crate::harness::cluster::{script, Cluster};

struct Fixture {
    c: Cluster,
    qm: PathBuf,
    log: PathBuf,
    conf: PathBuf,
}

/// pve1 (this node) and pve2. `local` has snippets when `snippets`.
fn fixture(snippets: bool) -> Fixture {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    let vz = c.path("vz");
    std::fs::create_dir_all(vz.join("snippets")).unwrap();
    std::fs::write(
        c.pve().join("storage.cfg"),
        format!(
            "dir: local\n\tpath {}\n\tcontent {}\n\n\
             lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n",
            vz.display(),
            if snippets {
                "iso,vztmpl,backup,snippets"
            } else {
                "iso,vztmpl,backup"
            }
        ),
    )
    .unwrap();
    // corosync.conf as Proxmox VE writes it; only pve1 is scanned (locally).
    std::fs::write(
        c.pve().join("corosync.conf"),
        "logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n  node {\n    name: pve1\n    nodeid: 1\n    quorum_votes: 1\n    ring0_addr: 127.0.0.1\n  }\n}\n\n\
         quorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n  cluster_name: lab\n  config_version: 1\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n",
    )
    .unwrap();
    script(&vz.join("snippets/backup.pl"), "#!/bin/sh\nexit 0\n");
    c.vm(100, "pve1", "cpu: x86-64-v3\nname: fresh\n")
        .vm(
            101,
            "pve1",
            "cpu: x86-64-v3\nhookscript: local:snippets/backup.pl\n",
        )
        .vm(102, "pve2", "cpu: x86-64-v3\n")
        .vm(103, "pve1", "cpu: x86-64-v3\nlock: backup\n")
        .vm(
            104,
            "pve1",
            "cpu: x86-64-v3\nhookscript: local:snippets/pve-cpuguard-hook\n",
        );
    let log = c.path("qm.log");
    let qm = c.path("qm");
    script(
        &qm,
        &format!(
            r#"#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done >> {log}
echo -- >> {log}
conf="$PVE_CPUGUARD_PVE_DIR/nodes/$PVE_CPUGUARD_NODE/qemu-server/$2.conf"
grep -v '^hookscript:' "$conf" > "$conf.new"
if [ "$3" = "--hookscript" ]; then echo "hookscript: $4" >> "$conf.new"; fi
mv "$conf.new" "$conf"
"#,
            log = log.display()
        ),
    );
    let conf = c.path("pve-cpuguard.conf");
    Fixture { c, qm, log, conf }
}

impl Fixture {
    fn scan(&self, config: &str) -> harness::Done {
        std::fs::write(&self.conf, config).unwrap();
        self.c
            .on("pve1", &["scan", "--probe", "off"])
            .env("PVE_CPUGUARD_CONFIG", &self.conf)
            .env("PVE_CPUGUARD_QM", &self.qm)
            .env(
                "PVE_CPUGUARD_HOOK_FILE",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pve-cpuguard-hook"),
            )
            .run()
    }

    fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.split_terminator("--\n")
            .map(|c| c.lines().map(str::to_string).collect())
            .collect()
    }

    fn conf_of(&self, node: &str, vmid: u32) -> String {
        std::fs::read_to_string(
            self.c
                .pve()
                .join(format!("nodes/{node}/qemu-server/{vmid}.conf")),
        )
        .unwrap()
    }
}

fn set(vmid: &str) -> Vec<String> {
    [
        "set",
        vmid,
        "--hookscript",
        "local:snippets/pve-cpuguard-hook",
    ]
    .map(str::to_string)
    .to_vec()
}

#[test]
fn all_attaches_this_nodes_vms_chains_their_own_and_skips_locked_ones() {
    let f = fixture(true);
    let out = f.scan("auto_attach = all\n").code(0);
    // 102 is pve2's, 103 is locked, 104 already has the guard.
    assert_eq!(f.calls(), [set("100"), set("101")], "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "auto_attach: VM 100 (fresh): set hookscript none -> local:snippets/pve-cpuguard-hook"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("auto_attach: VM 101: set hookscript local:snippets/backup.pl -> local:snippets/pve-cpuguard-hook; its own hookscript local:snippets/backup.pl"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(
        "auto_attach: VM 103: locked (backup): not attached now; the next scan tries again"
    ));
    let chain = std::fs::read_to_string(f.c.pve().join("pve-cpuguard/chain.conf")).unwrap();
    assert!(
        chain.ends_with(&format!(
            "\n101 {} local:snippets/backup.pl\n",
            f.c.path("vz/snippets/backup.pl").display()
        )),
        "{chain}"
    );
    assert_eq!(f.conf_of("pve1", 103), "cpu: x86-64-v3\nlock: backup\n");
    assert_eq!(f.conf_of("pve2", 102), "cpu: x86-64-v3\n");
    assert!(f.c.path("vz/snippets/pve-cpuguard-hook").is_file());

    // The next refresh: nothing left to do, no call; `status` shows the
    // coverage this refresh found.
    std::fs::remove_file(&f.log).unwrap();
    let out = f.scan("auto_attach = all\n").code(0);
    assert_eq!(f.calls(), Vec::<Vec<String>>::new(), "{}", out.stdout);
    let status = f.c.on("pve1", &["status"]).run();
    assert!(
        status
            .stdout
            .contains("\nCoverage at the last scan: 3 of 5 VMs guarded; unguarded: 102, 103\n"),
        "{}",
        status.stdout
    );
    let json = f.c.on("pve1", &["-o", "json", "status"]).run().json();
    assert_eq!(
        json["coverage"],
        serde_json::json!({"vms": 5, "guarded": 3, "unguarded": [102, 103]})
    );
}

#[test]
fn without_a_snippets_storage_nothing_is_attached() {
    let f = fixture(false);
    let out = f.scan("auto_attach = all\n").code(0);
    assert_eq!(f.calls(), Vec::<Vec<String>>::new());
    assert!(
        out.stdout
            .contains("auto_attach: nothing attached to 2 VM(s): storage 'local'"),
        "{}",
        out.stdout
    );
    assert!(!f.c.path("vz/snippets/pve-cpuguard-hook").exists());
}

#[test]
fn a_filter_selects_vmids_and_off_does_nothing() {
    let f = fixture(true);
    f.scan("auto_attach = off\n").code(0);
    assert_eq!(f.calls(), Vec::<Vec<String>>::new());
    f.scan("auto_attach = 101-102,250\n").code(0);
    assert_eq!(f.calls(), [set("101")]);
}
