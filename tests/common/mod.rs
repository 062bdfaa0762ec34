//! Test harness shared by the integration tests: fake Proxmox VE clusters
//! made of REAL OpenSSH `sshd` processes on 127.x.y.z loopback addresses,
//! each serving a real /proc/cpuinfo sample, plus a fixture `/etc/pve`
//! tree (corosync.conf, .members, known_hosts) and a cache path.
//!
//! ```ignore
//! mod common;
//! let mut c = common::Cluster::new();
//! c.sshd("pve1", "archspec-linux-rhel7-haswell.txt");
//! c.silent("pve2");
//! c.write_config();
//! let run = c.run(&["scan"]);
//! ```
//!
//! Every test gets its own 127.A.B.0/24 (so parallel tests, and other
//! worktrees' tests, do not collide) and one TCP port shared by its nodes
//! (`--ssh-port` is global). Needs root (sshd switches to the login user)
//! and `/usr/sbin/sshd`, `ssh-keygen`.

#![allow(dead_code)]

pub mod cluster;
pub mod sshd;

pub use cluster::Cluster;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A real cpuinfo sample: `tests/data/cpuinfo/NAME`, else
/// `../shared/cpuinfo/NAME` beside the repository.
#[must_use]
pub fn cpuinfo(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let local = root.join("tests/data/cpuinfo").join(name);
    if local.is_file() {
        return local;
    }
    let shared = root.join("../shared/cpuinfo").join(name);
    assert!(
        shared.is_file(),
        "no cpuinfo sample {name} in tests/data/cpuinfo or ../shared/cpuinfo"
    );
    shared
}

/// Every x86 sample in `tests/data/cpuinfo`, sorted by name.
#[must_use]
pub fn all_samples() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/data/cpuinfo")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .filter(|n| pve_cpuguard::cpu::cpuinfo::read(&cpuinfo(n)).is_ok())
        .collect();
    v.sort();
    v
}

/// The level the library computes for a sample, as every command prints
/// it (`below-kvm64` when not even kvm64 starts: what a scan must report).
#[must_use]
pub fn expected_level(sample: &str) -> &'static str {
    let info = pve_cpuguard::cpu::cpuinfo::read(&cpuinfo(sample)).expect("sample parses");
    pve_cpuguard::cpu::level::display(&pve_cpuguard::cpu::level::of(
        &pve_cpuguard::cpu::capability::Capability::from_cpuinfo(&info),
    ))
}

/// The built binary.
#[must_use]
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pve-cpuguard"))
}

/// The result of running the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Runs a prepared command to completion.
    pub fn of(mut cmd: Command) -> Run {
        let start = Instant::now();
        let out = cmd.output().expect("run pve-cpuguard");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The login user of the test sshd processes (the current user).
#[must_use]
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
