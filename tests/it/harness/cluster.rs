//! A throw-away Proxmox cluster on disk: an `/etc/pve` tree in the formats
//! pmxcfs writes (`nodes/<node>/qemu-server/<vmid>.conf`, `.vmlist`,
//! `virtual-guest/cpu-models.conf`) and a pve-cpuguard cache whose node
//! records come from real /proc/cpuinfo samples.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pve_cpuguard::cache::{Cache, NodeRecord};

use super::{cpuinfo as sample, Run};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// node → cpuinfo sample name
    pub nodes: BTreeMap<String, String>,
    vms: BTreeMap<u32, String>,
}

impl Cluster {
    /// `nodes`: (name, cpuinfo sample) pairs.
    pub fn new(nodes: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster {
            dir,
            nodes: nodes
                .iter()
                .map(|(n, s)| ((*n).to_string(), (*s).to_string()))
                .collect(),
            vms: BTreeMap::new(),
        };
        std::fs::create_dir_all(c.pve().join("virtual-guest")).unwrap();
        for n in c.nodes.keys() {
            std::fs::create_dir_all(c.pve().join("nodes").join(n).join("qemu-server")).unwrap();
        }
        c.write_cache(&c.nodes.keys().cloned().collect::<Vec<_>>());
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

    /// Writes a cache holding records of `nodes` only.
    pub fn write_cache(&self, nodes: &[String]) {
        let mut cache = Cache::default();
        let now = pve_cpuguard::cache::now();
        for n in nodes {
            let s = &self.nodes[n];
            let info = pve_cpuguard::reach::local::cpuinfo(&sample(s)).unwrap();
            cache.nodes.insert(
                n.clone(),
                NodeRecord::new(
                    n,
                    &format!("10.0.0.{}", cache.nodes.len() + 1),
                    &info,
                    None,
                    now,
                ),
            );
        }
        cache.updated_at = now;
        std::fs::create_dir_all(self.cache().parent().unwrap()).unwrap();
        std::fs::write(self.cache(), cache.to_json()).unwrap();
    }

    /// Adds VM `vmid` on `node` with the given config text, and lists it in `.vmlist`.
    pub fn vm(&mut self, vmid: u32, node: &str, conf: &str) -> &mut Self {
        std::fs::write(
            self.pve()
                .join(format!("nodes/{node}/qemu-server/{vmid}.conf")),
            conf,
        )
        .unwrap();
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

    pub fn cpu_models(&self, text: &str) {
        std::fs::write(self.pve().join("virtual-guest/cpu-models.conf"), text).unwrap();
    }

    /// The binary, run as if on `node`, with this cluster's paths.
    pub fn on(&self, node: &str, args: &[&str]) -> Run {
        self.node_env(node)
            .into_iter()
            .fold(Run::new(args), |run, (k, v)| run.env(k, v))
    }

    /// The environment that makes any of the binaries (or the hook file)
    /// act as if on `node` of this cluster.
    pub fn node_env(&self, node: &str) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("PVE_CPUGUARD_PVE_DIR", self.pve()),
            ("PVE_CPUGUARD_CACHE", self.cache()),
            ("PVE_CPUGUARD_NODE", PathBuf::from(node)),
            ("PVE_CPUGUARD_CPUINFO", sample(&self.nodes[node])),
            ("PVE_CPUGUARD_CONFIG", self.path("no-such.conf")),
            ("PVE_CPUGUARD_SYSLOG_SOCKET", self.path("no-syslog")),
            ("PVE_CPUGUARD_RUN_DIR", self.path("run")),
            ("PVE_CPUGUARD_STATE_DIR", self.path("state")),
        ]
    }
}

/// Writes an executable script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
