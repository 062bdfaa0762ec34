//! Tests never write outside their temporary directories (issue 10: `cargo
//! test` used to create /var/lib/pve-cpuguard, the refusal state of the
//! hook and `migrate`, because one harness ran the binary without
//! `PVE_CPUGUARD_STATE_DIR`).
//!
//! What is asserted, and what is not:
//! 1. the harness (`tests/it/harness`) gives every run a state directory
//!    inside a temporary directory — checked on the environment of the
//!    commands it builds ([`harness::Run`], the cluster, with and without
//!    sshd nodes);
//! 2. the only writers of the state directory (a refusal by the hook and
//!    by `migrate`) write into that directory and do not create
//!    /var/lib/pve-cpuguard (checked only when it does not exist when the
//!    test starts: a machine that already has it cannot tell);
//! 3. no test file names a pve-cpuguard binary but the harness: the others
//!    start them through `harness::command` with a harness's environment
//!    (a scan of the test sources);
//! 4. no test changes process-wide state (environment, current directory,
//!    umask, signal handlers): every test runs as a thread of one process
//!    (a scan of the test sources).
//!
//! It does not trace system calls: a new writer that ignores the state
//! directory would only be caught by point 2 if a test drives it here.

use crate::harness;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const SYSTEM_STATE: &str = "/var/lib/pve-cpuguard";

fn env_of<'a>(cmd: &'a std::process::Command, key: &str) -> Option<&'a OsStr> {
    cmd.get_envs()
        .find(|(k, _)| *k == OsStr::new(key))
        .and_then(|(_, v)| v)
}

#[test]
fn the_harness_points_the_state_directory_into_a_temp_dir() {
    let tmp = std::env::temp_dir();
    let run = harness::Run::new(["hook", "100", "pre-start"]);
    let state = PathBuf::from(env_of(run.command(), "PVE_CPUGUARD_STATE_DIR").unwrap());
    assert!(state.starts_with(&tmp), "{}", state.display());

    let c = harness::cluster::Cluster::new(&[("pve1", "archspec-linux-rhel7-haswell")]);
    let env = c.node_env("pve1");
    let state = &env
        .iter()
        .find(|(k, _)| *k == "PVE_CPUGUARD_STATE_DIR")
        .unwrap()
        .1;
    assert!(state.starts_with(c.dir.path()), "{}", state.display());

    // The sshd cluster's command (building one starts no sshd).
    let c = harness::SshCluster::new();
    let cmd = c.command(&["scan"]);
    let state = PathBuf::from(env_of(&cmd, "PVE_CPUGUARD_STATE_DIR").unwrap());
    assert!(state.starts_with(c.dir.path()), "{}", state.display());
}

#[test]
fn refusals_write_their_state_into_the_test_directory_only() {
    let system_state_before = Path::new(SYSTEM_STATE).exists();
    let mut c = harness::cluster::Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\n");
    // The hook refuses an incoming live migration (avx512 on a Haswell).
    c.on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(1);
    // `migrate` refuses without running qm.
    let qm = c.path("qm");
    harness::cluster::script(&qm, "#!/bin/sh\nexit 99\n");
    c.on("pve1", &["migrate", "100", "pve2"])
        .env("PVE_CPUGUARD_QM", &qm)
        .env("PVE_CPUGUARD_PROBE", "off")
        .run()
        .code(1);
    // Two refusals counted (one byte each) and the last one's details.
    assert_eq!(
        std::fs::read(c.path("state/refusals.tally")).unwrap(),
        b"\n\n"
    );
    let text = std::fs::read_to_string(c.path("state/last-refusal.json")).unwrap();
    assert!(text.contains("\"vmid\":\"100\""), "{text}");
    if !system_state_before {
        assert!(
            !Path::new(SYSTEM_STATE).exists(),
            "{SYSTEM_STATE} was created by a test run"
        );
    }
}

#[test]
fn no_test_starts_the_binary_outside_the_harnesses() {
    let offenders: Vec<String> = test_sources()
        .into_iter()
        .filter(|(rel, text)| {
            text.contains(concat!("CARGO_BIN_", "EXE_pve-cpuguard")) && rel != "harness/mod.rs"
        })
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        offenders.is_empty(),
        "these start pve-cpuguard without the harness: {offenders:?}"
    );
    // No file but the harness starts a command without it (the caller's
    // PVE_CPUGUARD_* removed).
    let offenders: Vec<String> = test_sources()
        .into_iter()
        .filter(|(rel, text)| {
            (text.contains(concat!("Command::new(harness::", "binary"))
                || text.contains(concat!("Command::new(harness::", "hook_binary")))
                && rel != "harness/mod.rs"
        })
        .map(|(rel, _)| rel)
        .collect();
    assert!(offenders.is_empty(), "use harness::command: {offenders:?}");
}

#[test]
fn no_test_changes_process_wide_state() {
    let calls = [
        concat!("set_", "var("),
        concat!("remove_", "var("),
        concat!("set_current_", "dir("),
        concat!("libc::", "umask("),
        concat!("libc::", "signal("),
        concat!("libc::", "sigaction("),
    ];
    let mut offenders = Vec::new();
    for (rel, text) in test_sources() {
        for call in calls {
            if text.contains(call) {
                offenders.push(format!("{rel}: {call}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "all tests share one process; pass the environment to the command instead: {offenders:?}"
    );
}

/// Every `.rs` file of the integration tests (relative to tests/it) with
/// its text.
fn test_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("harness")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension() != Some(OsStr::new("rs")) {
                continue;
            }
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
    assert!(out.len() > 30, "{} test sources", out.len());
    out
}
