//! Asking Proxmox VE for its own per-node CPU flags, through `pvesh`
//! ([`crate::pve::cpu_flags`] reads the answer): one fixed command run
//! through the bounded runner, never through a shell. A missing `pvesh`
//! (not a Proxmox VE node, or older than 9.2 where the path is unknown)
//! turns the second opinion off; any other problem is a warning for the
//! caller, never a failure.
//!
//! Also the arguments that add a custom CPU model ([`create_model_args`]),
//! which `baseline --custom-model NAME --apply` runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pve::cpu_flags::{self, CpuFlags};
use crate::reach::process::{run_bounded, Ended, Limits};

/// The exact arguments given to `pvesh`.
pub const ARGS: [&str; 6] = [
    "get",
    "/cluster/qemu/cpu-flags",
    "--accel",
    "kvm",
    "--output-format",
    "json",
];

/// Where Proxmox VE keeps custom CPU models in its API (pve-manager
/// `PVE/API2/Cluster/Qemu.pm` mounts `CustomCPUModels.pm` there; 9.2 and
/// later). Its `create` takes `cputype` (the `custom-` prefix optional),
/// `reported-model` (required) and the other keys of a model, and refuses
/// a name that exists ("custom CPU model '…' already exists"), under the
/// file's lock.
pub const CUSTOM_MODELS: &str = "/cluster/qemu/custom-cpu-models";

/// The arguments after `pvesh` that add model `cputype` (`custom-NAME`)
/// reporting `reported` with `flags` (`+a;-b`; left out when empty).
/// Each value is one argument: nothing is ever split or run by a shell.
#[must_use]
pub fn create_model_args(cputype: &str, reported: &str, flags: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "create",
        CUSTOM_MODELS,
        "--cputype",
        cputype,
        "--reported-model",
        reported,
    ]
    .map(String::from)
    .into();
    if !flags.is_empty() {
        args.extend(["--flags".to_string(), flags.to_string()]);
    }
    args
}

/// What `pvesh` said.
#[derive(Debug, Clone)]
pub enum Opinion {
    /// No such binary: the feature is off.
    Absent(PathBuf),
    /// Each node's flags.
    Flags(CpuFlags),
    /// It ran but gave no usable answer: why (for a warning).
    Problem(String),
}

/// Runs `binary` with [`ARGS`], for at most `timeout`.
#[must_use]
pub fn ask(binary: &Path, timeout: Duration) -> Opinion {
    if !binary.exists() {
        return Opinion::Absent(binary.to_path_buf());
    }
    let line = format!("{} {}", binary.display(), ARGS.join(" "));
    let limits = Limits {
        timeout,
        max_stdout: cpu_flags::MAX_BYTES,
        max_stderr: 4 << 10,
    };
    let out = match run_bounded(binary, &ARGS, b"", limits) {
        Ok(o) => o,
        Err(e) => return Opinion::Problem(format!("cannot run `{line}`: {e}")),
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.lines().next().unwrap_or("").trim();
    match (out.ended, out.status) {
        (Ended::Exited, Some(st)) if st.success() => match cpu_flags::parse(&out.stdout) {
            Ok(f) => Opinion::Flags(f),
            Err(e) => Opinion::Problem(format!("`{line}` gave an unusable answer: {e}")),
        },
        (Ended::Exited, Some(st)) => Opinion::Problem(format!(
            "`{line}` failed ({st}){}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        )),
        (Ended::TooMuchOutput, _) => Opinion::Problem(format!(
            "`{line}` printed more than {} bytes (killed)",
            cpu_flags::MAX_BYTES
        )),
        _ => Opinion::Problem(format!(
            "`{line}` did not finish within {}s (killed)",
            timeout.as_secs_f32()
        )),
    }
}
