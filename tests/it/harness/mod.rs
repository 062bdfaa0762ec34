//! The one test harness of the integration tests: where the fixtures are,
//! how the binaries run, and the fake clusters.
//!
//! - [`cpuinfo`] / [`all_samples`]: real /proc/cpuinfo samples in
//!   `tests/data/cpuinfo`, named without `.txt`;
//! - [`command`]: the one way to start a pve-cpuguard binary, with the
//!   caller's `PVE_CPUGUARD_*` variables removed;
//! - [`Run`] / [`Done`]: `Run::new(["inspect"]).env(..).run().code(0)`,
//!   with the state directory in a temporary directory, and a failed
//!   assertion printing the command, stdout and stderr;
//! - [`cluster::Cluster`]: THE cluster: an `/etc/pve` tree
//!   (corosync.conf, `.members`, VM configs), a cache from samples, and
//!   the environment of a run on one of its nodes, on disk only;
//! - [`ssh_cluster::SshCluster`]: a [`cluster::Cluster`] whose nodes are
//!   served by REAL OpenSSH `sshd` processes on 127.x.y.z (needs root,
//!   `/usr/sbin/sshd`, `ssh-keygen`);
//! - [`exec::Recorder`]: `qm` or `ha-manager` replaced at the exec
//!   boundary by a script recording its exact argv;
//! - [`fuse::Fuse`]: a hanging FUSE mount (needs root);
//! - [`threads`]: a cpuinfo of any thread count;
//! - [`audit_json`]: `audit --output json` with its references resolved
//!   (and checked: none dangling, none unused).
//!
//! Tests never write outside their temporary directories: every run gets
//! `PVE_CPUGUARD_STATE_DIR` (and the clusters their run, cache and
//! `/etc/pve` paths) inside one (`stays_in_tempdirs`).
#![allow(dead_code)]

pub mod audit_json;
pub mod cluster;
pub mod exec;
pub mod fuse;
pub mod ssh_cluster;
pub mod sshd;
pub mod threads;

// Unused by the benches that include this module by path.
#[allow(unused_imports)]
pub use ssh_cluster::SshCluster;

use std::borrow::BorrowMut;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Path of a file under `tests/data/`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Path of a real /proc/cpuinfo sample: `tests/data/cpuinfo/NAME.txt`.
pub fn cpuinfo(name: &str) -> PathBuf {
    data(&format!("cpuinfo/{name}.txt"))
}

/// Every real /proc/cpuinfo sample's name (for [`cpuinfo`]), sorted.
pub fn all_samples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data("cpuinfo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".txt").map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Sample `name` as its host shows it with virtualisation off in the
/// firmware: no `vmx` or `svm` among its flags, no `vmx flags` line (Linux
/// prints neither then). Written into `dir`; returns its path.
pub fn without_kvm(name: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cpuinfo(name)).unwrap();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with("vmx flags") {
            continue;
        }
        match line.split_once(':') {
            Some((key, value)) if key.trim() == "flags" => {
                let kept: Vec<&str> = value
                    .split_whitespace()
                    .filter(|f| *f != "vmx" && *f != "svm")
                    .collect();
                out.push_str(&format!("{key}: {}\n", kept.join(" ")));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let path = dir.join(format!("{name}-no-kvm.txt"));
    std::fs::write(&path, out).unwrap();
    path
}

/// The level the library computes for a sample, as every command prints
/// it (`below-kvm64` when not even kvm64 starts: what a scan must report).
pub fn expected_level(sample: &str) -> &'static str {
    let info = pve_cpuguard::reach::local::cpuinfo(&cpuinfo(sample)).expect("sample parses");
    pve_cpuguard::cpu::level::display(&pve_cpuguard::cpu::level::of(
        &pve_cpuguard::cpu::capability::Capability::from_cpuinfo(&info),
    ))
}

/// The hook file the package installs as the hookscript snippet.
pub fn hook_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pve-cpuguard-hook")
}

/// The node `name` in the JSON output of `scan` (its `nodes` list).
pub fn scanned_node<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name} in {v}"))
}

/// The login user of the test sshd processes (the current user).
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The tool's binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pve-cpuguard"))
}

/// The hook's binary.
pub fn hook_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pve-cpuguard-hook"))
}

/// The one way a test starts `bin` (or a script that runs it): tests never
/// read the real host or /etc/pve unless they say so, so the caller's
/// `PVE_CPUGUARD_*` and `PVE_MIGRATED_FROM` are removed. The callers add
/// the state directory ([`Run::new`], the clusters' environments).
pub fn command(bin: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("PVE_CPUGUARD_") || k == "PVE_MIGRATED_FROM" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// One invocation of the tool's binary.
pub struct Run {
    cmd: Command,
    /// Where the run's state directory points unless the test says
    /// otherwise: tests never write outside their temporary directories.
    _scratch: Option<tempfile::TempDir>,
}

impl Run {
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = command(binary());
        cmd.args(args);
        // ...and never write /var/lib/pve-cpuguard (refusal state).
        let scratch = tempfile::tempdir().unwrap();
        cmd.env("PVE_CPUGUARD_STATE_DIR", scratch.path().join("state"));
        Run {
            cmd,
            _scratch: Some(scratch),
        }
    }

    /// A prepared command (a cluster's, whose environment already keeps
    /// every path in its temporary directory).
    pub fn of(cmd: Command) -> Self {
        Run {
            cmd,
            _scratch: None,
        }
    }

    /// The command as it will run (for tests of the harness itself).
    pub fn command(&self) -> &Command {
        &self.cmd
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    pub fn run(self) -> Done {
        Done::of(self.cmd)
    }
}

/// What an invocation produced.
#[derive(Debug)]
pub struct Done {
    /// The command, as printed by a failed assertion.
    pub command: String,
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Done {
    /// Runs a prepared command (from [`command`], or any program) to
    /// completion.
    pub fn of(mut cmd: impl BorrowMut<Command>) -> Done {
        let cmd = cmd.borrow_mut();
        let start = Instant::now();
        let Output {
            status,
            stdout,
            stderr,
        } = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Done {
            command: format!("{cmd:?}"),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    fn show(&self) -> String {
        format!(
            "--- command\n{}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.stdout, self.stderr
        )
    }

    /// Panics with the command and both streams unless the exit code is
    /// `want`.
    pub fn code(self, want: i32) -> Self {
        assert_eq!(self.code, want, "exit code\n{}", self.show());
        self
    }

    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.show()))
    }

    /// Panics with the command and both streams unless stdout contains
    /// `needle` (as [`unwrapped`] text).
    pub fn stdout_has(&self, needle: &str) -> &Self {
        self.expect("stdout", &self.stdout, needle, true)
    }

    /// Likewise for stderr.
    pub fn stderr_has(&self, needle: &str) -> &Self {
        self.expect("stderr", &self.stderr, needle, true)
    }

    /// Panics with the command and both streams if stdout contains
    /// `needle`.
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        self.expect("stdout", &self.stdout, needle, false)
    }

    /// Likewise for stderr.
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        self.expect("stderr", &self.stderr, needle, false)
    }

    fn expect(&self, stream: &str, text: &str, needle: &str, present: bool) -> &Self {
        let verb = if present { "lacks" } else { "has" };
        // Messages are wrapped to 100 columns: a phrase may continue on the
        // next, indented line. Runs of blanks and line breaks compare as one
        // space (a needle that spans lines on purpose still matches as is).
        let found = text.contains(needle) || unwrapped(text).contains(&unwrapped(needle));
        assert!(
            found == present,
            "{stream} {verb} {needle:?}:\n{}",
            self.show()
        );
        self
    }
}

/// `text` with every run of blanks and line breaks as one space: what a
/// wrapped message says, whatever its line breaks.
#[must_use]
pub fn unwrapped(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` says `needle`, whatever line breaks wrapping put in
/// either ([`unwrapped`]).
#[must_use]
pub fn has(text: &str, needle: &str) -> bool {
    text.contains(needle) || unwrapped(text).contains(&unwrapped(needle))
}

/// The argument lists a POSIX shell reads from the commands to copy in
/// `text` (lines continued with `\`): each run of `program` is replaced by
/// a `printf` that prints its arguments between NUL-separated markers.
#[must_use]
pub fn shell_reads(text: &str, program: &str) -> Vec<Vec<String>> {
    let script: String = text
        .replace(program, "printf '\\036%s' --- ; printf '\\037%s'")
        .to_string();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .split("\u{1e}---")
        .skip(1)
        .map(|c| c.split('\u{1f}').skip(1).map(str::to_string).collect())
        .collect()
}
