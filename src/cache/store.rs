//! The on-disk record of every node's CPU: what decisions read, so that no
//! decision ever waits on the network.
//!
//! One JSON file (default [`DEFAULT_PATH`]) with a schema version, written
//! only through [`super::Writer`] (lock, atomic replace). Readers take no
//! lock and refuse a FIFO or device at the cache path instead of blocking
//! on it. A record dated in the future or ages ago is flagged
//! ([`super::time_problem`]). A corrupt or unknown-schema file is reported
//! and treated as empty.
//!
//! A node that fails during a refresh keeps its last good record, marked
//! stale with the error; a node whose flags or level changed is reported as
//! [`Drift`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::admission::{self, Admission};
use super::drift::{Drift, Unscanned};
use super::record::NodeRecord;
use crate::error::{Error, Result};

/// The schema this version writes. 2 stores `flags` and `bugs` as one
/// space-separated string each instead of a list (a quarter of the parsing
/// work for the hookscript); nothing else changed.
pub const SCHEMA: u32 = 2;

/// The oldest schema this version still reads.
pub const OLDEST_READABLE: u32 = 1;

pub(super) fn readable(schema: u32) -> bool {
    (OLDEST_READABLE..=SCHEMA).contains(&schema)
}

/// Where the cache lives on a Proxmox VE node.
pub const DEFAULT_PATH: &str = "/var/cache/pve-cpuguard/cluster.json";

/// The whole cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    /// Always [`SCHEMA`] when written by this version.
    pub schema: u32,
    /// Who wrote it.
    #[serde(default)]
    pub generator: String,
    /// When the last refresh finished (0 = never).
    pub updated_at: u64,
    /// `totem.cluster_name`, if known.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Nodes with data, by name.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Nodes that were never reached, by name.
    #[serde(default)]
    pub unscanned: BTreeMap<String, Unscanned>,
    /// What the last refresh found changed.
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// Which VMs carried the guard's hookscript at the last refresh
    /// (absent in caches of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageCount>,
    /// Nodes whose record appeared or whose capability dropped
    /// ([`super::admission`]), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admissions: BTreeMap<String, Admission>,
}

/// The coverage a refresh found: VMs with and without the guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageCount {
    /// VMs in the cluster.
    pub vms: usize,
    /// VMs with the guard's hookscript (directly or chained).
    pub guarded: usize,
    /// The others, by VMID.
    pub unguarded: Vec<u32>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            schema: SCHEMA,
            generator: generator(),
            updated_at: 0,
            cluster: None,
            nodes: BTreeMap::new(),
            unscanned: BTreeMap::new(),
            drift: Vec::new(),
            coverage: None,
            admissions: BTreeMap::new(),
        }
    }
}

fn generator() -> String {
    format!("pve-cpuguard {}", env!("CARGO_PKG_VERSION"))
}

/// One node's result in a refresh, as [`Cache::merge`] consumes it.
#[derive(Debug, Clone)]
pub enum Update {
    /// The node answered.
    Scanned(Box<NodeRecord>),
    /// It did not.
    Failed {
        /// Node name.
        name: String,
        /// Address tried.
        address: String,
        /// Why.
        error: String,
    },
}

impl Cache {
    /// Loads the cache; a missing file is an empty cache.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read,
    /// [`Error::CacheCorrupt`] when it is not a cache of this schema.
    pub fn load(path: &Path) -> Result<Cache> {
        match crate::fsutil::read_optional(path)? {
            Some(bytes) => Cache::parse(&bytes, path),
            None => Ok(Cache::default()),
        }
    }

    /// Loads the cache for a view that can live without it: a corrupt
    /// file yields an empty cache and the error, to be reported.
    ///
    /// # Errors
    /// Only [`Error::Io`] (a file that exists but cannot be read).
    pub fn load_lenient(path: &Path) -> Result<(Cache, Option<Error>)> {
        match Cache::load(path) {
            Ok(c) => Ok((c, None)),
            Err(e @ Error::CacheCorrupt { .. }) => Ok((Cache::default(), Some(e))),
            Err(e) => Err(e),
        }
    }

    /// Parses cache bytes; `path` names the file in errors.
    ///
    /// # Errors
    /// [`Error::CacheCorrupt`].
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Cache> {
        let corrupt = |message: String| Error::CacheCorrupt {
            path: path.to_path_buf(),
            message,
        };
        // The common case in one pass (the hookscript reads this on every
        // start); the slow path below only explains a failure.
        if let Ok(cache) = serde_json::from_slice::<Cache>(bytes) {
            if readable(cache.schema) {
                return Ok(cache);
            }
        }
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(format!("not JSON (line {}): {e}", e.line())))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if u32::try_from(s).is_ok_and(readable) => {}
            Some(s) => {
                return Err(corrupt(format!(
                    "schema {s}, but this pve-cpuguard reads schemas {OLDEST_READABLE} to {SCHEMA}"
                )))
            }
            None => return Err(corrupt("no schema version".into())),
        }
        serde_json::from_value(value).map_err(|e| corrupt(format!("{e}")))
    }

    /// A node's record (fresh or stale).
    #[must_use]
    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.get(name)
    }

    /// The result of a refresh applied to this cache. Nodes not in
    /// `updates` are dropped (they left the cluster); a failed node keeps
    /// its previous record, marked stale.
    #[must_use]
    pub fn merge(&self, cluster: Option<String>, updates: &[Update], now: u64) -> Cache {
        let mut next = Cache {
            updated_at: now,
            cluster,
            ..Cache::default()
        };
        for u in updates {
            match u {
                Update::Scanned(rec) => {
                    if let Some(d) = self
                        .nodes
                        .get(&rec.name)
                        .and_then(|old| Drift::between(old, rec))
                    {
                        next.drift.push(d);
                    }
                    if let Some(a) = admission::next(
                        self.nodes.get(&rec.name),
                        rec,
                        self.admissions.get(&rec.name),
                        !self.nodes.is_empty(),
                        now,
                    ) {
                        next.admissions.insert(rec.name.clone(), a);
                    }
                    next.nodes.insert(rec.name.clone(), (**rec).clone());
                }
                Update::Failed {
                    name,
                    address,
                    error,
                } => {
                    if let Some(old) = self.nodes.get(name) {
                        let mut rec = old.clone();
                        rec.last_error = Some(error.clone());
                        rec.last_attempt_at = Some(now);
                        next.nodes.insert(name.clone(), rec);
                        if let Some(a) = self.admissions.get(name) {
                            next.admissions.insert(name.clone(), a.clone());
                        }
                    } else {
                        next.unscanned.insert(
                            name.clone(),
                            Unscanned {
                                name: name.clone(),
                                address: address.clone(),
                                error: error.clone(),
                                attempted_at: now,
                            },
                        );
                    }
                }
            }
        }
        next
    }

    /// This cache with one node's result applied and every other node kept
    /// (a refresh of one node, e.g. a migration target).
    #[must_use]
    pub fn with_update(&self, update: &Update, now: u64) -> Cache {
        let mut next = self.merge(self.cluster.clone(), std::slice::from_ref(update), now);
        next.coverage.clone_from(&self.coverage);
        let touched = match update {
            Update::Scanned(r) => r.name.as_str(),
            Update::Failed { name, .. } => name.as_str(),
        };
        for (name, rec) in &self.nodes {
            if name != touched {
                next.nodes
                    .entry(name.clone())
                    .or_insert_with(|| rec.clone());
                if let Some(a) = self.admissions.get(name) {
                    next.admissions.insert(name.clone(), a.clone());
                }
            }
        }
        for (name, u) in &self.unscanned {
            if name != touched && !next.nodes.contains_key(name) {
                next.unscanned
                    .entry(name.clone())
                    .or_insert_with(|| u.clone());
            }
        }
        next.updated_at = self.updated_at;
        next
    }

    /// Serializes (pretty JSON, trailing newline) in this version's format,
    /// so with schema [`SCHEMA`] whatever schema it was read with.
    #[must_use]
    pub fn to_json(&self) -> String {
        let upgraded;
        let current = if self.schema == SCHEMA {
            self
        } else {
            upgraded = Cache {
                schema: SCHEMA,
                ..self.clone()
            };
            &upgraded
        };
        let mut s = serde_json::to_string_pretty(current).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::record::tests::rec;
    use crate::cache::LazyCache;

    #[test]
    fn merge_keeps_failed_nodes_stale_and_finds_drift() {
        let mut prev = Cache::default();
        prev.nodes.insert("pve1".into(), rec("pve1", "fpu hle", 10));
        prev.nodes.insert("pve2".into(), rec("pve2", "fpu", 10));
        prev.nodes.insert("gone".into(), rec("gone", "fpu", 10));
        let next = prev.merge(
            Some("lab".into()),
            &[
                Update::Scanned(Box::new(rec("pve1", "fpu", 20))),
                Update::Failed {
                    name: "pve2".into(),
                    address: "10.0.0.2".into(),
                    error: "connect: refused".into(),
                },
                Update::Failed {
                    name: "pve3".into(),
                    address: "10.0.0.3".into(),
                    error: "timeout".into(),
                },
            ],
            20,
        );
        let pve2 = next.node("pve2").unwrap();
        assert!(pve2.last_refresh_failed());
        assert_eq!(pve2.scanned_at, 10, "data keeps its own age");
        assert_eq!(pve2.cpu.flags.as_str(), "fpu");
        assert_eq!(pve2.last_error.as_deref(), Some("connect: refused"));
        assert_eq!(next.unscanned["pve3"].error, "timeout");
        assert!(next.node("gone").is_none());
        assert_eq!(next.drift.len(), 1);
        assert_eq!(next.drift[0].message, "pve1 lost hle; level unchanged");
        // The next successful scan clears the stale mark.
        let again = next.merge(
            None,
            &[Update::Scanned(Box::new(rec("pve2", "fpu", 30)))],
            30,
        );
        assert!(!again.node("pve2").unwrap().last_refresh_failed());
    }

    #[test]
    fn round_trip_and_schema_checks() {
        let mut c = Cache::default();
        c.nodes.insert("pve1".into(), rec("pve1", "fpu sse", 1));
        let p = Path::new("c.json");
        assert_eq!(Cache::parse(c.to_json().as_bytes(), p).unwrap(), c);
        for bad in [
            "",
            "{",
            "[]",
            "{\"schema\": 99, \"nodes\": {}}",
            "{\"nodes\": {}}",
            "{\"schema\":1}",
        ] {
            let e = Cache::parse(bad.as_bytes(), p).unwrap_err();
            assert!(matches!(e, Error::CacheCorrupt { .. }), "{bad}: {e}");
        }
        let e = Cache::parse(b"{\"schema\": 99}", p).unwrap_err();
        assert!(e.to_string().contains("schema 99"), "{e}");
    }

    #[test]
    fn schema_1_caches_are_read_and_written_back_as_schema_2() {
        let mut c = Cache::default();
        c.nodes
            .insert("pve1".into(), rec("pve1", "fpu sse hle rtm", 1));
        let v2 = c.to_json();
        assert!(v2.contains("\"schema\": 2"), "{v2}");
        assert!(v2.contains("\"flags\": \"fpu hle rtm sse\""), "{v2}");
        // The same cache as pve-cpuguard 0.1 wrote it: lists.
        let mut value: serde_json::Value = serde_json::from_str(&v2).unwrap();
        value["schema"] = 1.into();
        value["nodes"]["pve1"]["flags"] = serde_json::json!(["fpu", "hle", "rtm", "sse"]);
        let v1 = serde_json::to_string(&value).unwrap();
        let p = Path::new("c.json");
        let read = Cache::parse(v1.as_bytes(), p).unwrap();
        assert_eq!(read.schema, 1);
        assert_eq!(read.nodes, c.nodes);
        assert_eq!(read.to_json(), v2, "written back in the current format");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.json");
        std::fs::write(&path, &v1).unwrap();
        let (lazy, problem) = LazyCache::load_lenient(&path).unwrap();
        assert!(problem.is_none(), "{problem:?}");
        assert_eq!(lazy.nodes["pve1"].record().unwrap(), c.nodes["pve1"]);
    }
}
