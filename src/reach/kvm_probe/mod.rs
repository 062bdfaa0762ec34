//! Ask QEMU what KVM can really give a guest: the [`QemuReport`].
//!
//! /proc/cpuinfo shows the host CPU, not what KVM exposes: a parent
//! hypervisor or the kernel can mask features KVM then cannot pass on, and
//! KVM emulates some the host lacks. Proxmox VE's own `pvestatd` therefore
//! asks QEMU (`query-cpu-model-expansion` of `host`, stored as the
//! `cpuflags-kvm` node key; qemu-server `PVE/QemuServer.pm`
//! `query_supported_cpu_flags`). pve-cpuguard asks the same questions plus
//! `query-cpu-definitions`, whose per-model `unavailable-features` is exactly
//! the list `-cpu MODEL,enforce` would refuse to start with.
//!
//! The command is fixed: [`script::qemu_args`] starts an empty machine (no guest, no
//! devices, paused) with QMP on stdio, [`script::script`] is what it is told. The
//! same pair runs locally ([`probe_local`]) and, through [`script::remote_command`],
//! on another node. [`interpret::interpret`] turns what QEMU printed into a
//! [`QemuReport`], purely, so recorded transcripts test it.
//!
//! Every wait is bounded: QEMU runs in its own process group, and when it
//! does not finish within the timeout (or prints more than
//! [`MAX_OUTPUT`] bytes) the whole group is killed and the child reaped.

mod interpret;
mod script;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::cpu::qemu_report::{to_json, Accel, QemuHost, QemuReport};
pub use crate::error::ProbeError;
use interpret::tail;
pub use interpret::{expansion_features, interpret, model_answers, parse_transcript};
pub use script::{qemu_args, remote_command, script};

use crate::reach::process::{run_bounded, Ended, Limits};

/// Binaries tried, in order, when none is configured. Proxmox VE ships
/// `/usr/bin/kvm` as a link to `qemu-system-x86_64`; Debian has both.
pub const QEMU_BINARIES: &[&str] = &["qemu-system-x86_64", "kvm"];

/// The KVM device QEMU opens.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// Largest QMP output accepted (a real answer is well under 200 KiB).
pub const MAX_OUTPUT: usize = 8 << 20;

/// Largest part of QEMU's stderr kept for messages.
const MAX_STDERR: usize = 64 << 10;

/// Default time QEMU may take (it answers in well under a second).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the probe on this machine.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// QEMU binary; `None` searches [`QEMU_BINARIES`] in `PATH`.
    pub qemu: Option<PathBuf>,
    /// Accelerator.
    pub accel: Accel,
    /// Time QEMU may take from start to exit.
    pub timeout: Duration,
    /// The KVM device checked before starting QEMU under KVM.
    pub kvm_device: PathBuf,
}

impl ProbeOptions {
    /// KVM, binary from `PATH`, [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn new(accel: Accel) -> Self {
        ProbeOptions {
            qemu: None,
            accel,
            timeout: DEFAULT_TIMEOUT,
            kvm_device: PathBuf::from(KVM_DEVICE),
        }
    }
}

/// The QEMU binary to run: the configured one, or the first of
/// [`QEMU_BINARIES`] found in `PATH`.
///
/// # Errors
/// [`ProbeError::NoQemu`] naming what was looked for.
pub fn find_qemu(configured: Option<&Path>) -> Result<PathBuf, ProbeError> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(ProbeError::NoQemu {
                searched: format!("{} does not exist", p.display()),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in QEMU_BINARIES {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(ProbeError::NoQemu {
        searched: format!(
            "neither {} found in PATH ({})",
            QEMU_BINARIES.join(" nor "),
            path.to_string_lossy()
        ),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the probe on this machine.
///
/// # Errors
/// Every [`ProbeError`]; all bounded by `opts.timeout`.
pub fn probe_local(opts: &ProbeOptions) -> Result<QemuReport, ProbeError> {
    let binary = find_qemu(opts.qemu.as_deref())?;
    if opts.accel == Accel::Kvm {
        // QEMU would say so too, but later and less clearly.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&opts.kvm_device)
            .map_err(|e| ProbeError::NoKvm {
                detail: format!("cannot open {}: {e}", opts.kvm_device.display()),
            })?;
    }
    let label = binary.display().to_string();
    let limits = Limits {
        timeout: opts.timeout,
        max_stdout: MAX_OUTPUT,
        max_stderr: MAX_STDERR,
    };
    let out = run_bounded(
        &binary,
        &qemu_args(opts.accel),
        script(opts.accel).as_bytes(),
        limits,
    )
    .map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ProbeError::NoQemu {
            searched: format!("{}: {source}", binary.display()),
        },
        _ => ProbeError::Spawn {
            binary: binary.display().to_string(),
            source,
        },
    })?;
    let view = interpret(&out.stdout, &out.stderr, opts.accel, &label);
    match (out.ended, view) {
        // A complete answer counts even if QEMU was slow to exit.
        (_, Ok(mut v)) => {
            v.binary = crate::fsutil::identity(&binary);
            Ok(v)
        }
        (Ended::TimedOut, Err(_)) => Err(ProbeError::Timeout {
            binary: label,
            timeout: opts.timeout,
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 2000),
        }),
        (Ended::TooMuchOutput, Err(_)) => Err(ProbeError::Protocol {
            binary: label,
            error: format!("more than {MAX_OUTPUT} bytes of output"),
            stderr: String::new(),
        }),
        (Ended::Exited, Err(e)) => Err(e),
    }
}
