//! The cache as a decision reads it, lazily: every record's head (name,
//! vendor, level, date, last error, source) up front, the rest of a record
//! only for the nodes a decision looks at. This is the hookscript's path.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::drift::Unscanned;
use super::record::NodeRecord;
use super::store::{readable, Cache};
use crate::error::{Error, Result};

/// What a decision needs of a record before deciding whether to read the
/// rest of it.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeHead {
    /// Node name.
    pub name: String,
    /// CPUID vendor.
    pub vendor: String,
    /// Level at the scan.
    pub level: String,
    /// When it was read.
    pub scanned_at: u64,
    /// The latest refresh's failure, if it failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When that failed refresh was attempted.
    #[serde(default)]
    pub last_attempt_at: Option<u64>,
    /// Where the data came from (`pmxcfs`, `ssh`, `local`), if recorded.
    #[serde(default)]
    pub source: Option<String>,
}

impl NodeHead {
    /// How fresh the record is ([`super::Freshness`]), from its head alone.
    #[must_use]
    pub fn freshness(&self, now: u64, max_age: u64) -> super::Freshness {
        super::Freshness::of(
            self.scanned_at,
            self.last_error.as_deref(),
            self.last_attempt_at,
            now,
            max_age,
        )
    }
}

/// One record of a [`LazyCache`]: its head, and the rest as raw JSON.
#[derive(Debug, Clone)]
pub struct LazyNode {
    /// The fields read up front.
    pub head: NodeHead,
    /// The whole record, parsed on demand.
    pub raw: Box<serde_json::value::RawValue>,
}

impl LazyNode {
    /// The whole record.
    ///
    /// # Errors
    /// A record that is not a valid node record.
    pub fn record(&self) -> std::result::Result<NodeRecord, serde_json::Error> {
        serde_json::from_str(self.raw.get())
    }
}

/// The cache as a decision reads it: every record's head now, the rest of
/// a record only when the decision looks at that node. (The hookscript runs
/// on every VM start; an allowed live migration looks at two nodes.)
#[derive(Debug, Clone, Default)]
pub struct LazyCache {
    /// Records by name.
    pub nodes: BTreeMap<String, LazyNode>,
    /// Nodes never reached.
    pub unscanned: BTreeMap<String, Unscanned>,
}

#[derive(Deserialize)]
struct LazyFile {
    schema: u32,
    #[serde(default)]
    nodes: BTreeMap<String, Box<serde_json::value::RawValue>>,
    #[serde(default)]
    unscanned: BTreeMap<String, Unscanned>,
}

impl LazyCache {
    /// Like [`Cache::load_lenient`]: a missing file is empty, a corrupt one
    /// is empty plus the error to report.
    ///
    /// # Errors
    /// Only a file that exists but cannot be read.
    pub fn load_lenient(path: &Path) -> Result<(LazyCache, Option<Error>)> {
        let Some(bytes) = crate::fsutil::read_optional(path)? else {
            return Ok((LazyCache::default(), None));
        };
        let lazy = serde_json::from_slice::<LazyFile>(&bytes)
            .ok()
            .filter(|f| readable(f.schema))
            .and_then(|f| {
                let mut nodes = BTreeMap::new();
                for (name, raw) in f.nodes {
                    let head: NodeHead = serde_json::from_str(raw.get()).ok()?;
                    nodes.insert(name, LazyNode { head, raw });
                }
                Some(LazyCache {
                    nodes,
                    unscanned: f.unscanned,
                })
            });
        match lazy {
            Some(c) => Ok((c, None)),
            // The full parser words the error.
            None => match Cache::parse(&bytes, path) {
                Err(e) => Ok((LazyCache::default(), Some(e))),
                Ok(_) => Ok((
                    LazyCache::default(),
                    Some(Error::CacheCorrupt {
                        path: path.to_path_buf(),
                        message: "a node record is malformed".into(),
                    }),
                )),
            },
        }
    }
}
