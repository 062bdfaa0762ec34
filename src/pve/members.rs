//! `/etc/pve/.members`: pmxcfs's live view of the cluster.
//!
//! Format (pve-cluster `src/pmxcfs/status.c`, `cfs_create_memberlist_msg`):
//! `{"nodename": "pve1", "version": 12, "cluster": {…}, "nodelist":
//! {"pve1": {"id": 1, "online": 1, "ip": "10.0.0.1"}, …}}`. `online` is an
//! integer 0/1, `ip` may be missing, and a standalone node has no
//! `nodelist` at all. `ip` is the address Proxmox VE itself SSHes to
//! (`PVE::Cluster::remote_node_ip`), so it wins over corosync's ring address.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One node's entry in `.members`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// Corosync node id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Whether pmxcfs sees the node (0/1 in the file).
    #[serde(default, deserialize_with = "int_bool")]
    pub online: bool,
    /// The node's management address, when pmxcfs knows it.
    #[serde(default)]
    pub ip: Option<String>,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Members {
    /// The local node's name.
    #[serde(default)]
    pub nodename: Option<String>,
    /// Nodes by name (empty on a standalone node).
    #[serde(default)]
    pub nodelist: BTreeMap<String, Member>,
}

fn int_bool<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrBool {
        Int(i64),
        Bool(bool),
    }
    Ok(match Option::<IntOrBool>::deserialize(d)? {
        Some(IntOrBool::Int(i)) => i != 0,
        Some(IntOrBool::Bool(b)) => b,
        None => false,
    })
}

/// Reads `.members` if it exists (`Ok(None)` when it does not).
///
/// # Errors
/// Unreadable or malformed file (with file and line).
pub fn read(path: &Path) -> Result<Option<Members>> {
    match crate::fsutil::read_to_string_raw(path) {
        Ok(text) => parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Parses `.members` text; `origin` names the file in error messages.
///
/// # Errors
/// Malformed JSON, with the line serde_json reports.
pub fn parse(text: &str, origin: &Path) -> Result<Members> {
    serde_json::from_str(text)
        .map_err(|e| Error::parse(origin, e.line(), format!("not a valid .members file: {e}")))
}

/// Whether the cluster is quorate, from `.members` `cluster.quorate`
/// (pve-cluster `status.c`): `None` when the file says nothing (a
/// standalone node has no `cluster` object) or does not exist.
///
/// # Errors
/// Unreadable or malformed file.
pub fn quorate(path: &Path) -> Result<Option<bool>> {
    let text = match crate::fsutil::read_to_string_raw(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::parse(path, e.line(), format!("not a valid .members file: {e}")))?;
    Ok(match v.pointer("/cluster/quorate") {
        Some(serde_json::Value::Number(n)) => Some(n.as_i64() != Some(0)),
        Some(serde_json::Value::Bool(b)) => Some(*b),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Result<Members> {
        parse(text, Path::new(".members"))
    }

    #[test]
    fn pmxcfs_format() {
        let m = p(r#"{
"nodename": "pve1",
"version": 12,
"cluster": { "name": "mycluster", "version": 4, "nodes": 2, "quorate": 1 },
"nodelist": {
  "pve1": { "id": 1, "online": 1, "ip": "10.0.0.1"},
  "pve2": { "id": 2, "online": 0, "ip": "10.0.0.2"},
  "pve3": { "id": 3, "online": 1}
  }
}"#)
        .unwrap();
        assert_eq!(m.nodename.as_deref(), Some("pve1"));
        assert!(m.nodelist["pve1"].online);
        assert!(!m.nodelist["pve2"].online);
        assert_eq!(m.nodelist["pve2"].ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(m.nodelist["pve3"].ip, None);
    }

    #[test]
    fn standalone_node() {
        let m = p(r#"{"nodename": "solo", "version": 3}"#).unwrap();
        assert!(m.nodelist.is_empty());
    }

    #[test]
    fn malformed_names_the_line() {
        let e = p("{\n\"nodelist\": {\n  \"a\": \"x\"\n}}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(".members:3: not a valid .members file"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_is_none() {
        assert_eq!(read(Path::new("/nonexistent/.members")).unwrap(), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = p(&s);
        }

        #[test]
        fn never_panics_on_json_soup(s in r#"[{}\[\]":,0-9a-z \n]{0,200}"#) {
            let _ = p(&s);
        }
    }
}
