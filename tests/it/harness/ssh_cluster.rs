//! The [`Cluster`] with nodes behind real network addresses: real sshd,
//! silent, closed or local, a client key, and the SSH settings added to
//! the cluster's environment. Everything on disk (`/etc/pve`, cache,
//! paths) is the [`Cluster`]'s.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::cluster::Cluster;
use super::sshd::{self, Serve, Silent, Sshd};
use super::{cpuinfo, current_user, Done, Run};

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

/// The fixture: a [`Cluster`] (reached through `Deref`) whose nodes have
/// addresses on a fresh 127.A.B.0/24.
pub struct SshCluster {
    /// `/etc/pve`, the cache and the temporary directory.
    pub cluster: Cluster,
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

impl Deref for SshCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl DerefMut for SshCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

static SUBNETS: AtomicU32 = AtomicU32::new(0);

impl SshCluster {
    /// An empty cluster on a fresh 127.A.B.0/24 with a free port.
    pub fn new() -> SshCluster {
        let cluster = Cluster::empty();
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
        std::fs::create_dir_all(cluster.pve().join("priv")).unwrap();
        let client_key = cluster.path("client_ed25519");
        let client_pub = sshd::keygen(&client_key);
        let authorized_keys = cluster.path("authorized_keys");
        std::fs::write(&authorized_keys, format!("{client_pub}\n")).unwrap();
        SshCluster {
            cluster,
            client_key,
            authorized_keys,
            port,
            nodes: Vec::new(),
            members: false,
            timeout: 5.0,
            kernel: "6.8.12-4-pve".into(),
            subnet,
            next_host: 2,
        }
    }

    /// Nodes running real sshds, (name, sample) each, with the
    /// configuration written.
    pub fn with_sshd(nodes: &[(&str, &str)]) -> SshCluster {
        let mut c = SshCluster::new();
        for (name, sample) in nodes {
            c.sshd(name, sample);
        }
        c.write_config();
        c
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
        if let Some(s) = sample {
            self.cluster.samples.insert(name.into(), s.into());
        }
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

    /// Starts a real sshd in `nodes/DIR` at `addr` serving `sample`.
    fn start_sshd(
        &self,
        dir: &str,
        addr: &str,
        sample: &str,
        delay: Option<f64>,
        qmp: Option<&Path>,
    ) -> Sshd {
        Sshd::start(
            &self.path("nodes").join(dir),
            addr,
            self.port,
            &self.authorized_keys,
            &Serve {
                cpuinfo: &cpuinfo(sample),
                delay,
                kernel: &self.kernel,
                qmp,
            },
        )
    }

    /// A node running a real sshd that serves `sample`.
    pub fn sshd(&mut self, name: &str, sample: &str) -> &mut FakeNode {
        self.sshd_delayed(name, sample, None)
    }

    /// Like [`SshCluster::sshd`], answering `delay` seconds late.
    pub fn sshd_delayed(&mut self, name: &str, sample: &str, delay: Option<f64>) -> &mut FakeNode {
        let addr = self.next_addr();
        let s = self.start_sshd(name, &addr, sample, delay, None);
        self.push(name, addr, Some(sample), Server::Sshd(s))
    }

    /// A node running a real sshd whose QEMU probe answers with the
    /// recorded QMP transcript `qmp` (under tests/data/qmp/).
    pub fn sshd_with_qemu(&mut self, name: &str, sample: &str, qmp: &str) -> &mut FakeNode {
        let addr = self.next_addr();
        let qmp = super::data("qmp").join(qmp);
        let s = self.start_sshd(name, &addr, sample, None, Some(&qmp));
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
        let addr = self.nodes[i].addr.clone();
        let s = self.start_sshd(&format!("{name}-{sample}"), &addr, sample, None, None);
        self.nodes[i].server = Server::Sshd(s);
        self.nodes[i].sample = Some(sample.into());
        self.cluster.samples.insert(name.into(), sample.into());
        self.write_config();
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> &FakeNode {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// The node pve-cpuguard runs on, if any.
    fn local_node(&self) -> Option<&FakeNode> {
        self.nodes
            .iter()
            .find(|n| matches!(n.server, Server::Local))
    }

    /// Writes corosync.conf, `.members` (when [`SshCluster::members`] is set or
    /// a node is offline) and each node's
    /// `nodes/NAME/ssh_known_hosts` (PVE 8.1+ layout) per its [`Trust`].
    pub fn write_config(&self) {
        let ring: Vec<(&str, &str)> = self
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.addr.as_str()))
            .collect();
        self.write_corosync(&ring);
        if self.members || self.nodes.iter().any(|n| !n.online) {
            self.write_members();
        }
        for n in &self.nodes {
            let dir = self.pve().join("nodes").join(&n.name);
            std::fs::create_dir_all(&dir).unwrap();
            let Some(s) = n.sshd() else { continue };
            let line = match n.trust {
                Trust::Known => format!("{} {}\n", n.name, sshd::type_and_key(&s.host_pub)),
                Trust::Changed => {
                    let other = sshd::keygen(&self.path(&format!("other-{}", n.name)));
                    format!("{} {}\n", n.name, sshd::type_and_key(&other))
                }
                Trust::Unknown => continue,
            };
            std::fs::write(dir.join("ssh_known_hosts"), line).unwrap();
        }
    }

    /// Writes `.members` in pmxcfs's format: every node with its address
    /// and online state, seen from the local node.
    pub fn write_members(&self) {
        let local = self
            .local_node()
            .map_or("not-a-member", |n| n.name.as_str());
        let members: Vec<(&str, &str, bool)> = self
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.addr.as_str(), n.online))
            .collect();
        self.cluster.write_members(local, true, &members);
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

    /// The binary with the [`Cluster`]'s environment on the local node
    /// (none named without one), and this cluster's SSH settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let local = self.local_node().map(|n| n.name.as_str());
        let mut cmd = self.cluster.command(local, args);
        cmd.env("HOME", self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env("PVE_CPUGUARD_SSH_KEY", &self.client_key)
            .env("PVE_CPUGUARD_SSH_PORT", self.port.to_string())
            .env("PVE_CPUGUARD_SSH_USER", current_user())
            .env("PVE_CPUGUARD_TIMEOUT", self.timeout.to_string())
            // Tests that want the QEMU probe ask for it.
            .env("PVE_CPUGUARD_PROBE", "off");
        cmd
    }

    /// [`SshCluster::command`] as a [`Run`], for more environment.
    pub fn cmd(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
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
