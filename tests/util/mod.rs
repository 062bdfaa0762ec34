//! A small builder for running the built `pve-cpuguard` binary in tests:
//! `Run::new(["inspect"]).env("PVE_CPUGUARD_CPUINFO", path).run()`.
#![allow(dead_code)]

pub mod cluster;
pub mod fuse;
pub mod threads;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a file under `tests/data/`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Path of a real /proc/cpuinfo sample.
pub fn cpuinfo(name: &str) -> PathBuf {
    data(&format!("cpuinfo/{name}.txt"))
}

/// Every real /proc/cpuinfo sample, sorted by name.
pub fn all_cpuinfo() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data("cpuinfo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    v
}

/// One invocation of the binary.
pub struct Run {
    cmd: Command,
    /// Where the run's state directory points unless the test says
    /// otherwise: tests never write outside their temporary directories.
    _scratch: tempfile::TempDir,
}

/// What an invocation produced.
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pve-cpuguard"));
        cmd.args(args);
        // Tests never read the real host or /etc/pve unless they say so.
        for (k, _) in std::env::vars() {
            if k.starts_with("PVE_CPUGUARD_") || k == "PVE_MIGRATED_FROM" {
                cmd.env_remove(k);
            }
        }
        // ...and never write /var/lib/pve-cpuguard (refusal state).
        let scratch = tempfile::tempdir().unwrap();
        cmd.env("PVE_CPUGUARD_STATE_DIR", scratch.path().join("state"));
        Run {
            cmd,
            _scratch: scratch,
        }
    }

    /// The command as it will run (for tests of the harness itself).
    pub fn command(&self) -> &Command {
        &self.cmd
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn run(mut self) -> Done {
        let Output {
            status,
            stdout,
            stderr,
        } = self.cmd.output().expect("run pve-cpuguard");
        Done {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Done {
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}
