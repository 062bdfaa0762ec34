//! The one throw-away Proxmox cluster of the tests, on disk: an `/etc/pve`
//! tree in the formats pmxcfs writes (`corosync.conf`, `.members`,
//! `nodes/<node>/qemu-server/<vmid>.conf`, `.vmlist`,
//! `virtual-guest/cpu-models.conf`), a pve-cpuguard cache whose node
//! records come from real /proc/cpuinfo samples, and the environment that
//! points the binaries at all of it. [`super::ssh_cluster::SshCluster`]
//! builds on it with real sshd nodes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use pve_cpuguard::cache::{Cache, NodeRecord};

use super::{binary, command, cpuinfo as sample, Run};

pub struct Cluster {
    /// Everything lives below this directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// node → cpuinfo sample name, for the nodes that have one
    pub samples: BTreeMap<String, String>,
    vms: BTreeMap<u32, String>,
}

impl Cluster {
    /// The hook tests' cluster: VM 100 (`cpu: x86-64-v4`, 2 cores) on
    /// pve1; its live migration to pve4 (a Cascade Lake) is allowed, to
    /// pve2 (a Haswell: no AVX-512) refused.
    pub fn refused_on_pve2() -> Cluster {
        let mut c = Cluster::new(&[
            ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
            ("pve2", "archspec-linux-rhel7-haswell"),
            ("pve4", "hwloc-xeon-gold-6230-cascadelake"),
        ]);
        c.vm(100, "pve1", "cores: 2\ncpu: x86-64-v4\nname: vm100\n");
        c
    }

    /// `nodes`: (name, cpuinfo sample) pairs; the cache holds a record of
    /// each.
    pub fn new(nodes: &[(&str, &str)]) -> Cluster {
        let mut c = Cluster::empty();
        for (n, s) in nodes {
            c.samples.insert((*n).to_string(), (*s).to_string());
            std::fs::create_dir_all(c.pve().join("nodes").join(n).join("qemu-server")).unwrap();
        }
        c.write_cache(&c.samples.keys().cloned().collect::<Vec<_>>());
        c
    }

    /// An `/etc/pve` without nodes, and no cache.
    pub fn empty() -> Cluster {
        let c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            samples: BTreeMap::new(),
            vms: BTreeMap::new(),
        };
        std::fs::create_dir_all(c.pve().join("virtual-guest")).unwrap();
        c
    }

    pub fn pve(&self) -> PathBuf {
        self.dir.path().join("pve")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/cluster.json")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The record a scan keeps of `node` at `addr` serving `sample`, read
    /// at `at` (seconds since the epoch).
    pub fn record(node: &str, addr: &str, sample_name: &str, at: u64) -> NodeRecord {
        let info = pve_cpuguard::reach::local::cpuinfo(&sample(sample_name)).unwrap();
        NodeRecord::new(node, addr, &info, None, at)
    }

    /// Writes a cache holding `records` only.
    pub fn write_records(&self, records: impl IntoIterator<Item = NodeRecord>) {
        let mut cache = Cache::default();
        for r in records {
            cache.nodes.insert(r.name.clone(), r);
        }
        cache.updated_at = pve_cpuguard::cache::now();
        std::fs::create_dir_all(self.cache().parent().unwrap()).unwrap();
        std::fs::write(self.cache(), cache.to_json()).unwrap();
    }

    /// Writes a cache holding records of `nodes` only, read now.
    pub fn write_cache(&self, nodes: &[String]) {
        let now = pve_cpuguard::cache::now();
        self.write_records(
            nodes.iter().enumerate().map(|(i, n)| {
                Cluster::record(n, &format!("10.0.0.{}", i + 1), &self.samples[n], now)
            }),
        );
    }

    /// Adds VM `vmid` on `node` with the given config text, and lists it in `.vmlist`.
    pub fn vm(&mut self, vmid: u32, node: &str, conf: &str) -> &mut Self {
        let dir = self.pve().join(format!("nodes/{node}/qemu-server"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{vmid}.conf")), conf).unwrap();
        self.vms.insert(vmid, node.to_string());
        let ids: Vec<String> = self
            .vms
            .iter()
            .map(|(id, n)| {
                format!("\"{id}\": {{ \"node\": \"{n}\", \"type\": \"qemu\", \"version\": 3 }}")
            })
            .collect();
        std::fs::write(
            self.pve().join(".vmlist"),
            format!(
                "{{\n\"version\": 9,\n\"ids\": {{\n{} }}\n}}\n",
                ids.join(",\n")
            ),
        )
        .unwrap();
        self
    }

    /// VM `vmid`'s config on `node`, as it is now.
    pub fn vm_config(&self, node: &str, vmid: u32) -> String {
        std::fs::read_to_string(
            self.pve()
                .join(format!("nodes/{node}/qemu-server/{vmid}.conf")),
        )
        .unwrap()
    }

    /// Writes `storage.cfg` as Proxmox VE does: `local`, a dir storage at
    /// `vz/` of this cluster with `content`, and `local-lvm`, then the
    /// sections `more`. `vz/snippets/backup.pl` is there, a VM's own
    /// hookscript. Returns the path of `vz/`.
    pub fn storage(&self, content: &str, more: &str) -> PathBuf {
        let vz = self.path("vz");
        std::fs::create_dir_all(vz.join("snippets")).unwrap();
        std::fs::write(
            self.pve().join("storage.cfg"),
            format!(
                "dir: local\n\tpath {}\n\tcontent {content}\n\n\
                 lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n{more}",
                vz.display(),
            ),
        )
        .unwrap();
        script(&vz.join("snippets/backup.pl"), "#!/bin/sh\nexit 0\n");
        vz
    }

    pub fn cpu_models(&self, text: &str) {
        std::fs::write(self.pve().join("virtual-guest/cpu-models.conf"), text).unwrap();
    }

    /// Writes `corosync.conf` as Proxmox VE does, listing `nodes` (name,
    /// ring0 address) in this order.
    pub fn write_corosync(&self, nodes: &[(&str, &str)]) {
        let mut c = String::from("logging {\n  debug: off\n  to_syslog: yes\n}\n\nnodelist {\n");
        for (i, (name, addr)) in nodes.iter().enumerate() {
            let _ = write!(
                c,
                "  node {{\n    name: {name}\n    nodeid: {}\n    quorum_votes: 1\n    ring0_addr: {addr}\n  }}\n",
                i + 1,
            );
        }
        c.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n  cluster_name: testlab\n  config_version: 3\n  interface {\n    linknumber: 0\n  }\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}\n");
        std::fs::write(self.pve().join("corosync.conf"), c).unwrap();
    }

    /// Writes `.members` in pmxcfs's format, as seen from `local`: `nodes`
    /// are (name, ip, online).
    pub fn write_members(&self, local: &str, quorate: bool, nodes: &[(&str, &str, bool)]) {
        let entries: Vec<String> = nodes
            .iter()
            .enumerate()
            .map(|(i, (name, ip, online))| {
                format!(
                    "  \"{name}\": {{ \"id\": {}, \"online\": {}, \"ip\": \"{ip}\"}}",
                    i + 1,
                    u8::from(*online),
                )
            })
            .collect();
        std::fs::write(
            self.pve().join(".members"),
            format!(
                "{{\n\"nodename\": \"{local}\",\n\"version\": 7,\n\"cluster\": {{ \"name\": \"testlab\", \"version\": 3, \"nodes\": {}, \"quorate\": {} }},\n\"nodelist\": {{\n{}\n  }}\n}}\n",
                nodes.len(),
                u8::from(quorate),
                entries.join(",\n")
            ),
        )
        .unwrap();
    }

    /// The binary, run as if on `node`, with this cluster's paths.
    pub fn on(&self, node: &str, args: &[&str]) -> Run {
        Run::new(args).envs(self.node_env(node))
    }

    /// The environment that makes any of the binaries (or the hook file)
    /// act as if on `node` of this cluster.
    pub fn node_env(&self, node: &str) -> Vec<(&'static str, PathBuf)> {
        self.env(Some(node))
    }

    /// This cluster's environment, on `node` (its name and cpuinfo) or on
    /// a host that names none: every path inside [`Cluster::dir`].
    pub fn env(&self, node: Option<&str>) -> Vec<(&'static str, PathBuf)> {
        let mut env = vec![
            ("PVE_CPUGUARD_PVE_DIR", self.pve()),
            ("PVE_CPUGUARD_CACHE", self.cache()),
        ];
        if let Some(node) = node {
            env.push(("PVE_CPUGUARD_NODE", PathBuf::from(node)));
            env.push(("PVE_CPUGUARD_CPUINFO", sample(&self.samples[node])));
        }
        env.extend([
            // No configuration file: /dev/null reads as an empty one (a
            // named file that does not exist is an error).
            ("PVE_CPUGUARD_CONFIG", PathBuf::from("/dev/null")),
            ("PVE_CPUGUARD_SYSLOG_SOCKET", self.path("no-syslog")),
            ("PVE_CPUGUARD_RUN_DIR", self.path("run")),
            ("PVE_CPUGUARD_STATE_DIR", self.path("state")),
            // No Proxmox VE here: tests that want pvesh's answer give one.
            ("PVE_CPUGUARD_PVESH", self.path("no-pvesh")),
        ]);
        env
    }

    /// The tool's binary with `args` and [`Cluster::env`].
    pub fn command(&self, node: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = command(binary());
        cmd.args(args).envs(self.env(node));
        cmd
    }
}

/// Writes an executable script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
