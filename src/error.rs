//! The one error type of pve-cpuguard and its mapping to documented exit codes.
//!
//! Every failure a user can cause or meet (a bad file, an unreachable node, a
//! refused migration) is a variant here, carrying enough context to say *what*
//! failed, *where* (file and line, node and address) and *what to do next*.

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
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but its content is malformed at a given line.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A value given on the command line or in the environment is invalid.
    #[error("{0}")]
    Usage(String),
    /// Something in the configuration is inconsistent or missing.
    #[error("{0}")]
    Config(String),
    /// The input is valid but describes a CPU pve-cpuguard cannot judge
    /// (e.g. aarch64 /proc/cpuinfo).
    #[error("{0}")]
    Unsupported(String),
    /// Writing output failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    /// The cache file is not a cache this version can read (bad JSON,
    /// unknown schema). Readers treat it as empty.
    #[error(
        "{}: unusable cache ({message}); treated as empty\nnote: run `pve-cpuguard scan` to rebuild it (it sets the bad file aside as {}.corrupt)",
        path.display(),
        path.display()
    )]
    CacheCorrupt { path: PathBuf, message: String },
    /// A lock (the cache writers', the refusal state's) could not be taken.
    #[error("{}: cannot take the lock: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One node could not be scanned (SSH, host key, timeout, offline).
    #[error("{0}")]
    Node(NodeFailure),
    /// QEMU could not be asked what KVM can give (`--probe`).
    #[error("asking QEMU: {0}")]
    Probe(#[from] ProbeError),
}

/// Why one node could not be scanned: which node, which address, at which
/// step, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{node} ({address}): {stage}: {message}{}", note_line(note.as_deref()))]
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

/// `\nnote: …` after a [`NodeFailure`]'s message, when it has advice.
fn note_line(note: Option<&str>) -> String {
    note.map(|n| format!("\nnote: {n}")).unwrap_or_default()
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
            // The reader went away (`… | head -1`): it has all it wanted,
            // so, as ripgrep does, that is no failure.
            _ if self.is_closed_output() => ExitCode::Ok,
            Error::Output(_) | Error::Node(_) => ExitCode::Refused,
            // A missing package or device is the machine's setup; a QEMU
            // that hangs or babbles leaves the answer unknown.
            Error::Probe(p) if !p.is_setup() => ExitCode::Unknown,
            _ => ExitCode::Usage,
        }
    }
}

impl Error {
    /// Whether this is a write to an output whose reader is gone (a closed
    /// pipe): the command then ends quietly, with exit 0.
    #[must_use]
    pub fn is_closed_output(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

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

/// How many characters of an outside value an error message quotes: a
/// value of any length must not make the message (or a terminal line)
/// as long as itself.
pub const QUOTE_MAX: usize = 80;

/// `value` as an error message quotes it: control characters escaped (a
/// value must never move the cursor or change colours on the reader's
/// terminal), at most [`QUOTE_MAX`] characters, then `…`. Linear in the
/// quoted part only, whatever the value's length.
#[must_use]
pub fn quoted(value: &str) -> String {
    capped(value, QUOTE_MAX)
}

/// [`quoted`] with another bound: for a whole message made from outside
/// text (a JSON parser's error that repeats the value it rejects).
#[must_use]
pub fn capped(value: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `message` with every quoted part (`'…'`) longer than [`QUOTE_MAX`]
/// or holding control characters rewritten as [`quoted`] does: for messages built elsewhere from a whole
/// outside value (`cannot parse cpu '<70 000 characters>'`). A quote opens
/// after a space, `(`, `[` or the start and closes before a space,
/// punctuation or the end, so apostrophes in prose (`VE's`) are left
/// alone. One pass, linear in the message.
#[must_use]
pub fn shorten_quotes(message: &str) -> String {
    let b = message.as_bytes();
    let mut out = String::with_capacity(message.len().min(4096));
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let opens =
            b[i] == b'\'' && (i == 0 || matches!(b[i - 1], b' ' | b'(' | b'[' | b'\n' | b'\t'));
        if !opens {
            i += 1;
            continue;
        }
        // The closing quote: the next `'` followed by the end, a space or
        // punctuation.
        let close = b[i + 1..].iter().enumerate().position(|(k, &c)| {
            c == b'\''
                && b.get(i + 2 + k).is_none_or(|n| {
                    matches!(n, b' ' | b',' | b';' | b':' | b'.' | b')' | b']' | b'\n')
                })
        });
        let Some(k) = close else { break };
        let inner = &message[i + 1..i + 1 + k];
        if inner.chars().nth(QUOTE_MAX).is_some() || inner.chars().any(char::is_control) {
            out.push_str(&message[copied..=i]);
            out.push_str(&quoted(inner));
            copied = i + 1 + k;
        }
        i += k + 2;
    }
    out.push_str(&message[copied..]);
    out
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why QEMU could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No QEMU binary.
    #[error(
        "no QEMU binary: {searched}\n\
         note: install the Debian package qemu-system-x86 (Proxmox VE nodes have pve-qemu-kvm), \
         or name the binary with --qemu / PVE_CPUGUARD_QEMU"
    )]
    NoQemu {
        /// What was looked for, and where.
        searched: String,
    },
    /// KVM is not usable (no device, no permission, QEMU says so).
    #[error(
        "KVM is not usable: {detail}\n\
         note: load kvm_intel or kvm_amd, enable VT-x/AMD-V in the firmware (or nested \
         virtualisation in the parent hypervisor), and run as a user who may open /dev/kvm; \
         `--probe tcg` asks QEMU's emulator instead, which does not tell what KVM can give"
    )]
    NoKvm {
        /// What failed.
        detail: String,
    },
    /// The binary exists but could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// QEMU did not finish within the timeout; it was killed.
    #[error(
        "{binary} did not answer within {:.1} s and was killed\n\
         note: a healthy QEMU answers in well under a second; raise --probe-timeout only if the host is overloaded{}",
        timeout.as_secs_f64(),
        stderr_note(stderr)
    )]
    Timeout {
        /// The binary.
        binary: String,
        /// The timeout.
        timeout: Duration,
        /// The end of its stderr, if any.
        stderr: String,
    },
    /// QEMU's output is not the expected QMP exchange.
    #[error("{binary} did not answer as QEMU does: {error}{}", stderr_note(stderr))]
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

/// `\nnote: QEMU's stderr: …` after a [`ProbeError`]'s message, when QEMU
/// wrote anything.
fn stderr_note(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nnote: QEMU's stderr: {}", stderr.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "gone")
    }

    /// The messages as the hand-written `Display` impls printed them
    /// before the derive (tests and docs quote them), and the sources.
    #[test]
    fn quoted_values_are_capped_and_escaped() {
        assert_eq!(quoted("x86-64-v3"), "x86-64-v3");
        assert_eq!(quoted("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        let long = "y".repeat(70_000);
        let q = quoted(&long);
        assert_eq!(q.chars().count(), QUOTE_MAX + 1);
        assert!(q.ends_with('…'));
        assert_eq!(quoted(&"z".repeat(QUOTE_MAX)), "z".repeat(QUOTE_MAX));
    }

    #[test]
    fn long_quoted_parts_are_shortened_and_prose_is_not() {
        let long = "A".repeat(70_000);
        let m = shorten_quotes(&format!(
            "/x.conf:2: cannot parse cpu '{long},x': flag '{long}' must start with '+' or '-'\nnote: Proxmox VE's fix"
        ));
        assert!(m.len() < 400, "{}", m.len());
        assert!(
            m.starts_with(&format!(
                "/x.conf:2: cannot parse cpu '{}…': flag '",
                "A".repeat(80)
            )),
            "{m}"
        );
        assert!(
            m.ends_with("' must start with '+' or '-'\nnote: Proxmox VE's fix"),
            "{m}"
        );
        let plain = "VM 100 is on node 'pve1', not on this node 'pve2' (Proxmox VE's rule)";
        assert_eq!(shorten_quotes(plain), plain);
        assert_eq!(shorten_quotes("it's 'open"), "it's 'open");
        assert_eq!(
            shorten_quotes("cpu 'x\u{1b}[2J' is bad"),
            "cpu 'x\\u{1b}[2J' is bad"
        );
    }

    #[test]
    fn messages_and_sources() {
        let node = NodeFailure {
            node: "pve2".into(),
            address: "10.0.0.2".into(),
            stage: "connect",
            message: "refused".into(),
            note: Some("start sshd".into()),
        };
        let cases: Vec<(Error, &str, bool)> = vec![
            (Error::io("/a", io()), "/a: gone", true),
            (Error::parse("/b", 7, "bad"), "/b:7: bad", false),
            (Error::Usage("u".into()), "u", false),
            (Error::Config("c".into()), "c", false),
            (Error::Unsupported("s".into()), "s", false),
            (Error::Output(io()), "writing output: gone", true),
            (
                Error::CacheCorrupt {
                    path: "/c.json".into(),
                    message: "m".into(),
                },
                "/c.json: unusable cache (m); treated as empty\nnote: run `pve-cpuguard scan` \
                 to rebuild it (it sets the bad file aside as /c.json.corrupt)",
                false,
            ),
            (
                Error::Lock {
                    path: "/l".into(),
                    source: io(),
                },
                "/l: cannot take the lock: gone",
                true,
            ),
            (
                Error::Node(node.clone()),
                "pve2 (10.0.0.2): connect: refused\nnote: start sshd",
                false,
            ),
            (
                Error::Node(NodeFailure { note: None, ..node }),
                "pve2 (10.0.0.2): connect: refused",
                false,
            ),
            (
                ProbeError::Spawn {
                    binary: "q".into(),
                    source: io(),
                }
                .into(),
                "asking QEMU: cannot start q: gone",
                true,
            ),
            (
                ProbeError::Timeout {
                    binary: "q".into(),
                    timeout: Duration::from_millis(2500),
                    stderr: " late \n".into(),
                }
                .into(),
                "asking QEMU: q did not answer within 2.5 s and was killed\nnote: a healthy QEMU \
                 answers in well under a second; raise --probe-timeout only if the host is \
                 overloaded\nnote: QEMU's stderr: late",
                true,
            ),
            (
                ProbeError::Protocol {
                    binary: "q".into(),
                    error: "e".into(),
                    stderr: " ".into(),
                }
                .into(),
                "asking QEMU: q did not answer as QEMU does: e",
                true,
            ),
        ];
        for (e, want, has_source) in cases {
            assert_eq!(e.to_string(), want);
            assert_eq!(e.source().is_some(), has_source, "{want}");
        }
        let no_qemu = ProbeError::NoQemu {
            searched: "x".into(),
        }
        .to_string();
        assert!(no_qemu.starts_with("no QEMU binary: x\nnote: install the Debian package qemu-system-x86 (Proxmox VE nodes have pve-qemu-kvm), or name"), "{no_qemu}");
        let no_kvm = ProbeError::NoKvm { detail: "d".into() }.to_string();
        assert!(no_kvm.starts_with("KVM is not usable: d\nnote: load kvm_intel or kvm_amd, enable VT-x/AMD-V in the firmware (or nested virtualisation in the parent"), "{no_kvm}");
    }
}
