//! Ask QEMU what KVM can really give a guest: the [`KvmView`].
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
//! The command is fixed: [`qemu_args`] starts an empty machine (no guest, no
//! devices, paused) with QMP on stdio, [`script`] is what it is told. The
//! same pair runs locally ([`probe_local`]) and, through [`remote_command`],
//! on another node. [`interpret`] turns what QEMU printed into a
//! [`KvmView`], purely, so recorded transcripts test it.
//!
//! Every wait is bounded: QEMU runs in its own process group, and when it
//! does not finish within the timeout (or prints more than
//! [`MAX_OUTPUT`] bytes) the whole group is killed and the child reaped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cpu::flags;
use crate::reach::qmp::{self, QmpCommand, QmpError, Transcript};

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

/// The accelerator QEMU is asked about.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM: what guests really get. Needs a usable /dev/kvm.
    #[default]
    Kvm,
    /// QEMU's emulator: only for machines without KVM (tests); it does not
    /// tell what KVM can give.
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// For messages: "KVM" or "TCG".
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }

    /// The model expanded: `host` needs KVM, so TCG expands `max`.
    fn expanded_model(self) -> &'static str {
        match self {
            Accel::Kvm => "host",
            Accel::Tcg => "max",
        }
    }
}

/// QEMU's identification of the host CPU, from the `host` expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuHost {
    /// CPUID vendor string.
    #[serde(default)]
    pub vendor: String,
    /// CPUID family.
    #[serde(default)]
    pub family: Option<u32>,
    /// CPUID model.
    #[serde(default)]
    pub model: Option<u32>,
    /// CPUID stepping.
    #[serde(default)]
    pub stepping: Option<u32>,
    /// Brand string (`model-id`).
    #[serde(default)]
    pub model_id: String,
}

/// What QEMU says one node can give a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvmView {
    /// QEMU version, `major.minor.micro`.
    pub qemu_version: String,
    /// Distribution package version QEMU reports (may be empty).
    #[serde(default)]
    pub qemu_package: String,
    /// The accelerator the answers are for.
    pub accel: Accel,
    /// The host CPU as QEMU identifies it.
    #[serde(default)]
    pub host: QemuHost,
    /// Canonical QEMU names of the CPU features that are `true` in the
    /// expansion of `host` (of `max` under TCG).
    pub host_features: BTreeSet<String>,
    /// Every model QEMU defines → the features it cannot give that model
    /// (canonical spelling where pve-cpuguard knows the feature, QEMU's
    /// otherwise). Empty list: the model starts with `enforce`.
    pub models: BTreeMap<String, Vec<String>>,
}

impl KvmView {
    /// "QEMU 7.2.22 under KVM", for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("QEMU {} under {}", self.qemu_version, self.accel.label())
    }
}

/// Why QEMU could not be asked.
#[derive(Debug)]
pub enum ProbeError {
    /// No QEMU binary.
    NoQemu {
        /// What was looked for, and where.
        searched: String,
    },
    /// KVM is not usable (no device, no permission, QEMU says so).
    NoKvm {
        /// What failed.
        detail: String,
    },
    /// The binary exists but could not be started.
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// QEMU did not finish within the timeout; it was killed.
    Timeout {
        /// The binary.
        binary: String,
        /// The timeout.
        timeout: Duration,
        /// The end of its stderr, if any.
        stderr: String,
    },
    /// QEMU's output is not the expected QMP exchange.
    Protocol {
        /// The binary.
        binary: String,
        /// What is wrong.
        error: String,
        /// The end of its stderr, if any.
        stderr: String,
    },
}

impl ProbeError {
    /// Whether the fix is on the machine's setup (missing package, device,
    /// permission) rather than a misbehaving QEMU.
    #[must_use]
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            ProbeError::NoQemu { .. } | ProbeError::NoKvm { .. } | ProbeError::Spawn { .. }
        )
    }
}

fn stderr_note(f: &mut fmt::Formatter<'_>, stderr: &str) -> fmt::Result {
    if stderr.trim().is_empty() {
        Ok(())
    } else {
        write!(f, "\nnote: QEMU's stderr: {}", stderr.trim())
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NoQemu { searched } => write!(
                f,
                "no QEMU binary: {searched}\n\
                 note: install the Debian package qemu-system-x86 (Proxmox VE nodes have pve-qemu-kvm), \
                 or name the binary with --qemu / PVE_CPUGUARD_QEMU"
            ),
            ProbeError::NoKvm { detail } => write!(
                f,
                "KVM is not usable: {detail}\n\
                 note: load kvm_intel or kvm_amd, enable VT-x/AMD-V in the firmware (or nested \
                 virtualisation in the parent hypervisor), and run as a user who may open {KVM_DEVICE}; \
                 `--probe tcg` asks QEMU's emulator instead, which does not tell what KVM can give"
            ),
            ProbeError::Spawn { binary, source } => write!(f, "cannot start {binary}: {source}"),
            ProbeError::Timeout {
                binary,
                timeout,
                stderr,
            } => {
                write!(
                    f,
                    "{binary} did not answer within {:.1} s and was killed\n\
                     note: a healthy QEMU answers in well under a second; raise --probe-timeout only if the host is overloaded",
                    timeout.as_secs_f64()
                )?;
                stderr_note(f, stderr)
            }
            ProbeError::Protocol {
                binary,
                error,
                stderr,
            } => {
                write!(f, "{binary} did not answer as QEMU does: {error}")?;
                stderr_note(f, stderr)
            }
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// QEMU's arguments: an empty machine (`-machine none`: no guest RAM, no
/// devices), no default devices or user config, no display, QMP on stdio,
/// paused. The same for every node; nothing configurable.
#[must_use]
pub fn qemu_args(accel: Accel) -> [&'static str; 11] {
    [
        "-machine",
        "none",
        "-accel",
        accel.as_str(),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-qmp",
        "stdio",
        "-S",
    ]
}

/// The QMP script: negotiate, version, expansion, definitions, quit.
#[must_use]
pub fn script(accel: Accel) -> String {
    qmp::script(&[
        QmpCommand::new("capabilities", "qmp_capabilities"),
        QmpCommand::new("version", "query-version"),
        QmpCommand::with_args(
            "expansion",
            "query-cpu-model-expansion",
            json!({"type": "full", "model": {"name": accel.expanded_model()}}),
        ),
        QmpCommand::new("definitions", "query-cpu-definitions"),
        QmpCommand::new("quit", "quit"),
    ])
}

/// The fixed shell command that runs the probe on another node (for SSH):
/// it picks the first QEMU binary of [`QEMU_BINARIES`], feeds it [`script`]
/// and bounds it with coreutils `timeout`. Only constants and an integer
/// are interpolated; the caller still applies its own deadline.
#[must_use]
pub fn remote_command(accel: Accel, timeout_secs: u32) -> String {
    let lines: Vec<String> = script(accel).lines().map(|l| format!("'{l}'")).collect();
    format!(
        "q=$(command -v {} || command -v {}) || {{ echo 'pve-cpuguard: no QEMU binary' >&2; exit 127; }}; \
         printf '%s\\n' {} | timeout -s KILL {timeout_secs} \"$q\" {}",
        QEMU_BINARIES[0],
        QEMU_BINARIES[1],
        lines.join(" "),
        qemu_args(accel).join(" ")
    )
}

/// Turns what QEMU printed into a [`KvmView`]. `binary` names it in errors.
///
/// # Errors
/// [`ProbeError::NoKvm`] when QEMU says KVM cannot be used, otherwise
/// [`ProbeError::Protocol`] for anything but a complete, successful exchange.
pub fn interpret(
    stdout: &[u8],
    stderr: &[u8],
    accel: Accel,
    binary: &str,
) -> Result<KvmView, ProbeError> {
    let stderr_text = tail(&String::from_utf8_lossy(stderr), 2000);
    parse_transcript(stdout, accel).map_err(|error| {
        if accel == Accel::Kvm {
            if let Some(line) = kvm_failure(&stderr_text) {
                return ProbeError::NoKvm {
                    detail: format!("{binary}: {line}"),
                };
            }
        }
        ProbeError::Protocol {
            binary: binary.to_string(),
            error: error.to_string(),
            stderr: stderr_text,
        }
    })
}

/// The line of QEMU's stderr saying KVM could not be initialised, if any
/// (QEMU `accel/kvm/kvm-all.c`: "Could not access KVM kernel module: …",
/// "failed to initialize kvm: …").
fn kvm_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("could not access kvm") || l.contains("failed to initialize kvm")
        })
        .map(|l| l.trim().to_string())
}

/// The last `max` characters of `s`.
fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(max)).collect()
}

/// Parses a whole transcript of [`script`].
///
/// # Errors
/// Garbage, a missing greeting or answer, an error answer, or answers of the
/// wrong shape.
pub fn parse_transcript(stdout: &[u8], accel: Accel) -> Result<KvmView, QmpError> {
    let t = Transcript::parse(stdout)?;
    let version_answer = t.answer("version")?;
    let (qemu_version, qemu_package) = version(version_answer)
        .or_else(|| version(t.greeting.get("version")?))
        .ok_or_else(|| shape("version", "no qemu.major/minor/micro"))?;
    let props = t
        .answer("expansion")?
        .get("model")
        .and_then(|m| m.get("props"))
        .and_then(Value::as_object)
        .ok_or_else(|| shape("expansion", "no model.props object"))?;
    let definitions = t
        .answer("definitions")?
        .as_array()
        .ok_or_else(|| shape("definitions", "not a list"))?;
    Ok(KvmView {
        qemu_version,
        qemu_package,
        accel,
        host: host_ident(props),
        host_features: expansion_features(props),
        models: model_answers(definitions),
    })
}

fn shape(id: &str, what: &str) -> QmpError {
    QmpError::Failed {
        id: id.to_string(),
        class: "UnexpectedAnswer".into(),
        desc: what.to_string(),
    }
}

/// `{"qemu": {"major", "minor", "micro"}, "package"}` → ("7.2.22", package).
fn version(v: &Value) -> Option<(String, String)> {
    let q = v.get("qemu")?;
    let n = |k: &str| q.get(k).and_then(Value::as_u64);
    let version = format!("{}.{}.{}", n("major")?, n("minor")?, n("micro")?);
    let package = v
        .get("package")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    Some((version, package))
}

/// The `true` boolean properties that are CPU features, in canonical names.
/// Properties that are no feature (`kvm`, `pmu`, `migratable`,
/// `host-phys-bits`, …) are not in the feature table and fall away.
#[must_use]
pub fn expansion_features(props: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    props
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(k, _)| flags::canonical(k))
        .map(str::to_string)
        .collect()
}

fn host_ident(props: &serde_json::Map<String, Value>) -> QemuHost {
    let s = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let n = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok())
    };
    QemuHost {
        vendor: s("vendor"),
        family: n("family"),
        model: n("model"),
        stepping: n("stepping"),
        model_id: s("model-id"),
    }
}

/// Model name → canonical unavailable features, for every definition that
/// carries `unavailable-features` (QEMU omits it where it cannot tell).
#[must_use]
pub fn model_answers(definitions: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for d in definitions {
        let Some(name) = d.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(list) = d.get("unavailable-features").and_then(Value::as_array) else {
            continue;
        };
        let mut missing: Vec<String> = list
            .iter()
            .filter_map(Value::as_str)
            .map(|f| flags::canonical(f).unwrap_or(f).to_string())
            .collect();
        missing.sort();
        missing.dedup();
        out.insert(name.to_string(), missing);
    }
    out
}

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
pub fn probe_local(opts: &ProbeOptions) -> Result<KvmView, ProbeError> {
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
    let out = run_bounded(
        &binary,
        &qemu_args(opts.accel),
        script(opts.accel).as_bytes(),
        opts.timeout,
    )?;
    let view = interpret(&out.stdout, &out.stderr, opts.accel, &label);
    match (out.ended, view) {
        // A complete answer counts even if QEMU was slow to exit.
        (_, Ok(v)) => Ok(v),
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

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited,
    TimedOut,
    TooMuchOutput,
}

/// What a bounded run produced.
struct RawOutput {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ended: Ended,
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
    OutEnd,
    ErrEnd,
}

fn pump(mut r: impl Read + Send + 'static, tx: mpsc::Sender<Chunk>, is_out: bool) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let c = buf[..n].to_vec();
                    let msg = if is_out { Chunk::Out(c) } else { Chunk::Err(c) };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(if is_out { Chunk::OutEnd } else { Chunk::ErrEnd });
    });
}

/// Runs `binary args` in its own process group with `input` on stdin, until
/// it closes stdout and stderr or `timeout` passes or it prints more than
/// [`MAX_OUTPUT`]; then the group is killed (a no-op if it is gone) and the
/// child reaped. Never waits longer than `timeout` plus the time to reap a
/// killed process.
fn run_bounded(
    binary: &Path,
    args: &[&str],
    input: &[u8],
    timeout: Duration,
) -> Result<RawOutput, ProbeError> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ProbeError::NoQemu {
                searched: format!("{}: {source}", binary.display()),
            },
            _ => ProbeError::Spawn {
                binary: binary.display().to_string(),
                source,
            },
        })?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        pump(out, tx.clone(), true);
    }
    if let Some(err) = child.stderr.take() {
        pump(err, tx, false);
    }
    if let Some(mut stdin) = child.stdin.take() {
        // The script is far below PIPE_BUF-sized pipe capacity, so this
        // write cannot block; a child that already exited gives EPIPE,
        // which its output explains better.
        let _ = stdin.write_all(input);
        // Dropping stdin closes it: QEMU sees EOF after `quit`.
    }
    let mut out = RawOutput {
        stdout: Vec::new(),
        stderr: Vec::new(),
        ended: Ended::Exited,
    };
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Chunk::Out(c)) => {
                out.stdout.extend_from_slice(&c);
                if out.stdout.len() > MAX_OUTPUT {
                    out.ended = Ended::TooMuchOutput;
                    break;
                }
            }
            Ok(Chunk::Err(c)) => {
                let room = MAX_STDERR.saturating_sub(out.stderr.len());
                out.stderr.extend_from_slice(&c[..c.len().min(room)]);
            }
            Ok(Chunk::OutEnd) => out_open = false,
            Ok(Chunk::ErrEnd) => err_open = false,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                out.ended = Ended::TimedOut;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Both pipes closed means QEMU is exiting; wait for that within the
    // deadline, then make sure nothing of the group survives.
    let pid = libc::pid_t::try_from(child.id()).ok();
    if out.ended == Ended::Exited {
        while Instant::now() < deadline && !pid.is_some_and(has_exited) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The child is not reaped yet (only `has_exited` looked, without
    // reaping), so its pid is still its process group's id and cannot have
    // been reused: killing the group reaches whatever it left behind, and
    // nothing else. A no-op when everything has exited.
    if let Some(pgid) = pid {
        // SAFETY: kill(2) only sends a signal; a negative pid names the
        // process group `pgid`, the child's own (see above).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(out)
}

/// Whether the child `pid` has exited, without reaping it (`WNOWAIT`).
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data, valid when zeroed; waitid(2) writes
    // into it and does not keep the pointer.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let id = libc::id_t::try_from(pid).unwrap_or_default();
        let rc = libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // An error (no such child) counts as exited; with WNOHANG a child
        // still running leaves si_pid at 0.
        rc != 0 || info.si_pid() != 0
    }
}

/// The JSON shown by `inspect` for a view (also the cache's shape).
#[must_use]
pub fn to_json(view: &KvmView) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/qmp")
            .join(name);
        std::fs::read(p).unwrap()
    }

    #[test]
    fn recorded_kvm_transcript_parses() {
        let v = parse_transcript(&fixture("qemu-7.2-pvm-epyc-kvm.jsonl"), Accel::Kvm).unwrap();
        assert_eq!(v.qemu_version, "7.2.22");
        assert!(v.qemu_package.starts_with("Debian"));
        assert_eq!(v.host.vendor, "AuthenticAMD");
        assert_eq!(v.host.family, Some(25));
        // The nested KVM here cannot give SSE3 even though cpuinfo shows it.
        assert!(!v.host_features.contains("pni"));
        assert!(v.host_features.contains("lm"));
        assert!(v.host_features.contains("lahf-lm"), "alias lahf_lm folded");
        assert!(!v.host_features.contains("kvm"), "not a CPU feature");
        assert!(
            !v.host_features.contains("lahf_lm"),
            "canonical spelling only"
        );
        assert_eq!(v.models["kvm64"], vec!["pni".to_string()]);
        assert_eq!(v.models["max"], Vec::<String>::new());
        assert!(v.models["Haswell-v1"].contains(&"sse4.1".to_string()));
        assert_eq!(v.models.len(), 132);
    }

    #[test]
    fn view_round_trips_through_json() {
        let v = parse_transcript(&fixture("qemu-7.2-pvm-epyc-tcg.jsonl"), Accel::Tcg).unwrap();
        assert_eq!(v.accel, Accel::Tcg);
        let back: KvmView = serde_json::from_value(to_json(&v)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn kvm_refusal_on_stderr_is_no_kvm() {
        let e = interpret(
            b"",
            b"Could not access KVM kernel module: No such file or directory\nqemu-system-x86_64: failed to initialize kvm: No such file or directory\n",
            Accel::Kvm,
            "qemu",
        )
        .unwrap_err();
        assert!(matches!(e, ProbeError::NoKvm { .. }), "{e}");
        assert!(e.to_string().contains("Could not access KVM kernel module"));
        let e = interpret(b"", b"", Accel::Kvm, "qemu").unwrap_err();
        assert!(matches!(e, ProbeError::Protocol { .. }), "{e}");
    }

    #[test]
    fn truncated_transcript_names_the_missing_answer() {
        let full = fixture("qemu-7.2-pvm-epyc-kvm.jsonl");
        let text = String::from_utf8(full).unwrap();
        let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        let e = parse_transcript(cut.as_bytes(), Accel::Kvm).unwrap_err();
        assert_eq!(
            e,
            QmpError::Missing {
                id: "definitions".into()
            }
        );
    }

    #[test]
    fn remote_command_is_fixed_and_quotable() {
        let s = script(Accel::Kvm);
        assert!(
            !s.contains('\''),
            "script lines are single-quoted in the shell"
        );
        let c = remote_command(Accel::Kvm, 8);
        assert!(c.contains("timeout -s KILL 8 \"$q\" -machine none -accel kvm"));
        assert!(c.contains("'{\"execute\":\"qmp_capabilities\",\"id\":\"capabilities\"}'"));
    }
}
