//! `auto_attach` end to end: the real `scan` (the refresh service's
//! command) on a fixture `/etc/pve` tree with a real `storage.cfg` and
//! corosync.conf, and `qm` replaced at the exec boundary by a script that
//! records its argv (one argument per line, a `--` line after each call)
//! and edits the VM config as `qm set` would.

use crate::harness;

use std::path::PathBuf;

use crate::harness::cluster::Cluster;
use crate::harness::exec::{argv, Recorder, QM_SET_HOOKSCRIPT};

struct Fixture {
    c: Cluster,
    qm: Recorder,
    conf: PathBuf,
}

/// pve1 (this node) and pve2. `local` has snippets when `snippets`.
fn fixture(snippets: bool) -> Fixture {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.storage(
        if snippets {
            "iso,vztmpl,backup,snippets"
        } else {
            "iso,vztmpl,backup"
        },
        "",
    );
    // Only pve1 is scanned (locally).
    c.write_corosync(&[("pve1", "127.0.0.1")]);
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
    let qm = Recorder::new(c.dir.path(), "qm", QM_SET_HOOKSCRIPT);
    let conf = c.path("pve-cpuguard.conf");
    Fixture { c, qm, conf }
}

impl Fixture {
    fn scan(&self, config: &str) -> harness::Done {
        std::fs::write(&self.conf, config).unwrap();
        self.c
            .on("pve1", &["scan", "--probe", "off"])
            .env("PVE_CPUGUARD_CONFIG", &self.conf)
            .env("PVE_CPUGUARD_QM", &self.qm.program)
            .env("PVE_CPUGUARD_HOOK_FILE", harness::hook_file())
            .run()
    }
}

fn set(vmid: &str) -> Vec<String> {
    argv(&[
        "set",
        vmid,
        "--hookscript",
        "local:snippets/pve-cpuguard-hook",
    ])
}

#[test]
fn all_attaches_this_nodes_vms_chains_their_own_and_skips_locked_ones() {
    let f = fixture(true);
    let out = f.scan("auto_attach = all\n").code(0);
    // 102 is pve2's, 103 is locked, 104 already has the guard.
    assert_eq!(f.qm.calls(), [set("100"), set("101")], "{}", out.stdout);
    out.stdout_has(
        "auto_attach: VM 100 (fresh): set hookscript none -> local:snippets/pve-cpuguard-hook",
    );
    out.stdout_has("auto_attach: VM 101: set hookscript local:snippets/backup.pl -> local:snippets/pve-cpuguard-hook; its own hookscript local:snippets/backup.pl");
    assert!(crate::harness::has(
        &out.stdout,
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
    assert_eq!(f.c.vm_config("pve1", 103), "cpu: x86-64-v3\nlock: backup\n");
    assert_eq!(f.c.vm_config("pve2", 102), "cpu: x86-64-v3\n");
    assert!(f.c.path("vz/snippets/pve-cpuguard-hook").is_file());

    // The next refresh: nothing left to do, no call; `status` shows the
    // coverage this refresh found.
    std::fs::remove_file(&f.qm.log).unwrap();
    let out = f.scan("auto_attach = all\n").code(0);
    assert_eq!(f.qm.calls(), Vec::<Vec<String>>::new(), "{}", out.stdout);
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
    assert_eq!(f.qm.calls(), Vec::<Vec<String>>::new());
    out.stdout_has("auto_attach: nothing attached to 2 VM(s): storage 'local'");
    assert!(!f.c.path("vz/snippets/pve-cpuguard-hook").exists());
}

#[test]
fn a_filter_selects_vmids_and_off_does_nothing() {
    let f = fixture(true);
    f.scan("auto_attach = off\n").code(0);
    assert_eq!(f.qm.calls(), Vec::<Vec<String>>::new());
    f.scan("auto_attach = 101-102,250\n").code(0);
    assert_eq!(f.qm.calls(), [set("101")]);
}

/// Issue 21, item 10: `qm set` runs through the bounded runner, as the
/// `ha-manager` calls do: a `qm` that floods its output is killed at the
/// bound, one that exits while a child it left keeps its pipes open ends
/// when it exits; the refresh goes on either way.
#[test]
fn auto_attach_runs_qm_bounded_in_time_and_output() {
    for (then, says) in [
        ("exec yes flood", "printed more than 1048576 bytes (killed)"),
        ("sleep 300 &\nexit 3", "failed (exit status: 3)"),
    ] {
        let mut f = fixture(true);
        f.qm = Recorder::new(f.c.dir.path(), "qm", then);
        let t = std::time::Instant::now();
        let out = f.scan("auto_attach = all\n").code(0);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{then}: {:?}",
            t.elapsed()
        );
        // The exact argv still reached qm.
        assert_eq!(f.qm.calls()[0], set("100"), "{then}");
        assert!(
            crate::harness::has(&out.stdout, says) || crate::harness::has(&out.stderr, says),
            "{then}: {}\n{}",
            out.stdout,
            out.stderr
        );
    }
}
