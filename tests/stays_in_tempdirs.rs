//! Tests never write outside their temporary directories (issue 10: `cargo
//! test` used to create /var/lib/pve-cpuguard, the refusal state of the
//! hook and `migrate`, because one harness ran the binary without
//! `PVE_CPUGUARD_STATE_DIR`).
//!
//! What is asserted, and what is not:
//! 1. both harnesses that start the binaries (`tests/util`, `tests/common`)
//!    give every run a state directory inside a temporary directory —
//!    checked on the environment of the command they build;
//! 2. the only writers of the state directory (a refusal by the hook and
//!    by `migrate`) write into that directory and do not create
//!    /var/lib/pve-cpuguard (checked only when it does not exist when the
//!    test starts: a machine that already has it cannot tell);
//! 3. no test file starts a pve-cpuguard binary other than through those
//!    harnesses, except `systemd-analyze verify`, which never runs it, and
//!    the hook-file test, which passes a harness's environment (a scan of
//!    the test sources).
//!
//! It does not trace system calls: a new writer that ignores the state
//! directory would only be caught by point 2 if a test drives it here.

mod util;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const SYSTEM_STATE: &str = "/var/lib/pve-cpuguard";

fn env_of<'a>(cmd: &'a std::process::Command, key: &str) -> Option<&'a OsStr> {
    cmd.get_envs()
        .find(|(k, _)| *k == OsStr::new(key))
        .and_then(|(_, v)| v)
}

#[test]
fn both_harnesses_point_the_state_directory_into_a_temp_dir() {
    let tmp = std::env::temp_dir();
    let run = util::Run::new(["hook", "100", "pre-start"]);
    let state = PathBuf::from(env_of(run.command(), "PVE_CPUGUARD_STATE_DIR").unwrap());
    assert!(state.starts_with(&tmp), "{}", state.display());

    let c = util::cluster::Cluster::new(&[("pve1", "archspec-linux-rhel7-haswell")]);
    let env = c.node_env("pve1");
    let state = &env
        .iter()
        .find(|(k, _)| *k == "PVE_CPUGUARD_STATE_DIR")
        .unwrap()
        .1;
    assert!(state.starts_with(c.dir.path()), "{}", state.display());

    // tests/common builds its command in the same way; its source is
    // checked here because building one needs its sshd fixtures.
    let common = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/cluster.rs"),
    )
    .unwrap();
    assert!(
        common.contains(".env(\"PVE_CPUGUARD_STATE_DIR\", self.dir.path().join(\"state\"))"),
        "tests/common/cluster.rs must set PVE_CPUGUARD_STATE_DIR in its tempdir"
    );
}

#[test]
fn refusals_write_their_state_into_the_test_directory_only() {
    let system_state_before = Path::new(SYSTEM_STATE).exists();
    let mut c = util::cluster::Cluster::new(&[
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
    util::cluster::script(&qm, "#!/bin/sh\nexit 99\n");
    c.on("pve1", &["migrate", "100", "pve2"])
        .env("PVE_CPUGUARD_QM", &qm)
        .env("PVE_CPUGUARD_PROBE", "off")
        .run()
        .code(1);
    let recorded = c.path("state/last-refusal.json");
    let text = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        text.contains("\"count\": 2") || text.contains("\"count\":2"),
        "{text}"
    );
    if !system_state_before {
        assert!(
            !Path::new(SYSTEM_STATE).exists(),
            "{SYSTEM_STATE} was created by a test run"
        );
    }
}

#[test]
fn no_test_starts_the_binary_outside_the_harnesses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let allowed = [
        "util/mod.rs",
        "common/mod.rs",
        // `systemd-analyze verify` reads the path; it never runs it.
        "systemd.rs",
        // Run the hook file or the binaries with a harness's `node_env`.
        "guard.rs",
        "faults.rs",
        "faults_cli.rs",
        // Runs the binary under script(1) (a pseudo-terminal) with a
        // harness's `node_env`.
        "human_output.rs",
        // This file names the marker it looks for.
        "stays_in_tempdirs.rs",
    ];
    let mut offenders = Vec::new();
    for dir in [root.clone(), root.join("util"), root.join("common")] {
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
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains(concat!("CARGO_BIN_", "EXE_pve-cpuguard"))
                && !allowed.contains(&rel.as_str())
            {
                offenders.push(rel);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these start pve-cpuguard without a harness's state directory: {offenders:?}"
    );
}
