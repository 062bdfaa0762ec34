//! Where Proxmox VE keeps things, and who this node is.
//!
//! Paths follow pmxcfs (`/etc/pve`, pve-docs `pmxcfs.adoc`): a VM's config lives
//! at `nodes/<node>/qemu-server/<vmid>.conf` under the node that owns it,
//! `.vmlist` maps every VMID to its node, custom CPU models are in
//! `virtual-guest/cpu-models.conf`. The root is configurable so tests (and
//! `PVE_CPUGUARD_PVE_DIR`) can point at a fixture tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A validated VMID (Proxmox: 100–999999999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VmId(pub u32);

impl std::str::FromStr for VmId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse::<u32>()
            .ok()
            .filter(|n| {
                (100..=999_999_999).contains(n) && !s.starts_with('0') && !s.starts_with('+')
            })
            .map(VmId)
            .ok_or_else(|| format!("invalid VMID '{s}' (valid: 100-999999999)"))
    }
}

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `name` is a safe Proxmox node name (used as a path component).
#[must_use]
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
}

/// This node's name, one definition for every command: `PVE_CPUGUARD_NODE`
/// / `--node` if given, else what pmxcfs calls it (`.members` `nodename`
/// under `pve_dir`), else the short host name (Proxmox node names are the
/// host name up to the first dot).
#[must_use]
pub fn local_node(given: Option<&str>, pve_dir: &Path) -> String {
    if let Some(n) = given.filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    if let Some(n) = crate::pve::members::read(&pve_dir.join(".members"))
        .ok()
        .flatten()
        .and_then(|m| m.nodename)
        .filter(|n| !n.is_empty())
    {
        return n;
    }
    host_name()
}

/// The short host name (`/proc/sys/kernel/hostname` up to its first dot),
/// `localhost` when there is none: this node's name as far as the kernel
/// knows it, without reading the cluster file system.
#[must_use]
pub fn host_name() -> String {
    crate::fsutil::read_to_string_raw("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_string))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The `/etc/pve` tree.
#[derive(Debug, Clone)]
pub struct PveDir {
    root: PathBuf,
}

/// One `.vmlist` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct VmListEntry {
    /// Owning node.
    pub node: String,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Deserialize)]
struct VmList {
    #[serde(default)]
    ids: BTreeMap<String, VmListEntry>,
}

impl PveDir {
    /// A tree rooted at `root` (normally `/etc/pve`).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PveDir { root: root.into() }
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `nodes/<node>/qemu-server/<vmid>.conf`.
    #[must_use]
    pub fn vm_config(&self, node: &str, vmid: VmId) -> PathBuf {
        // One buffer, not a path per component: an audit asks for 10 000.
        let mut path = std::ffi::OsString::with_capacity(self.root.as_os_str().len() + 48);
        path.push(self.root.as_os_str());
        // As `Path::join` would: no second separator after a root that
        // ends in one (`--pve-dir /etc/pve/`).
        if !self.root.as_os_str().as_encoded_bytes().ends_with(b"/") {
            path.push("/");
        }
        path.push("nodes/");
        path.push(node);
        path.push(format!("/qemu-server/{vmid}.conf"));
        PathBuf::from(path)
    }

    /// `virtual-guest/cpu-models.conf`.
    #[must_use]
    pub fn cpu_models(&self) -> PathBuf {
        self.root.join("virtual-guest/cpu-models.conf")
    }

    /// The node directories under `nodes/` (every node the cluster file
    /// system knows) and the VM configs in each: VMID → node.
    ///
    /// # Errors
    /// An unreadable `nodes/` directory (a missing one is empty).
    pub fn scan_nodes(&self) -> Result<(Vec<String>, BTreeMap<VmId, String>)> {
        let nodes_dir = self.root.join("nodes");
        let mut nodes = Vec::new();
        let mut vms = BTreeMap::new();
        let entries = match std::fs::read_dir(&nodes_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((nodes, vms)),
            Err(e) => return Err(Error::io(&nodes_dir, e)),
        };
        for e in entries.flatten() {
            let Some(node) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !valid_node_name(&node) {
                continue;
            }
            if let Ok(confs) = std::fs::read_dir(e.path().join("qemu-server")) {
                for c in confs.flatten() {
                    let name = c.file_name();
                    let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".conf")) else {
                        continue;
                    };
                    if let Ok(vmid) = id.parse::<VmId>() {
                        vms.insert(vmid, node.clone());
                    }
                }
            }
            nodes.push(node);
        }
        nodes.sort();
        Ok((nodes, vms))
    }

    /// Reads `.vmlist`: VMID → owner. A missing file is an empty list.
    ///
    /// # Errors
    /// Unreadable or malformed JSON (naming the file and line).
    pub fn vmlist(&self) -> Result<BTreeMap<VmId, VmListEntry>> {
        let path = self.root.join(".vmlist");
        let text = match crate::fsutil::read_to_string_raw(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let list: VmList = serde_json::from_str(&text)
            .map_err(|e| Error::parse(&path, e.line(), format!("invalid .vmlist JSON: {e}")))?;
        Ok(list
            .ids
            .into_iter()
            .filter_map(|(id, entry)| Some((id.parse().ok()?, entry)))
            .collect())
    }

    /// Finds a VM's config: the source node's during an incoming migration,
    /// else the local node's, else wherever `.vmlist` says, else any
    /// node's directory that holds it.
    ///
    /// # Errors
    /// An unsafe node name, or a `.vmlist` that cannot be read.
    pub fn locate(
        &self,
        vmid: VmId,
        local: &str,
        migrated_from: Option<&str>,
    ) -> Result<Option<(String, PathBuf)>> {
        if let Some(src) = migrated_from {
            if !valid_node_name(src) {
                return Err(Error::Usage(format!("invalid source node name {src:?}")));
            }
            let p = self.vm_config(src, vmid);
            if crate::fsutil::regular_exists(&p).map_err(|e| Error::io(&p, e))? {
                return Ok(Some((src.to_string(), p)));
            }
        }
        let p = self.vm_config(local, vmid);
        if crate::fsutil::regular_exists(&p).map_err(|e| Error::io(&p, e))? {
            return Ok(Some((local.to_string(), p)));
        }
        if let Some(entry) = self.vmlist()?.get(&vmid) {
            if entry.kind == "qemu" && valid_node_name(&entry.node) {
                let p = self.vm_config(&entry.node, vmid);
                if crate::fsutil::regular_exists(&p).map_err(|e| Error::io(&p, e))? {
                    return Ok(Some((entry.node.clone(), p)));
                }
            }
        }
        // No (or an outdated) `.vmlist`: pmxcfs keeps every node's configs
        // under nodes/<node>/qemu-server/, so look there.
        let Ok(dir) = std::fs::read_dir(self.root.join("nodes")) else {
            return Ok(None);
        };
        let mut names: Vec<String> = dir
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_node_name(n))
            .collect();
        names.sort();
        Ok(names.into_iter().find_map(|n| {
            let p = self.vm_config(&n, vmid);
            p.is_file().then_some((n, p))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_config_path_is_the_joined_path() {
        for root in ["/etc/pve", "/etc/pve/", "relative/dir", "/"] {
            let pve = PveDir::new(Path::new(root));
            let want = Path::new(root)
                .join("nodes")
                .join("pve-a")
                .join("qemu-server")
                .join("100.conf");
            assert_eq!(pve.vm_config("pve-a", VmId(100)), want, "{root}");
            assert_eq!(
                pve.vm_config("pve-a", VmId(100)).to_str(),
                want.to_str(),
                "{root}"
            );
        }
    }

    /// `scan` and `publish` named this node as pmxcfs does, `check` and the
    /// hook by the host name: on a host whose name differs, `check` listed a
    /// node that is not in the cluster. Now every command asks this.
    #[test]
    fn node_name_is_what_pmxcfs_calls_this_node() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".members"),
            r#"{"nodename": "pve-b", "version": 3}"#,
        )
        .unwrap();
        assert_eq!(local_node(None, dir.path()), "pve-b");
        assert_eq!(local_node(Some("given"), dir.path()), "given");
        assert_eq!(local_node(Some(""), dir.path()), "pve-b");
        // Without .members: the host name's first label.
        let none = tempfile::tempdir().unwrap();
        let host = local_node(None, none.path());
        assert!(!host.is_empty() && !host.contains('.'), "{host}");
    }

    #[test]
    fn vmids() {
        assert_eq!("100".parse::<VmId>(), Ok(VmId(100)));
        assert!("99".parse::<VmId>().is_err());
        assert!("0100".parse::<VmId>().is_err());
        assert!("+100".parse::<VmId>().is_err());
        assert!("1000000000".parse::<VmId>().is_err());
        assert!("../1".parse::<VmId>().is_err());
    }

    #[test]
    fn node_names_are_safe_path_components() {
        assert!(valid_node_name("pve1"));
        assert!(valid_node_name("node-a"));
        assert!(!valid_node_name("../etc"));
        assert!(!valid_node_name("a/b"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("-x"));
    }

    #[test]
    fn locate_prefers_the_migration_source() {
        let dir = tempfile::tempdir().unwrap();
        let pve = PveDir::new(dir.path());
        for node in ["pve1", "pve2"] {
            let p = pve.vm_config(node, VmId(100));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "cpu: host\n").unwrap();
        }
        let (node, _) = pve
            .locate(VmId(100), "pve2", Some("pve1"))
            .unwrap()
            .unwrap();
        assert_eq!(node, "pve1");
        let (node, _) = pve.locate(VmId(100), "pve2", None).unwrap().unwrap();
        assert_eq!(node, "pve2");
        assert!(pve.locate(VmId(100), "pve2", Some("../x")).is_err());
    }

    #[test]
    fn locate_falls_back_to_vmlist() {
        let dir = tempfile::tempdir().unwrap();
        let pve = PveDir::new(dir.path());
        let p = pve.vm_config("pve3", VmId(101));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "cpu: host\n").unwrap();
        std::fs::write(
            dir.path().join(".vmlist"),
            r#"{"version": 5, "ids": {"101": {"node": "pve3", "type": "qemu", "version": 2}}}"#,
        )
        .unwrap();
        let (node, _) = pve.locate(VmId(101), "pve1", None).unwrap().unwrap();
        assert_eq!(node, "pve3");
        assert!(pve.locate(VmId(102), "pve1", None).unwrap().is_none());
        std::fs::write(dir.path().join(".vmlist"), "{\n\"ids\": [}").unwrap();
        let e = pve.locate(VmId(101), "pve1", None).unwrap_err();
        assert!(e.to_string().contains(".vmlist:2:"), "{e}");
    }

    #[test]
    fn locate_finds_a_vm_on_another_node_without_vmlist() {
        let dir = tempfile::tempdir().unwrap();
        let pve = PveDir::new(dir.path());
        let p = pve.vm_config("pve3", VmId(102));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "cpu: host\n").unwrap();
        std::fs::create_dir_all(pve.vm_config("pve1", VmId(1)).parent().unwrap()).unwrap();
        let (node, path) = pve.locate(VmId(102), "pve1", None).unwrap().unwrap();
        assert_eq!((node.as_str(), path), ("pve3", p));
        assert!(pve.locate(VmId(103), "pve1", None).unwrap().is_none());
    }
}
