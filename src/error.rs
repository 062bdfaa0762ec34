//! The one error type of pve-cpuguard and its mapping to documented exit codes.
//!
//! Every failure a user can cause or meet (a bad file, an unreachable node, a
//! refused migration) is a variant here, carrying enough context to say *what*
//! failed, *where* (file and line, node and address) and *what to do next*.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, documented in the README and in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Compatible, allowed, or the command simply succeeded.
    Ok,
    /// Incompatible or refused; for `scan`, some nodes failed.
    Refused,
    /// Usage, configuration or input error.
    Usage,
    /// The answer is unknown (missing data, unknown CPU model).
    Unknown,
    /// The exit status of a chained hookscript, passed through.
    Passthrough(u8),
}

impl ExitCode {
    /// The process exit status.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Refused => 1,
            ExitCode::Usage => 2,
            ExitCode::Unknown => 3,
            ExitCode::Passthrough(c) => i32::from(c),
        }
    }
}

/// Everything that can go wrong.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but its content is malformed at a given line.
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A value given on the command line or in the environment is invalid.
    Usage(String),
    /// Something in the configuration is inconsistent or missing.
    Config(String),
    /// The input is valid but describes a CPU pve-cpuguard cannot judge
    /// (e.g. aarch64 /proc/cpuinfo).
    Unsupported(String),
    /// Writing output failed (e.g. a closed pipe).
    Output(std::io::Error),
    /// The cache file is not a cache this version can read (bad JSON,
    /// unknown schema). Readers treat it as empty.
    CacheCorrupt { path: PathBuf, message: String },
    /// A lock (the cache writers', the refusal state's) could not be taken.
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One node could not be scanned (SSH, host key, timeout, offline).
    Node(NodeFailure),
    /// QEMU could not be asked what KVM can give (`--probe`).
    Probe(ProbeError),
}

/// Why one node could not be scanned: which node, which address, at which
/// step, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// Node name.
    pub node: String,
    /// Address tried.
    pub address: String,
    /// The step that failed: `offline`, `resolve`, `connect`, `handshake`,
    /// `host-key`, `auth`, `command`, `read`, `timeout`, `local`.
    pub stage: &'static str,
    /// What happened.
    pub message: String,
    /// What the user can do next, if there is advice.
    pub note: Option<String>,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}: {}",
            self.node, self.address, self.stage, self.message
        )?;
        if let Some(note) = &self.note {
            write!(f, "\nnote: {note}")?;
        }
        Ok(())
    }
}

impl Error {
    /// Builds an [`Error::Parse`].
    pub fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// Builds an [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The exit code this error maps to.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Output(_) | Error::Node(_) => ExitCode::Refused,
            // A missing package or device is the machine's setup; a QEMU
            // that hangs or babbles leaves the answer unknown.
            Error::Probe(p) if !p.is_setup() => ExitCode::Unknown,
            _ => ExitCode::Usage,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Parse {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            Error::Usage(m) | Error::Config(m) | Error::Unsupported(m) => f.write_str(m),
            Error::Output(e) => write!(f, "writing output: {e}"),
            Error::CacheCorrupt { path, message } => write!(
                f,
                "{}: unusable cache ({message}); treated as empty\nnote: run `pve-cpuguard scan` to rebuild it (the bad file is kept as {}.corrupt)",
                path.display(),
                path.display()
            ),
            Error::Lock { path, source } => {
                write!(f, "{}: cannot take the lock: {source}", path.display())
            }
            Error::Node(n) => n.fmt(f),
            Error::Probe(e) => write!(f, "asking QEMU: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Output(e) | Error::Lock { source: e, .. } => Some(e),
            Error::Probe(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// The message as the binaries print it: this error and, when its own
    /// text has no `note:` line, a general one for its kind, so that every
    /// error a person meets ends with what to do next. `command` is the
    /// subcommand that failed (for `pve-cpuguard help COMMAND`).
    #[must_use]
    pub fn report(&self, command: &str) -> String {
        let text = self.to_string();
        if text.contains("\nnote: ") {
            return text;
        }
        format!("{text}\nnote: {}", self.general_note(command))
    }

    fn general_note(&self, command: &str) -> String {
        match self {
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "check the path; the option or PVE_CPUGUARD_* variable that names it is \
                     listed by `pve-cpuguard help {command}`"
                ),
                std::io::ErrorKind::PermissionDenied => {
                    "run as root (Proxmox VE's files are root's)".into()
                }
                _ => {
                    "check the file and the file system it is on, then run the command again".into()
                }
            },
            Error::Parse { .. } => "fix that line (the message says what is expected there), \
                 then run the command again"
                .into(),
            Error::Usage(_) => {
                format!("`pve-cpuguard help {command}` lists the options and their variables")
            }
            Error::Config(_) => "fix the setting named above (command line, PVE_CPUGUARD_* \
                 variable or /etc/pve-cpuguard/pve-cpuguard.conf), then run the command again"
                .into(),
            Error::Unsupported(_) => "pve-cpuguard judges x86-64 CPUs only; `inspect --cpuinfo \
                 FILE` reads an x86-64 host's /proc/cpuinfo copied here"
                .into(),
            Error::Output(_) => "the output's reader went away (a closed pipe); run the \
                 command again with its output to a file"
                .into(),
            Error::CacheCorrupt { .. } => "run `pve-cpuguard scan` to rebuild the cache".into(),
            Error::Lock { path, .. } => format!(
                "another pve-cpuguard (a scan or publish) may hold it: wait, or find it with \
                 `fuser {}`",
                path.display()
            ),
            Error::Node(n) => format!(
                "check the node from here: `ssh root@{} true` must work without a password",
                n.address
            ),
            Error::Probe(_) => "`pve-cpuguard inspect --probe kvm` on that node shows QEMU's \
                 answer and its errors"
                .into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ProbeError> for Error {
    fn from(e: ProbeError) -> Self {
        Error::Probe(e)
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
                 virtualisation in the parent hypervisor), and run as a user who may open /dev/kvm; \
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
