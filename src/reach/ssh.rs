//! Reading one node's /proc/cpuinfo over SSH (crate ssh2), bounded and
//! verified.
//!
//! - One deadline per node covers name resolution, TCP connect, handshake,
//!   authentication and the read: `TcpStream::connect_timeout`, socket
//!   timeouts and `Session::set_timeout` are all set to what is left of it,
//!   and it is checked between steps. A node that accepts TCP and never
//!   speaks fails at the deadline instead of hanging (ProxCLMC's failure).
//! - The host key is checked against known_hosts ([`crate::reach::known_hosts`])
//!   before authenticating; an unknown, changed or revoked key fails the node
//!   with the offered fingerprint and what to do.
//! - The remote command is the constant [`REMOTE_COMMAND`]: no value from
//!   any configuration file reaches a shell. Node names and addresses are
//!   only connect targets and known_hosts lookups.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD};
use base64::Engine as _;
use ssh2::{ErrorCode, HashType, Session};

use crate::cpu::cpuinfo::{self, CpuInfo};
use crate::error::NodeFailure;
use crate::pve::cluster::Node;
use crate::reach::known_hosts::{self, Check};
use crate::reach::kvm_probe::{self, Accel, ProbeOptions, QemuReport};

/// The one command run on every node. Its output is /proc/cpuinfo, an empty
/// line (in case the file lacks a final newline), a line
/// [`SEPARATOR`] and the kernel release.
pub const REMOTE_COMMAND: &str = "cat /proc/cpuinfo; echo; echo ---; uname -r";

/// The line between cpuinfo and the kernel release in the output.
pub const SEPARATOR: &str = "---";

/// The most output accepted from a node (a 512-CPU host prints ~1 MiB).
const MAX_OUTPUT: usize = 16 << 20;

/// libssh2's `LIBSSH2_ERROR_TIMEOUT`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;

/// How to reach nodes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Remote user (`root`).
    pub user: String,
    /// TCP port (22).
    pub port: u16,
    /// Per-node bound on everything.
    pub timeout: Duration,
    /// Private key files to try, in order.
    pub keys: Vec<PathBuf>,
    /// Whether to try the SSH agent first (`SSH_AUTH_SOCK` set and no
    /// explicit key).
    pub use_agent: bool,
    /// `--known-hosts`: replaces the PVE lookup list.
    pub known_hosts: Option<PathBuf>,
    /// The `/etc/pve` directory (for per-node and cluster known_hosts).
    pub pve_dir: PathBuf,
    /// Also ask each node's QEMU what KVM can give a guest (issue: the
    /// KVM view); `None` reads /proc/cpuinfo only.
    pub probe: Option<Accel>,
}

impl Options {
    /// The usual key files that exist: `~/.ssh/id_ed25519`, `id_ecdsa`,
    /// `id_rsa`.
    #[must_use]
    pub fn default_keys() -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| home.join(".ssh").join(k))
            .filter(|p| p.is_file())
            .collect()
    }
}

/// What a node said.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its parsed /proc/cpuinfo.
    pub info: CpuInfo,
    /// `uname -r`, if printed.
    pub kernel: Option<String>,
    /// QEMU's answer, or why there is none; `None` when not asked.
    pub kvm: Option<Result<QemuReport, String>>,
}

/// Splits the remote output into cpuinfo text and kernel release.
#[must_use]
pub fn split_output(text: &str) -> (&str, Option<String>) {
    let mut offset = 0;
    let mut split = None;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == SEPARATOR {
            split = Some((offset, offset + line.len()));
        }
        offset += line.len();
    }
    match split {
        Some((start, end)) => {
            let kernel = text[end..]
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string);
            (&text[..start], kernel)
        }
        None => (text, None),
    }
}

struct Ctx<'a> {
    node: &'a Node,
    deadline: Instant,
    timeout: Duration,
}

impl Ctx<'_> {
    fn fail(&self, stage: &'static str, message: impl Into<String>) -> NodeFailure {
        NodeFailure {
            node: self.node.name.clone(),
            address: self.node.address.clone(),
            stage,
            message: message.into(),
            note: None,
        }
    }

    fn timed_out(&self, during: &str) -> NodeFailure {
        let mut f = self.fail(
            "timeout",
            format!(
                "no answer within {:.1} s (during {during})",
                self.timeout.as_secs_f64()
            ),
        );
        f.note = Some(format!(
            "is {} up and its sshd answering? Raise --timeout if the node is just slow",
            self.node.name
        ));
        f
    }

    /// Time left, or a timeout failure naming the step about to start.
    fn remaining(&self, step: &str) -> Result<Duration, NodeFailure> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            Err(self.timed_out(step))
        } else {
            Ok(left)
        }
    }

    fn arm(&self, session: &Session, step: &str) -> Result<(), NodeFailure> {
        let left = self.remaining(step)?;
        session.set_timeout(u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1));
        Ok(())
    }

    /// Maps an ssh2 error: a libssh2 timeout or a passed deadline is a
    /// timeout, anything else a failure of `stage`.
    fn ssh_error(&self, stage: &'static str, e: &ssh2::Error) -> NodeFailure {
        if e.code() == ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) || Instant::now() >= self.deadline
        {
            self.timed_out(stage)
        } else {
            self.fail(stage, e.message().to_string())
        }
    }
}

/// Connects to `node`, verifies its host key, authenticates and reads its
/// CPU, all before `deadline`.
///
/// # Errors
/// A [`NodeFailure`] naming the node, the address, the step and the fix.
pub fn fetch(node: &Node, opts: &Options, deadline: Instant) -> Result<Answer, NodeFailure> {
    let ctx = Ctx {
        node,
        deadline,
        timeout: opts.timeout,
    };
    let tcp = connect(&ctx, opts.port)?;
    let mut session = Session::new().map_err(|e| ctx.fail("handshake", e.message()))?;
    session.set_tcp_stream(tcp);
    ctx.arm(&session, "handshake")?;
    session
        .handshake()
        .map_err(|e| ctx.ssh_error("handshake", &e))?;

    verify_host_key(&ctx, &session, opts)?;

    ctx.arm(&session, "authentication")?;
    authenticate(&ctx, &session, opts)?;

    let (status, out, err_text) = run(&ctx, &session, REMOTE_COMMAND)?;
    let text = String::from_utf8_lossy(&out);
    if status != 0 {
        let first = err_text.lines().next().unwrap_or("").trim();
        return Err(ctx.fail(
            "command",
            format!("`{REMOTE_COMMAND}` exited with status {status}: {first}"),
        ));
    }
    let (cpu_text, kernel) = split_output(&text);
    let origin = PathBuf::from(format!("{}:/proc/cpuinfo", node.name));
    let info = cpuinfo::parse(cpu_text, &origin).map_err(|e| ctx.fail("cpuinfo", e.to_string()))?;
    // The KVM view: a second fixed command on the same connection, within
    // the same deadline. Whatever goes wrong there is recorded, and the
    // node's /proc/cpuinfo is still used.
    let kvm = opts.probe.map(|accel| {
        let left = ctx.remaining("the QEMU probe").map_err(|f| f.message)?;
        let secs = u32::try_from(left.as_secs()).unwrap_or(u32::MAX).max(1);
        let (_, out, err) = run(&ctx, &session, &kvm_probe::remote_command(accel, secs))
            .map_err(|f| format!("{}: {}", f.stage, f.message))?;
        kvm_probe::interpret(&out, err.as_bytes(), accel, &format!("{}:qemu", node.name))
            .map_err(|e| e.to_string())
    });
    let _ = session.disconnect(None, "done", None);
    Ok(Answer { info, kernel, kvm })
}

/// Runs one fixed command on an open session within the node's deadline:
/// exit status, stdout (bounded) and the start of stderr.
fn run(
    ctx: &Ctx<'_>,
    session: &Session,
    command: &str,
) -> Result<(i32, Vec<u8>, String), NodeFailure> {
    ctx.arm(session, "command")?;
    let mut channel = session
        .channel_session()
        .map_err(|e| ctx.ssh_error("command", &e))?;
    channel
        .exec(command)
        .map_err(|e| ctx.ssh_error("command", &e))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 32 * 1024];
    loop {
        ctx.arm(session, "read")?;
        match channel.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_OUTPUT {
                    return Err(ctx.fail("read", format!("more than {MAX_OUTPUT} bytes of output")));
                }
            }
            Err(e) => {
                if Instant::now() >= ctx.deadline || e.kind() == std::io::ErrorKind::TimedOut {
                    return Err(ctx.timed_out("read"));
                }
                return Err(ctx.fail("read", e.to_string()));
            }
        }
    }
    let mut err_text = String::new();
    ctx.arm(session, "read")?;
    let _ = channel.stderr().take(4096).read_to_string(&mut err_text);
    ctx.arm(session, "read")?;
    channel
        .wait_close()
        .map_err(|e| ctx.ssh_error("read", &e))?;
    Ok((channel.exit_status().unwrap_or(-1), out, err_text))
}

fn connect(ctx: &Ctx<'_>, port: u16) -> Result<TcpStream, NodeFailure> {
    let address = ctx.node.address.as_str();
    ctx.remaining("name resolution")?;
    let addrs: Vec<SocketAddr> = (address, port)
        .to_socket_addrs()
        .map_err(|e| {
            let mut f = ctx.fail("resolve", format!("cannot resolve {address}: {e}"));
            f.note = Some(
                "use an IP address in /etc/pve/.members or ring0_addr, or fix DNS/hosts".into(),
            );
            f
        })?
        .collect();
    let mut last: Option<NodeFailure> = None;
    for sa in &addrs {
        let left = ctx.remaining("connect")?;
        match TcpStream::connect_timeout(sa, left) {
            Ok(tcp) => {
                let left = ctx.remaining("connect")?;
                let _ = tcp.set_read_timeout(Some(left));
                let _ = tcp.set_write_timeout(Some(left));
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ctx.timed_out("connect"));
            }
            Err(e) => {
                let mut f = ctx.fail("connect", format!("{sa}: {e}"));
                f.note = Some(format!(
                    "is sshd running on {} and listening on port {port}? (--ssh-port, PVE_CPUGUARD_SSH_PORT)",
                    ctx.node.name
                ));
                last = Some(f);
            }
        }
    }
    Err(last.unwrap_or_else(|| ctx.fail("resolve", format!("{address} resolves to no address"))))
}

/// `ssh-ed25519` etc.: the string at the start of an SSH key blob.
fn key_type_of(blob: &[u8]) -> String {
    let len = blob
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    blob.get(4..4 + len)
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("unknown")
        .to_string()
}

fn verify_host_key(ctx: &Ctx<'_>, session: &Session, opts: &Options) -> Result<(), NodeFailure> {
    let node = ctx.node;
    let Some((blob, _)) = session.host_key() else {
        return Err(ctx.fail("host-key", "the server offered no host key"));
    };
    let key_type = key_type_of(blob);
    let fingerprint = format!(
        "SHA256:{}",
        session
            .host_key_hash(HashType::Sha256)
            .map(|h| STANDARD_NO_PAD.encode(h))
            .unwrap_or_default()
    );
    let paths = known_hosts::files_for(&opts.pve_dir, &node.name, opts.known_hosts.as_deref());
    let mut files = Vec::new();
    for p in &paths {
        match known_hosts::read(p) {
            Ok(Some(f)) => files.push(f),
            Ok(None) => {}
            Err(e) => return Err(ctx.fail("host-key", e.to_string())),
        }
    }
    let names = known_hosts::lookup_names(&node.name, &node.address, opts.port);
    let searched = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let entry = format!("{} {key_type} {}", node.name, BASE64.encode(blob));
    let trust_target = opts.known_hosts.clone().unwrap_or_else(|| {
        paths
            .first()
            .cloned()
            .unwrap_or_else(|| opts.pve_dir.join("priv/known_hosts"))
    });
    match known_hosts::check(&files, &names, blob) {
        Check::Match { .. } => Ok(()),
        Check::Unknown => {
            let mut f = ctx.fail(
                "host-key",
                format!(
                    "host key not known: {key_type} {fingerprint} (looked for {} in {searched})",
                    names.join(", ")
                ),
            );
            f.note = Some(format!(
                "verify it on {n} itself (`ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub` must print {fingerprint}), \
                 then trust it: run `pvecm updatecerts` on {n}, or append this line to {t}:\n  {entry}",
                n = node.name,
                short = key_type.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519"),
                t = trust_target.display(),
            ));
            Err(f)
        }
        Check::Changed {
            path,
            line,
            key_type: known_type,
        } => {
            let mut f = ctx.fail(
                "host-key",
                format!(
                    "HOST KEY CHANGED: {} offers {key_type} {fingerprint}, but {}:{line} records a different {known_type} key for it",
                    node.name,
                    path.display()
                ),
            );
            f.note = Some(format!(
                "this may be an attack (man in the middle) or a reinstalled node; verify the new key on {n} \
                 (`ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub`), then replace the old line {line} of {p} with:\n  {entry}",
                n = node.name,
                short = key_type.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519"),
                p = path.display(),
            ));
            Err(f)
        }
        Check::Revoked { path, line } => Err(ctx.fail(
            "host-key",
            format!(
                "host key {key_type} {fingerprint} is marked @revoked in {}:{line}",
                path.display()
            ),
        )),
    }
}

fn authenticate(ctx: &Ctx<'_>, session: &Session, opts: &Options) -> Result<(), NodeFailure> {
    let mut tried: Vec<String> = Vec::new();
    if opts.use_agent {
        if let Ok(mut agent) = session.agent() {
            if agent.connect().is_ok() && agent.list_identities().is_ok() {
                for id in agent.identities().unwrap_or_default() {
                    ctx.arm(session, "authentication")?;
                    if agent.userauth(&opts.user, &id).is_ok() {
                        return Ok(());
                    }
                    tried.push(format!("agent key {}", id.comment()));
                }
            }
        }
    }
    for key in &opts.keys {
        ctx.arm(session, "authentication")?;
        match session.userauth_pubkey_file(&opts.user, None, key, None) {
            Ok(()) => return Ok(()),
            Err(e) => {
                if Instant::now() >= ctx.deadline {
                    return Err(ctx.timed_out("authentication"));
                }
                tried.push(format!("{} ({})", key.display(), e.message()));
            }
        }
    }
    let mut f = ctx.fail(
        "auth",
        if tried.is_empty() {
            "no SSH key to try (no agent, no ~/.ssh/id_ed25519, id_ecdsa or id_rsa)".to_string()
        } else {
            format!("{} refused every key: {}", opts.user, tried.join("; "))
        },
    );
    f.note = Some(format!(
        "pve-cpuguard logs in as {} with key files (--ssh-key, PVE_CPUGUARD_SSH_KEY) or the agent, as Proxmox VE's own \
         node-to-node SSH does; check that the key is in {}'s /etc/pve/priv/authorized_keys",
        opts.user, ctx.node.name
    ));
    Err(f)
}

/// Reads the local node's CPU from a file (normally /proc/cpuinfo), and
/// the kernel release from /proc.
///
/// # Errors
/// A [`NodeFailure`] with stage `local`.
pub fn read_local(
    node: &Node,
    cpuinfo_path: &Path,
    probe: Option<&ProbeOptions>,
) -> Result<Answer, NodeFailure> {
    let info = crate::reach::local::cpuinfo(cpuinfo_path).map_err(|e| NodeFailure {
        node: node.name.clone(),
        address: node.address.clone(),
        stage: "local",
        message: e.to_string(),
        note: None,
    })?;
    let kernel = crate::fsutil::read_to_string_raw("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let kvm = probe.map(|p| kvm_probe::probe_local(p).map_err(|e| e.to_string()));
    Ok(Answer { info, kernel, kvm })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_at_the_last_separator() {
        let (c, k) = split_output("processor : 0\nflags : a\n---\n6.8.12-4-pve\n");
        assert_eq!(c, "processor : 0\nflags : a\n");
        assert_eq!(k.as_deref(), Some("6.8.12-4-pve"));
        let (c, k) = split_output("processor : 0\n");
        assert_eq!((c, k), ("processor : 0\n", None));
        let (_, k) = split_output("x : y\n---\n");
        assert_eq!(k, None);
    }

    #[test]
    fn key_type_is_read_from_the_blob() {
        let blob = BASE64
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ")
            .unwrap();
        assert_eq!(key_type_of(&blob), "ssh-ed25519");
        assert_eq!(key_type_of(&[0, 0]), "unknown");
        assert_eq!(key_type_of(&[0, 0, 0, 200, b'a']), "unknown");
    }

    #[test]
    fn the_remote_command_is_a_constant_without_interpolation() {
        assert!(!REMOTE_COMMAND.contains('{') && !REMOTE_COMMAND.contains('$'));
    }
}
