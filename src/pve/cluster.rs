//! Who the nodes are, where to reach them, and which one is this host.
//!
//! Names and ring addresses come from corosync.conf's `nodelist`; the
//! address to use and the online state come from `/etc/pve/.members` when it
//! exists (that is the address Proxmox VE itself SSHes to), else from
//! `ring0_addr`. Names and addresses are validated here, once: they are only
//! ever used as connect targets, file-name components under
//! `/etc/pve/nodes/` and known_hosts lookups, never passed to a shell.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pve::corosync::{self, Section};
use crate::pve::members::{self, Members};

/// Where a node's address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    /// `ip` in `/etc/pve/.members`.
    Members,
    /// `ring0_addr` in corosync.conf.
    Ring0,
}

impl AddressSource {
    /// Stable name for JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSource::Members => ".members",
            AddressSource::Ring0 => "ring0_addr",
        }
    }
}

/// One cluster node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name (`name` in the nodelist).
    pub name: String,
    /// Corosync node id.
    pub nodeid: Option<u32>,
    /// Corosync link 0 address.
    pub ring0_addr: Option<String>,
    /// Corosync link 1 address.
    pub ring1_addr: Option<String>,
    /// The address to connect to.
    pub address: String,
    /// Where `address` came from.
    pub address_source: AddressSource,
    /// Online state from `.members` (`None` without `.members`).
    pub online: Option<bool>,
    /// Whether this is the host pve-cpuguard runs on.
    pub local: bool,
}

/// The cluster as far as scanning is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `totem.cluster_name`, if set.
    pub name: Option<String>,
    /// The corosync.conf that was read.
    pub corosync_path: PathBuf,
    /// Nodes in nodelist order.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// The local node, if it is in the cluster.
    #[must_use]
    pub fn local(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.local)
    }
}

/// Where to read the cluster from.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The `/etc/pve` directory.
    pub pve_dir: &'a Path,
    /// An explicit corosync.conf, else `<pve_dir>/corosync.conf`, else
    /// `/etc/corosync/corosync.conf`.
    pub corosync: Option<&'a Path>,
    /// An explicit local node name (`--node`).
    pub node: Option<&'a str>,
}

/// The local corosync copy, read when the cluster file system has none.
pub const LOCAL_COROSYNC: &str = "/etc/corosync/corosync.conf";

/// Reads corosync.conf and `.members` and builds the node list.
///
/// # Errors
/// Missing or malformed files, nodes without name or address, invalid
/// names or addresses, duplicate names, and a `--node` not in the cluster.
pub fn load(src: &Sources<'_>) -> Result<Cluster> {
    let corosync_path = match src.corosync {
        Some(p) => p.to_path_buf(),
        None => {
            let in_pve = src.pve_dir.join("corosync.conf");
            if in_pve.exists() {
                in_pve
            } else if Path::new(LOCAL_COROSYNC).exists() {
                PathBuf::from(LOCAL_COROSYNC)
            } else {
                return Err(Error::Config(format!(
                    "no corosync.conf: neither {} nor {LOCAL_COROSYNC} exists\n\
                     note: is this a Proxmox VE cluster node with /etc/pve mounted (systemctl status pve-cluster)? \
                     Point --pve-dir or --corosync (PVE_CPUGUARD_PVE_DIR, PVE_CPUGUARD_COROSYNC) elsewhere if needed",
                    in_pve.display()
                )));
            }
        }
    };
    let config = corosync::read(&corosync_path)?;
    let members_path = src.pve_dir.join(".members");
    let members = members::read(&members_path)?;
    let hostname = if src.node.is_none() { hostname() } else { None };
    build(
        &config,
        members.as_ref(),
        src.node,
        hostname.as_deref(),
        &members_path,
    )
}

/// Builds the node list from parsed inputs (pure).
///
/// The local node is `node` if given (it must be in the cluster), else the
/// `.members` `nodename`, else `hostname` (its first label).
///
/// # Errors
/// See [`load`].
pub fn build(
    config: &corosync::Config,
    members: Option<&Members>,
    node: Option<&str>,
    hostname: Option<&str>,
    members_path: &Path,
) -> Result<Cluster> {
    let path = &config.path;
    let name = config
        .root
        .sections_named("totem")
        .find_map(|t| t.get("cluster_name"))
        .map(|p| p.value.clone());
    let mut nodes: Vec<Node> = Vec::new();
    for list in config.root.sections_named("nodelist") {
        for section in list.sections_named("node") {
            let n = node_from_section(section, members, path, members_path)?;
            if let Some(prev) = nodes.iter().find(|x| x.name == n.name) {
                return Err(Error::parse(
                    path,
                    section.line,
                    format!(
                        "node `{}` is listed twice (also as node id {:?})",
                        n.name, prev.nodeid
                    ),
                ));
            }
            nodes.push(n);
        }
    }
    if nodes.is_empty() {
        return Err(Error::Config(format!(
            "{}: no `node {{ … }}` entries inside a `nodelist {{ … }}` section\n\
             note: pve-cpuguard needs the cluster's node list; is this the cluster's corosync.conf?",
            path.display()
        )));
    }
    let local = match node {
        Some(n) => {
            if !nodes.iter().any(|x| x.name == n) {
                return Err(Error::Usage(format!(
                    "--node {n}: no node of that name in {} (nodes: {})\n\
                     note: --node (PVE_CPUGUARD_NODE) names this host as corosync.conf does; \
                     use one of the names listed",
                    path.display(),
                    nodes
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Some(n.to_string())
        }
        None => members
            .and_then(|m| m.nodename.clone())
            .filter(|n| nodes.iter().any(|x| &x.name == n))
            .or_else(|| {
                let h = hostname?.split('.').next()?.to_string();
                nodes.iter().any(|x| x.name == h).then_some(h)
            }),
    };
    for n in &mut nodes {
        n.local = local.as_deref() == Some(n.name.as_str());
    }
    Ok(Cluster {
        name,
        corosync_path: path.clone(),
        nodes,
    })
}

fn node_from_section(
    section: &Section,
    members: Option<&Members>,
    path: &Path,
    members_path: &Path,
) -> Result<Node> {
    let Some(name) = section.get("name") else {
        return Err(Error::parse(
            path,
            section.line,
            "`node` without a `name:` (Proxmox VE always writes one; pve-cpuguard needs it to find the node's host key)",
        ));
    };
    if !valid_name(&name.value) {
        return Err(Error::parse(
            path,
            name.line,
            format!(
                "invalid node name {:?}: expected letters, digits, `-` and `.`",
                name.value
            ),
        ));
    }
    let nodeid = match section.get("nodeid") {
        None => None,
        Some(p) => Some(p.value.parse::<u32>().map_err(|_| {
            Error::parse(
                path,
                p.line,
                format!("nodeid {:?} is not a number", p.value),
            )
        })?),
    };
    let ring = |key: &str| -> Result<Option<String>> {
        match section.get(key) {
            None => Ok(None),
            Some(p) if valid_address(&p.value) => Ok(Some(p.value.clone())),
            Some(p) => Err(Error::parse(
                path,
                p.line,
                format!(
                    "invalid {key} {:?}: expected an IPv4 or IPv6 address or a host name",
                    p.value
                ),
            )),
        }
    };
    let ring0_addr = ring("ring0_addr")?;
    let ring1_addr = ring("ring1_addr")?;
    let member = members.and_then(|m| m.nodelist.get(&name.value));
    let (address, address_source) = match member.and_then(|m| m.ip.clone()) {
        Some(ip) if valid_address(&ip) => (ip, AddressSource::Members),
        Some(ip) => {
            return Err(Error::Config(format!(
                "{}: node {}: invalid ip {ip:?}",
                members_path.display(),
                name.value
            )))
        }
        None => match &ring0_addr {
            Some(a) => (a.clone(), AddressSource::Ring0),
            None => {
                return Err(Error::parse(
                    path,
                    section.line,
                    format!(
                        "node `{}` has no `ring0_addr`, and {} gives no ip for it",
                        name.value,
                        members_path.display()
                    ),
                ))
            }
        },
    };
    Ok(Node {
        name: name.value.clone(),
        nodeid,
        ring0_addr,
        ring1_addr,
        address,
        address_source,
        online: members.map(|m| m.nodelist.get(&name.value).is_some_and(|x| x.online)),
        local: false,
    })
}

/// A node name: a host name (letters, digits, `-`, `.`), not starting with
/// `-` or `.`, no `..`, at most 253 characters. Safe as a path component.
#[must_use]
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && !s.contains("..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// An address: an IPv4 or IPv6 literal, or a valid host name.
#[must_use]
pub fn valid_address(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || valid_name(s)
}

/// This host's name, from the kernel.
#[must_use]
pub fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| crate::fsutil::read_to_string_raw(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> corosync::Config {
        corosync::parse(text, Path::new("corosync.conf")).unwrap()
    }

    fn members(text: &str) -> Members {
        members::parse(text, Path::new(".members")).unwrap()
    }

    const THREE: &str = "totem { cluster_name: lab }\nnodelist {\n node {\n  name: pve1\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n }\n node {\n  name: pve2\n  nodeid: 2\n  ring0_addr: fd00::2\n }\n node {\n  name: pve3\n  nodeid: 3\n  ring0_addr: pve3.lab\n }\n}\n";

    fn b(
        c: &corosync::Config,
        m: Option<&Members>,
        node: Option<&str>,
        host: Option<&str>,
    ) -> Result<Cluster> {
        build(c, m, node, host, Path::new(".members"))
    }

    /// The error of a cluster built from this corosync.conf alone.
    fn refused(corosync_text: &str) -> String {
        b(&cfg(corosync_text), None, None, None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn ring0_without_members() {
        let c = b(&cfg(THREE), None, None, None).unwrap();
        assert_eq!(c.name.as_deref(), Some("lab"));
        let addrs: Vec<_> = c.nodes.iter().map(|n| n.address.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.1", "fd00::2", "pve3.lab"]);
        assert!(c
            .nodes
            .iter()
            .all(|n| n.address_source == AddressSource::Ring0));
        assert_eq!(c.nodes[0].ring1_addr.as_deref(), Some("10.1.0.1"));
        assert_eq!(c.nodes[0].online, None);
        assert!(c.local().is_none());
    }

    #[test]
    fn members_ip_and_online_win() {
        let m = members(
            r#"{"nodename":"pve2","nodelist":{"pve1":{"id":1,"online":1,"ip":"192.168.1.1"},"pve2":{"id":2,"online":0}}}"#,
        );
        let c = b(&cfg(THREE), Some(&m), None, Some("other")).unwrap();
        assert_eq!(c.nodes[0].address, "192.168.1.1");
        assert_eq!(c.nodes[0].address_source, AddressSource::Members);
        assert_eq!(c.nodes[0].online, Some(true));
        assert_eq!(c.nodes[1].address, "fd00::2", "no ip: ring0_addr");
        assert_eq!(c.nodes[1].online, Some(false));
        assert_eq!(
            c.nodes[2].online,
            Some(false),
            "absent from .members = offline"
        );
        assert_eq!(c.local().unwrap().name, "pve2", ".members nodename");
    }

    #[test]
    fn local_node_by_flag_or_hostname() {
        let c = b(&cfg(THREE), None, Some("pve3"), Some("pve1")).unwrap();
        assert_eq!(c.local().unwrap().name, "pve3");
        let c = b(&cfg(THREE), None, None, Some("pve1.example.org")).unwrap();
        assert_eq!(c.local().unwrap().name, "pve1");
        let e = b(&cfg(THREE), None, Some("nope"), None).unwrap_err();
        assert!(e.to_string().contains("nodes: pve1, pve2, pve3"), "{e}");
    }

    #[test]
    fn one_line_nodelist() {
        let c = b(&cfg("nodelist{node{name:a\nring0_addr:127.0.0.2}node { name: b\nring0_addr: 127.0.0.3 }}"), None, None, None).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[1].address, "127.0.0.3");
    }

    #[test]
    fn nodes_without_name_or_address_are_errors_not_dropped() {
        let e = refused("nodelist {\n node {\n  ring0_addr: 1.2.3.4\n }\n}\n");
        assert!(
            e.to_string()
                .starts_with("corosync.conf:2: `node` without a `name:`"),
            "{e}"
        );
        let e = refused("nodelist {\n node {\n  name: a\n }\n}\n");
        assert!(
            e.to_string().contains("node `a` has no `ring0_addr`"),
            "{e}"
        );
    }

    #[test]
    fn hostile_values_are_refused() {
        for bad in [
            "name: a;reboot",
            "name: ../../etc",
            "name: -oProxyCommand=x",
        ] {
            let text = format!("nodelist {{\n node {{\n  {bad}\n  ring0_addr: 1.2.3.4\n }}\n}}\n");
            let e = refused(&text);
            assert!(
                e.to_string().contains("corosync.conf:3: invalid node name"),
                "{bad}: {e}"
            );
        }
        let e = refused("nodelist {\n node {\n  name: a\n  ring0_addr: $(id)\n }\n}\n");
        assert!(
            e.to_string()
                .contains("corosync.conf:4: invalid ring0_addr"),
            "{e}"
        );
    }

    #[test]
    fn duplicates_and_empty_lists_are_errors() {
        let e = refused("nodelist { node { name: a\nring0_addr: 1.1.1.1 }\nnode { name: a\nring0_addr: 1.1.1.2 } }");
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = refused("totem { version: 2 }");
        assert!(e.to_string().contains("no `node { … }` entries"), "{e}");
    }

    #[test]
    fn bad_nodeid_names_the_line() {
        let e =
            refused("nodelist {\n node {\n  name: a\n  nodeid: x\n  ring0_addr: 1.1.1.1\n }\n}");
        assert_eq!(
            e.to_string(),
            "corosync.conf:4: nodeid \"x\" is not a number"
        );
    }
}
