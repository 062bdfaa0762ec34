//! `attach`/`detach` end to end: the real binary on a fixture `/etc/pve`
//! tree with a real `storage.cfg`, a snippets directory on disk, and `qm`
//! replaced at the exec boundary by a fake that records its argv (one
//! argument per line, a `--` line after each call) and applies the
//! hookscript change to the VM config as qm would.

use crate::harness;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::cluster::{script, Cluster};
use crate::harness::exec::{Recorder, QM_SET_HOOKSCRIPT};

const HOOK: &str = "pve-cpuguard-hook";

struct Fixture {
    c: Cluster,
    qm: Recorder,
}

/// pve1 and pve2; `local` is a dir storage under the fixture with
/// snippets enabled, `nosnip` has none.
fn fixture(local_content: &str) -> Fixture {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    let nosnip = format!(
        "\ndir: nosnip\n\tpath {}\n\tcontent iso,backup\n",
        c.path("nosnip").display()
    );
    c.storage(local_content, &nosnip);
    c.vm(100, "pve1", "cores: 2\ncpu: x86-64-v3\nname: plain\n")
        .vm(
            101,
            "pve1",
            "cores: 2\ncpu: x86-64-v3\nhookscript: local:snippets/backup.pl\nname: own\n",
        )
        .vm(102, "pve2", "cpu: x86-64-v3\nname: remote\n");
    // Records argv, then edits the config like `qm set` would.
    let qm = Recorder::new(
        c.dir.path(),
        "qm",
        &format!(
            "[ -n \"$QM_FAIL\" ] && {{ echo \"hookscript error: volume does not exist\" >&2; exit 25; }}\n{QM_SET_HOOKSCRIPT}"
        ),
    );
    Fixture { c, qm }
}

impl Fixture {
    fn run(&self, args: &[&str]) -> harness::Done {
        self.c
            .on("pve1", args)
            .env("PVE_CPUGUARD_QM", &self.qm.program)
            .env("PVE_CPUGUARD_HOOK_FILE", harness::hook_file())
            .run()
    }

    fn chain(&self) -> String {
        std::fs::read_to_string(self.c.pve().join("pve-cpuguard/chain.conf")).unwrap_or_default()
    }
}

/// Every file under `dir`: relative path → (mode, content).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if m.is_dir() {
                out.insert(rel, (m.permissions().mode(), Vec::new()));
                stack.push(p);
            } else {
                out.insert(rel, (m.permissions().mode(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn attach_chains_an_existing_hookscript_and_detach_restores_it() {
    let f = fixture("iso,vztmpl,backup,snippets");
    let before_100 = f.c.vm_config("pve1", 100);
    let before_101 = f.c.vm_config("pve1", 101);
    let out = f.run(&["attach", "100", "101"]).code(0);

    // Exact argv, in order; the chain entry is written before qm runs.
    assert_eq!(
        f.qm.calls(),
        [
            [
                "set",
                "100",
                "--hookscript",
                "local:snippets/pve-cpuguard-hook"
            ],
            [
                "set",
                "101",
                "--hookscript",
                "local:snippets/pve-cpuguard-hook"
            ],
        ]
    );
    let backup = f.c.path("vz/snippets/backup.pl");
    assert!(
        f.chain().ends_with(&format!(
            "\n101 {} local:snippets/backup.pl\n",
            backup.display()
        )),
        "{}",
        f.chain()
    );
    // The hook file is in the snippets directory, executable, identical.
    let installed = f.c.path("vz/snippets").join(HOOK);
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("hooks")
                .join(HOOK)
        )
        .unwrap()
    );
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let s = &out.stdout;
    assert!(
        s.contains(&format!("hook file {}: copied\n", installed.display())),
        "{s}"
    );
    assert!(
        s.contains("VM 100 (plain): set hookscript none -> local:snippets/pve-cpuguard-hook\n"),
        "{s}"
    );
    assert!(
        crate::harness::has(s, &format!(
            "VM 101 (own): set hookscript local:snippets/backup.pl -> local:snippets/pve-cpuguard-hook; its own hookscript local:snippets/backup.pl ({}) now runs chained behind the guard\n",
            backup.display()
        )),
        "{s}"
    );
    assert!(
        s.contains("note: storage 'local' is not shared: the hook file must exist on every node that may start these VMs"),
        "{s}"
    );
    assert!(f
        .c
        .vm_config("pve1", 101)
        .contains("hookscript: local:snippets/pve-cpuguard-hook"));

    // The guard's hook now runs the VM's own script after allowing.
    let marker = f.c.path("ran");
    script(
        &backup,
        &format!("#!/bin/sh\necho \"$@\" > {}\n", marker.display()),
    );
    f.c.on("pve1", &["hook", "101", "pre-start"]).run().code(0);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "101 pre-start\n");

    // A second attach changes nothing.
    std::fs::remove_file(&f.qm.log).unwrap();
    let out = f.run(&["attach", "100", "101"]).code(0);
    assert!(f.qm.calls().is_empty());
    out.stdout_has(": up to date\n");
    out.stdout_has("VM 100 (plain): already attached (local:snippets/pve-cpuguard-hook)");

    // detach puts back exactly what was there.
    let out = f.run(&["detach", "--all"]).code(0);
    assert_eq!(
        f.qm.calls(),
        [
            ["set", "100", "--delete", "hookscript"],
            ["set", "101", "--hookscript", "local:snippets/backup.pl"],
        ]
    );
    assert_eq!(f.c.vm_config("pve1", 100), before_100);
    // The fake appends the line at the end; compare as sets of lines.
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&f.c.vm_config("pve1", 101)), sorted(&before_101));
    assert!(!f.chain().contains("101 "), "{}", f.chain());
    assert!(installed.exists(), "detach leaves the hook file in place");
    out.stdout_has("VM 101 (own): set hookscript local:snippets/pve-cpuguard-hook -> local:snippets/backup.pl (restored; chain.conf entry removed)");
    assert!(out
        .stdout
        .contains("VM 100 (plain): removed hookscript local:snippets/pve-cpuguard-hook"));
    out.stdout_has("note: VMs on other nodes are not changed here: pve2 (1); run `pve-cpuguard detach --all` on each of them");
}

#[test]
fn dry_run_changes_nothing() {
    let f = fixture("snippets");
    let before = tree(f.c.dir.path());
    let out = f.run(&["attach", "--all", "--dry-run"]).code(0);
    assert_eq!(
        tree(f.c.dir.path()),
        before,
        "attach --dry-run changed the tree"
    );
    assert!(!f.qm.log.exists(), "qm ran during a dry run");
    let s = &out.stdout;
    assert!(s.starts_with("dry run: nothing is changed\n"), "{s}");
    assert!(s.contains(": would be copied\n"), "{s}");
    assert!(
        s.contains(
            "VM 100 (plain): would set hookscript none -> local:snippets/pve-cpuguard-hook\n"
        ),
        "{s}"
    );
    assert!(
        crate::harness::has(s, "would run chained behind the guard"),
        "{s}"
    );

    // Attach for real, then a detach dry run leaves that state alone.
    f.run(&["attach", "--all"]).code(0);
    std::fs::remove_file(&f.qm.log).unwrap();
    let attached = tree(f.c.dir.path());
    let out = f
        .run(&["detach", "--all", "--dry-run", "-o", "json"])
        .code(0);
    assert_eq!(
        tree(f.c.dir.path()),
        attached,
        "detach --dry-run changed the tree"
    );
    assert!(!f.qm.log.exists());
    let j = out.json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["vms"][1]["action"], "set-hookscript");
    assert_eq!(j["vms"][1]["to"], "local:snippets/backup.pl");
    assert_eq!(j["vms"][0]["action"], "delete-hookscript");
}

#[test]
fn storage_without_snippets_says_how_to_enable_them() {
    let f = fixture("iso,vztmpl,backup");
    let before = tree(f.c.dir.path());
    let out = f.run(&["attach", "--all"]).code(2);
    assert!(
        crate::harness::has(
            &out.stderr,
            "storage 'local' does not hold snippets (content: iso,vztmpl,backup;"
        ),
        "{}",
        out.stderr
    );
    out.stderr_has("note: enable it with `pvesm set local --content iso,vztmpl,backup,snippets`");
    let out = f
        .run(&["attach", "--all", "--storage", "local-lvm"])
        .code(2);
    out.stderr_has("cannot hold hookscripts");
    let out = f.run(&["attach", "100", "--storage", "nosnip"]).code(2);
    out.stderr_has("`pvesm set nosnip --content iso,backup,snippets`");
    assert_eq!(tree(f.c.dir.path()), before);
    assert!(!f.qm.log.exists());
}

#[test]
fn vms_of_other_nodes_are_not_touched() {
    let f = fixture("snippets");
    let out = f.run(&["attach", "102"]).code(1);
    assert!(!f.qm.log.exists());
    out.stdout_has("VM 102 (remote): on node pve2, not changed here (qm only changes VMs of its own node): run `pve-cpuguard attach 102` on pve2");
    let out = f.run(&["attach", "--all"]).code(0);
    assert_eq!(f.qm.calls().len(), 2);
    out.stdout_has("note: VMs on other nodes are not changed here: pve2 (1); run `pve-cpuguard attach --all` on each of them");
    let out = f.run(&["attach", "999"]).code(1);
    out.stdout_has("VM 999: not changed: VM 999 not found in the cluster");
    // Neither --all nor a VMID: a usage error.
    f.run(&["attach"]).code(2);
    f.run(&["attach", "--all", "100"]).code(2);
}

#[test]
fn a_failing_qm_leaves_the_vm_as_it_was() {
    let f = fixture("snippets");
    let before = f.c.vm_config("pve1", 101);
    let out =
        f.c.on("pve1", &["attach", "101"])
            .env("PVE_CPUGUARD_QM", &f.qm.program)
            .env("PVE_CPUGUARD_HOOK_FILE", harness::hook_file())
            .env("QM_FAIL", "1")
            .run()
            .code(1);
    assert_eq!(f.qm.calls().len(), 1);
    assert!(
        crate::harness::has(&out.stdout, "error: `")
            && out
                .stdout
                .contains("hookscript error: volume does not exist"),
        "{}",
        out.stdout
    );
    assert_eq!(f.c.vm_config("pve1", 101), before);
    assert!(
        !f.chain().contains("101 "),
        "chain entry must be rolled back: {}",
        f.chain()
    );
}
