//! One fake node's network side: a real `sshd -D -e -f CONFIG` with its own
//! generated host key and a `ForceCommand` that prints a cpuinfo sample in
//! the format of pve-cpuguard's remote command; or a silent TCP listener
//! (accepts, never speaks); or nothing at all (a closed port).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Generates an ed25519 key pair at `path` (and `path.pub`); returns the
/// public key line.
pub fn keygen(path: &Path) -> String {
    let _ = std::fs::remove_file(path);
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "pve-cpuguard-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_string()
}

/// `ssh-ed25519 AAAA…` (type and key, without the comment).
pub fn type_and_key(pub_line: &str) -> String {
    pub_line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `SHA256:…` fingerprint of a public key file, from ssh-keygen.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .expect("ssh-keygen -lf");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

fn sshd_binary() -> &'static str {
    "/usr/sbin/sshd"
}

/// The command prefix that starts a fake node's sshd with its own, empty
/// home directory for root, as on a fresh Proxmox VE node: sshd runs the
/// remote command through root's shell, which reads `~/.bashrc`, and this
/// machine's (pyenv initialisation) cost ~0.1 s of CPU per login — sixteen
/// of those on the two cores the client also uses made the scan benchmark
/// measure this machine's dotfiles. A private mount namespace shows `home`
/// at `$HOME`; where that is not possible, the real home is used.
fn own_home(home: &Path) -> Command {
    static CAN_UNSHARE: OnceLock<bool> = OnceLock::new();
    let root_home = std::env::var_os("HOME").filter(|_| {
        *CAN_UNSHARE.get_or_init(|| {
            Command::new("unshare")
                .args(["--mount", "true"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    match root_home {
        Some(root_home) => {
            let mut cmd = Command::new("unshare");
            cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
                .arg("mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"")
                .arg("sh")
                .arg(home)
                .arg(root_home);
            cmd
        }
        None => {
            let mut cmd = Command::new("/usr/bin/env");
            cmd.arg("--");
            cmd
        }
    }
}

/// Whether this sshd knows `PerSourcePenalties` (OpenSSH 9.8+), which
/// would otherwise penalise the tests' deliberate failures.
fn supports_penalties(dir: &Path) -> bool {
    static CACHE: OnceLock<bool> = OnceLock::new();
    *CACHE.get_or_init(|| {
        let key = dir.join("probe_key");
        keygen(&key);
        let cfg = dir.join("probe_config");
        std::fs::write(
            &cfg,
            format!(
                "HostKey {}\nPerSourcePenalties no\nUsePAM no\n",
                key.display()
            ),
        )
        .unwrap();
        Command::new(sshd_binary())
            .arg("-t")
            .arg("-f")
            .arg(&cfg)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A running sshd; killed on drop.
pub struct Sshd {
    child: Child,
    /// The node's directory (config, host key, log, cpuinfo copy).
    pub dir: PathBuf,
    /// `ssh-ed25519 AAAA… comment` of its host key.
    pub host_pub: String,
    /// Its log (sshd -e output).
    pub log: PathBuf,
}

/// What the fake node prints.
pub struct Serve<'a> {
    /// The cpuinfo sample.
    pub cpuinfo: &'a Path,
    /// Seconds to sleep before answering.
    pub delay: Option<f64>,
    /// Kernel release to print.
    pub kernel: &'a str,
    /// A recorded QMP transcript to print when asked for the QEMU probe;
    /// `None` answers the probe with garbage (a node without a usable QEMU).
    pub qmp: Option<&'a Path>,
}

impl Sshd {
    /// Starts sshd on `addr:port` in `dir`, accepting `authorized_keys`,
    /// and waits until it listens.
    pub fn start(
        dir: &Path,
        addr: &str,
        port: u16,
        authorized_keys: &Path,
        serve: &Serve<'_>,
    ) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_ed25519");
        let host_pub = keygen(&host_key);
        let cpu = dir.join("cpuinfo");
        std::fs::copy(serve.cpuinfo, &cpu).unwrap();
        let sleep = serve
            .delay
            .map(|d| format!("sleep {d}; "))
            .unwrap_or_default();
        // The remote command's output format: cpuinfo, an empty line, `---`,
        // kernel. The QEMU probe (recognised by its QMP script) gets the
        // recorded transcript, or garbage.
        let probe = match serve.qmp {
            Some(q) => {
                let copy = dir.join("qmp.jsonl");
                std::fs::copy(q, &copy).unwrap();
                format!("cat {}", copy.display())
            }
            None => "echo 'this is not QEMU'".to_string(),
        };
        let script = dir.join("serve.sh");
        std::fs::write(
            &script,
            format!(
                "case \"$SSH_ORIGINAL_COMMAND\" in\n  *qmp_capabilities*) {probe} ;;\n  *) {sleep}cat {}; echo; echo ---; echo {} ;;\nesac\n",
                cpu.display(),
                serve.kernel
            ),
        )
        .unwrap();
        let force = format!("/bin/sh {}", script.display());
        let mut config = format!(
            "ListenAddress {addr}:{port}\n\
             HostKey {hk}\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {ak}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             UseDNS no\n\
             MaxStartups 100:30:200\n\
             LogLevel INFO\n\
             ForceCommand {force}\n",
            hk = host_key.display(),
            dir = dir.display(),
            ak = authorized_keys.display(),
        );
        if supports_penalties(dir) {
            config.push_str("PerSourcePenalties no\n");
        }
        let cfg = dir.join("sshd_config");
        std::fs::write(&cfg, config).unwrap();
        let log = dir.join("sshd.log");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let child = own_home(&home)
            .arg(sshd_binary())
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start /usr/sbin/sshd");
        let mut s = Sshd {
            child,
            dir: dir.to_path_buf(),
            host_pub,
            log,
        };
        s.wait_listening();
        s
    }

    fn wait_listening(&mut self) {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("Server listening on") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}) before listening:\n{log}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP listener that accepts connections and never says a word.
pub struct Silent {
    stop: Arc<AtomicBool>,
}

impl Silent {
    /// Listens on `addr:port`.
    pub fn start(addr: &str, port: u16) -> Silent {
        let listener = TcpListener::bind((addr, port)).expect("bind silent listener");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Silent { stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
