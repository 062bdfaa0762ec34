//! A fake Proxmox VE cluster: nodes (real sshd, silent, closed, local),
//! the `/etc/pve` tree describing them, a client key, a cache path, and a
//! command builder for the pve-cpuguard binary pointed at all of it.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sshd::{self, Serve, Silent, Sshd};
use super::{binary, command, cpuinfo, current_user, Done};

/// How the node's host key is recorded in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The real key is recorded.
    Known,
    /// Nothing is recorded.
    Unknown,
    /// A different key is recorded.
    Changed,
}

/// What answers at a node's address.
pub enum Server {
    /// A real sshd.
    Sshd(Sshd),
    /// Accepts TCP, never speaks.
    Silent(Silent),
    /// Nothing listens.
    Closed,
    /// The node pve-cpuguard runs on (read from a file, no server).
    Local,
}

/// One node of the fake cluster.
pub struct FakeNode {
    /// Node name.
    pub name: String,
    /// Its loopback address.
    pub addr: String,
    /// The cpuinfo sample it serves, if any.
    pub sample: Option<String>,
    /// What answers.
    pub server: Server,
    /// How known_hosts records it.
    pub trust: Trust,
    /// Online in `.members`.
    pub online: bool,
}

impl FakeNode {
    /// The sshd, if this node runs one.
    pub fn sshd(&self) -> Option<&Sshd> {
        match &self.server {
            Server::Sshd(s) => Some(s),
            _ => None,
        }
    }
}

/// The fixture.
pub struct SshCluster {
    /// Everything lives below this directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The fake `/etc/pve`.
    pub pve_dir: PathBuf,
    /// The cache file.
    pub cache: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// `authorized_keys` shared by every sshd.
    pub authorized_keys: PathBuf,
    /// The SSH port of every node.
    pub port: u16,
    /// Nodes in corosync order.
    pub nodes: Vec<FakeNode>,
    /// Write `.members` (with ips and online states).
    pub members: bool,
    /// `--timeout` passed by [`SshCluster::command`].
    pub timeout: f64,
    /// Kernel release the fake nodes print.
    pub kernel: String,
    subnet: (u8, u8),
    next_host: u8,
}

static SUBNETS: AtomicU32 = AtomicU32::new(0);

impl SshCluster {
    /// An empty cluster on a fresh 127.A.B.0/24 with a free port.
    pub fn new() -> SshCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = SUBNETS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let subnet = (
            u8::try_from(10 + (pid % 240)).unwrap(),
            u8::try_from(1 + ((pid / 240 + n) % 250)).unwrap(),
        );
        let probe = format!("127.{}.{}.2", subnet.0, subnet.1);
        let port = TcpListener::bind((probe.as_str(), 0))
            .expect("bind a loopback address")
            .local_addr()
            .unwrap()
            .port();
        let pve_dir = dir.path().join("etc-pve");
        std::fs::create_dir_all(pve_dir.join("priv")).unwrap();
        let client_key = dir.path().join("client_ed25519");
        let client_pub = sshd::keygen(&client_key);
        let authorized_keys = dir.path().join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{client_pub}\n")).unwrap();
        SshCluster {
            cache: dir.path().join("cache/cluster.json"),
            pve_dir,
            client_key,
            authorized_keys,
            port,
            nodes: Vec::new(),
            members: false,
            timeout: 5.0,
            kernel: "6.8.12-4-pve".into(),
            subnet,
            next_host: 2,
            dir,
        }
    }

    fn next_addr(&mut self) -> String {
        let a = format!("127.{}.{}.{}", self.subnet.0, self.subnet.1, self.next_host);
        self.next_host += 1;
        a
    }

    fn push(
        &mut self,
        name: &str,
        addr: String,
        sample: Option<&str>,
        server: Server,
    ) -> &mut FakeNode {
        self.nodes.push(FakeNode {
            name: name.into(),
            addr,
            sample: sample.map(str::to_string),
            server,
            trust: Trust::Known,
            online: true,
        });
        self.nodes.last_mut().unwrap()
    }

    /// A node running a real sshd that serves `sample`.
    pub fn sshd(&mut self, name: &str, sample: &str) -> &mut FakeNode {
        self.sshd_delayed(name, sample, None)
    }

    /// Like [`SshCluster::sshd`], answering `delay` seconds late.
    pub fn sshd_delayed(&mut self, name: &str, sample: &str, delay: Option<f64>) -> &mut FakeNode {
        let addr = self.next_addr();
        let dir = self.dir.path().join("nodes").join(name);
        let s = Sshd::start(
            &dir,
            &addr,
            self.port,
            &self.authorized_keys,
            &Serve {
                cpuinfo: &cpuinfo(sample),
                delay,
                kernel: &self.kernel,
                qmp: None,
            },
        );
        self.push(name, addr, Some(sample), Server::Sshd(s))
    }

    /// A node running a real sshd whose QEMU probe answers with the
    /// recorded QMP transcript `qmp` (under tests/data/qmp/).
    pub fn sshd_with_qemu(&mut self, name: &str, sample: &str, qmp: &str) -> &mut FakeNode {
        let addr = self.next_addr();
        let dir = self.dir.path().join("nodes").join(name);
        let qmp = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/qmp")
            .join(qmp);
        let s = Sshd::start(
            &dir,
            &addr,
            self.port,
            &self.authorized_keys,
            &Serve {
                cpuinfo: &cpuinfo(sample),
                delay: None,
                kernel: &self.kernel,
                qmp: Some(&qmp),
            },
        );
        self.push(name, addr, Some(sample), Server::Sshd(s))
    }

    /// A node that accepts TCP and never speaks.
    pub fn silent(&mut self, name: &str) -> &mut FakeNode {
        let addr = self.next_addr();
        let s = Silent::start(&addr, self.port);
        self.push(name, addr, None, Server::Silent(s))
    }

    /// A node where nothing listens.
    pub fn closed(&mut self, name: &str) -> &mut FakeNode {
        let addr = self.next_addr();
        self.push(name, addr, None, Server::Closed)
    }

    /// The node pve-cpuguard runs on, reading `sample` as its cpuinfo.
    pub fn local(&mut self, name: &str, sample: &str) -> &mut FakeNode {
        let addr = self.next_addr();
        self.push(name, addr, Some(sample), Server::Local)
    }

    /// Stops whatever answers for `name`: its port is closed from now on.
    pub fn stop(&mut self, name: &str) {
        let n = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("node");
        n.server = Server::Closed;
    }

    /// Restarts `name`'s sshd (same address, new host key) serving another
    /// sample, as after a CPU or BIOS change; rewrites the configuration.
    pub fn replace_sample(&mut self, name: &str, sample: &str) {
        self.stop(name);
        let i = self.nodes.iter().position(|n| n.name == name).unwrap();
        let dir = self
            .dir
            .path()
            .join("nodes")
            .join(format!("{name}-{sample}"));
        let s = Sshd::start(
            &dir,
            &self.nodes[i].addr.clone(),
            self.port,
            &self.authorized_keys,
            &Serve {
                cpuinfo: &cpuinfo(sample),
                delay: None,
                kernel: &self.kernel,
                qmp: None,
            },
        );
        self.nodes[i].server = Server::Sshd(s);
        self.nodes[i].sample = Some(sample.into());
        self.write_config();
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> &FakeNode {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// Writes corosync.conf, `.members` (when [`SshCluster::members`] is set or
    /// a node is offline) and each node's
    /// `nodes/NAME/ssh_known_hosts` (PVE 8.1+ layout) per its [`Trust`].
    pub fn write_config(&self) {
        let mut c = String::from("logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = write!(
                c,
                "  node {{\n    name: {}\n    nodeid: {}\n    quorum_votes: 1\n    ring0_addr: {}\n  }}\n",
                n.name,
                i + 1,
                n.addr
            );
        }
        c.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n  cluster_name: testlab\n  config_version: 3\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n");
        std::fs::write(self.pve_dir.join("corosync.conf"), c).unwrap();
        if self.members || self.nodes.iter().any(|n| !n.online) {
            self.write_members();
        }
        for n in &self.nodes {
            let dir = self.pve_dir.join("nodes").join(&n.name);
            std::fs::create_dir_all(&dir).unwrap();
            let Some(s) = n.sshd() else { continue };
            let line = match n.trust {
                Trust::Known => format!("{} {}\n", n.name, sshd::type_and_key(&s.host_pub)),
                Trust::Changed => {
                    let other = sshd::keygen(&self.dir.path().join(format!("other-{}", n.name)));
                    format!("{} {}\n", n.name, sshd::type_and_key(&other))
                }
                Trust::Unknown => continue,
            };
            std::fs::write(dir.join("ssh_known_hosts"), line).unwrap();
        }
    }

    /// Writes `.members` in pmxcfs's format.
    pub fn write_members(&self) {
        let local = self
            .nodes
            .iter()
            .find(|n| matches!(n.server, Server::Local))
            .map_or("not-a-member", |n| n.name.as_str());
        let mut m = format!(
            "{{\n\"nodename\": \"{local}\",\n\"version\": 7,\n\"cluster\": {{ \"name\": \"testlab\", \"version\": 3, \"nodes\": {}, \"quorate\": 1 }},\n\"nodelist\": {{\n",
            self.nodes.len()
        );
        let entries: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "  \"{}\": {{ \"id\": {}, \"online\": {}, \"ip\": \"{}\"}}",
                    n.name,
                    i + 1,
                    u8::from(n.online),
                    n.addr
                )
            })
            .collect();
        m.push_str(&entries.join(",\n"));
        m.push_str("\n  }\n}\n");
        std::fs::write(self.pve_dir.join(".members"), m).unwrap();
    }

    /// One known_hosts file recording every sshd node's real key under
    /// `[addr]:port` (OpenSSH's form for a non-22 port), optionally hashed
    /// with `ssh-keygen -H`.
    pub fn write_known_hosts_file(&self, path: &Path, hashed: bool) {
        let mut text = String::new();
        for n in &self.nodes {
            if let Some(s) = n.sshd() {
                let _ = writeln!(
                    text,
                    "[{}]:{} {}",
                    n.addr,
                    self.port,
                    sshd::type_and_key(&s.host_pub)
                );
            }
        }
        std::fs::write(path, text).unwrap();
        if hashed {
            let ok = Command::new("ssh-keygen")
                .arg("-H")
                .arg("-f")
                .arg(path)
                .output()
                .expect("ssh-keygen -H")
                .status
                .success();
            assert!(ok, "ssh-keygen -H");
        }
    }

    /// The binary, configured for this cluster through the environment
    /// (every path option has its `PVE_CPUGUARD_*` variable).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command(binary());
        cmd.args(args)
            .env("HOME", self.dir.path())
            // Refusal state stays in the test's directory, never in
            // /var/lib/pve-cpuguard.
            .env("PVE_CPUGUARD_STATE_DIR", self.dir.path().join("state"))
            .env_remove("SSH_AUTH_SOCK")
            .env("PVE_CPUGUARD_PVE_DIR", &self.pve_dir)
            .env("PVE_CPUGUARD_CACHE", &self.cache)
            .env("PVE_CPUGUARD_SSH_KEY", &self.client_key)
            .env("PVE_CPUGUARD_SSH_PORT", self.port.to_string())
            .env("PVE_CPUGUARD_SSH_USER", current_user())
            .env("PVE_CPUGUARD_TIMEOUT", self.timeout.to_string())
            // Tests that want the QEMU probe ask for it.
            .env("PVE_CPUGUARD_PROBE", "off")
            .env_remove("PVE_CPUGUARD_KNOWN_HOSTS")
            .env_remove("PVE_CPUGUARD_COROSYNC")
            .env("PVE_CPUGUARD_CONFIG", self.dir.path().join("no-such.conf"))
            .env(
                "PVE_CPUGUARD_SYSLOG_SOCKET",
                self.dir.path().join("no-syslog"),
            );
        match self
            .nodes
            .iter()
            .find(|n| matches!(n.server, Server::Local))
        {
            Some(n) => {
                cmd.env("PVE_CPUGUARD_NODE", &n.name).env(
                    "PVE_CPUGUARD_CPUINFO",
                    cpuinfo(n.sample.as_deref().unwrap_or_default()),
                );
            }
            None => {
                cmd.env_remove("PVE_CPUGUARD_NODE")
                    .env_remove("PVE_CPUGUARD_CPUINFO");
            }
        }
        cmd
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Done {
        Done::of(self.command(args))
    }
}

impl Default for SshCluster {
    fn default() -> Self {
        SshCluster::new()
    }
}
