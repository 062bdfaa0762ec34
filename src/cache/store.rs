//! The on-disk record of every node's CPU: what decisions read, so that no
//! decision ever waits on the network.
//!
//! One JSON file (default [`DEFAULT_PATH`]) with a schema version. Writers
//! take an exclusive lock (fs2) on a separate `<file>.lock` (never through a
//! link, waiting at most [`LOCK_WAIT`]), write a
//! temporary file beside the cache (`O_EXCL`, random name: see
//! `crate::fsutil`), fsync it, rename it over the cache and fsync the
//! directory: a reader sees the old file or the new one, never a
//! mix, and a crash at any point leaves the previous cache readable.
//! Readers take no lock and refuse a FIFO or device at the cache path
//! instead of blocking on it. A record dated in the future or ages ago is
//! flagged ([`time_problem`]). A corrupt or unknown-schema file is reported and
//! treated as empty; a writer moves it aside to `<file>.corrupt` before
//! replacing it, so nothing is lost silently.
//!
//! A node that fails during a refresh keeps its last good record, marked
//! stale with the error; a node whose flags or level changed is reported as
//! [`Drift`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::cpu::capability::{Capability, HostFlags};
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::level;
use crate::cpu::qemu_report::QemuReport;
use crate::cpu::word_list::WordList;
use crate::error::{Error, Result};

/// The schema this version writes. 2 stores `flags` and `bugs` as one
/// space-separated string each instead of a list (a quarter of the parsing
/// work for the hookscript); nothing else changed.
pub const SCHEMA: u32 = 2;

/// The oldest schema this version still reads.
pub const OLDEST_READABLE: u32 = 1;

fn readable(schema: u32) -> bool {
    (OLDEST_READABLE..=SCHEMA).contains(&schema)
}

/// Where the cache lives on a Proxmox VE node.
pub const DEFAULT_PATH: &str = "/var/cache/pve-cpuguard/cluster.json";

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How far in the future a record may be dated before it counts as clock
/// skew (the scanning node's clock and this one's differ a little).
pub const CLOCK_SKEW: u64 = 300;

/// A record older than this many staleness limits (`cache_max_age`) is
/// "ancient": not merely stale but a sign that refreshes stopped long ago
/// (or that it is dated 1970).
pub const ANCIENT_FACTOR: u64 = 10;

/// Why a record's date cannot be trusted, if it cannot: dated in the
/// future (clock skew) or older than [`ANCIENT_FACTOR`] times the staleness
/// limit `max_age` (seconds).
#[must_use]
pub fn time_problem(scanned_at: u64, now: u64, max_age: u64) -> Option<String> {
    if scanned_at > now.saturating_add(CLOCK_SKEW) {
        return Some(format!(
            "record dated {} in the future (clock skew between nodes?); its age is unknown\nnote: check the clocks (`timedatectl`) on the node that scanned and on this one, then run `pve-cpuguard scan`",
            human_age(scanned_at - now)
        ));
    }
    let limit = max_age.saturating_mul(ANCIENT_FACTOR).max(1);
    let age = now.saturating_sub(scanned_at);
    (age > limit).then(|| {
        format!(
            "record scanned {} ago, more than {ANCIENT_FACTOR} times the staleness limit ({}); refreshes seem to have stopped\nnote: run `pve-cpuguard scan` and check `systemctl status pve-cpuguard-refresh.timer`",
            human_age(age),
            human_age(max_age)
        )
    })
}

/// One node's last good scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Address it was reached at (or `local`).
    pub address: String,
    /// CPUID vendor.
    pub vendor: String,
    /// Marketing name.
    pub model_name: String,
    /// CPU family.
    pub family: Option<u32>,
    /// CPU model.
    pub model: Option<u32>,
    /// Stepping.
    pub stepping: Option<u32>,
    /// Microcode revision.
    pub microcode: Option<String>,
    /// Flags common to all processors, Linux spelling (stored as one
    /// space-separated string since schema 2).
    pub flags: WordList,
    /// Bugs, when the kernel printed them (stored like `flags`).
    pub bugs: Option<WordList>,
    /// Processor blocks read.
    #[serde(default)]
    pub processors: usize,
    /// Level on Proxmox VE's ladder when scanned.
    pub level: String,
    /// True when even the lowest rung (`kvm64`) is not fully met.
    #[serde(default)]
    pub below_floor: bool,
    /// Physical address bits.
    pub phys_bits: Option<u32>,
    /// `uname -r`, if read.
    pub kernel: Option<String>,
    /// When this data was read (Unix seconds).
    pub scanned_at: u64,
    /// The error of the latest refresh that failed to reach the node; the
    /// record is then stale.
    pub last_error: Option<String>,
    /// When that failed attempt was made.
    #[serde(default)]
    pub last_attempt_at: Option<u64>,
    /// What QEMU on the node said KVM can give a guest (`scan --probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm: Option<QemuReport>,
    /// Why the QEMU probe gave no answer, if it was tried and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm_error: Option<String>,
    /// Every processor block showed the same CPU facts when read
    /// ([`CpuInfo::uniform`]); absent (false) in older records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uniform: bool,
    /// The QEMU binary that gave `kvm`, as `<size> <mtime ns> <path>`
    /// ([`crate::cache::current::qemu_identity`]); absent when the probe
    /// ran elsewhere or in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<String>,
    /// Where the data came from: `pmxcfs` (the node's published record),
    /// `ssh` or `local`; absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The snippets storages whose directory holds the guard's hook file
    /// on this node (`None`: not said — records of older versions, or read
    /// over SSH; never taken for "missing").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_storages: Option<Vec<String>>,
}

impl NodeRecord {
    /// A fresh record from parsed cpuinfo.
    #[must_use]
    pub fn new(
        name: &str,
        address: &str,
        info: &CpuInfo,
        kernel: Option<String>,
        now: u64,
    ) -> Self {
        let lvl = level::of(&Capability::from_cpuinfo(info));
        NodeRecord {
            name: name.to_string(),
            address: address.to_string(),
            vendor: info.vendor.clone(),
            model_name: info.model_name.clone(),
            family: info.family,
            model: info.model,
            stepping: info.stepping,
            microcode: info.microcode.clone(),
            flags: info.flags.iter().collect(),
            bugs: info.bugs.as_ref().map(|b| b.iter().collect()),
            processors: info.processors,
            level: lvl.name.to_string(),
            below_floor: !lvl.floor_met,
            phys_bits: info.phys_bits,
            kernel,
            scanned_at: now,
            last_error: None,
            last_attempt_at: None,
            kvm: None,
            kvm_error: None,
            uniform: info.uniform,
            qemu: None,
            source: None,
            hook_storages: None,
        }
    }

    /// Records QEMU's answer (or why there is none); the stored level is
    /// then the one [`crate::cache::truth`] gives (QEMU's answer decides).
    #[must_use]
    pub fn with_kvm(mut self, kvm: Option<std::result::Result<QemuReport, String>>) -> Self {
        match kvm {
            Some(Ok(view)) => self.kvm = Some(view),
            Some(Err(e)) => self.kvm_error = Some(e),
            None => {}
        }
        if self.kvm.is_some() {
            let lvl = level::of(&self.capability());
            self.level = lvl.name.to_string();
            self.below_floor = !lvl.floor_met;
        }
        self
    }

    /// The stored facts as [`CpuInfo`], exactly as the scan parsed them.
    #[must_use]
    pub fn cpuinfo(&self) -> CpuInfo {
        CpuInfo {
            vendor: self.vendor.clone(),
            model_name: self.model_name.clone(),
            family: self.family,
            model: self.model,
            stepping: self.stepping,
            microcode: self.microcode.clone(),
            phys_bits: self.phys_bits,
            flags: self.flags.iter().map(str::to_string).collect(),
            bugs: self
                .bugs
                .as_ref()
                .map(|b| b.iter().map(str::to_string).collect::<BTreeSet<_>>()),
            processors: self.processors,
            uniform: self.uniform,
        }
    }

    /// The node's [`Capability`]: QEMU's answer under KVM when the scan
    /// got one, else derived from [`NodeRecord::cpuinfo`].
    #[must_use]
    pub fn capability(&self) -> Capability {
        self.clone().into_capability()
    }

    /// [`NodeRecord::capability`], consuming the record (no copies of the
    /// flag lists: this runs for every node a hookscript decision looks at).
    #[must_use]
    pub fn into_capability(self) -> Capability {
        if let Some(view) = &self.kvm {
            return super::truth::capability(&self.cpuinfo(), Some(view));
        }
        Capability::from_flags(
            self.vendor,
            self.model_name,
            self.family.zip(self.model),
            self.phys_bits,
            HostFlags {
                flags: self.flags,
                bugs: self.bugs,
            },
        )
    }

    /// Seconds since the data was read.
    #[must_use]
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.scanned_at)
    }

    /// Whether the latest refresh failed to reach the node.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.last_error.is_some()
    }
}

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
    /// Where the data came from (`pmxcfs`, `ssh`, `local`), if recorded.
    #[serde(default)]
    pub source: Option<String>,
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

/// A node that never answered (no data at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unscanned {
    /// Node name.
    pub name: String,
    /// Address tried.
    pub address: String,
    /// Why it failed.
    pub error: String,
    /// When.
    pub attempted_at: u64,
}

/// A change found by a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Node name.
    pub node: String,
    /// Flags it no longer has.
    pub lost: Vec<String>,
    /// Flags it newly has.
    pub gained: Vec<String>,
    /// Level before.
    pub level_before: String,
    /// Level now.
    pub level_after: String,
    /// CPU model before, when it changed.
    #[serde(default)]
    pub model_before: Option<String>,
    /// The human sentence, e.g. `pve2 lost hle, rtm; level unchanged`.
    pub message: String,
}

impl Drift {
    /// Compares an old and a new record; `None` when flags, level and
    /// model are unchanged.
    #[must_use]
    pub fn between(old: &NodeRecord, new: &NodeRecord) -> Option<Drift> {
        let before: BTreeSet<&str> = old.flags.iter().collect();
        let after: BTreeSet<&str> = new.flags.iter().collect();
        let lost: Vec<String> = before
            .difference(&after)
            .map(|s| (*s).to_string())
            .collect();
        let gained: Vec<String> = after
            .difference(&before)
            .map(|s| (*s).to_string())
            .collect();
        let model_changed = old.model_name != new.model_name;
        if lost.is_empty() && gained.is_empty() && old.level == new.level && !model_changed {
            return None;
        }
        let mut parts = Vec::new();
        if !lost.is_empty() {
            parts.push(format!("lost {}", lost.join(", ")));
        }
        if !gained.is_empty() {
            parts.push(format!("gained {}", gained.join(", ")));
        }
        let mut message = format!("{} {}", new.name, parts.join(", "));
        if model_changed {
            message = format!(
                "{} CPU changed from {} to {}{}{}",
                new.name,
                old.model_name,
                new.model_name,
                if parts.is_empty() { "" } else { ", " },
                parts.join(", ")
            );
        }
        if old.level == new.level {
            message.push_str("; level unchanged");
        } else {
            message.push_str(&format!("; level {} -> {}", old.level, new.level));
        }
        Some(Drift {
            node: new.name.clone(),
            lost,
            gained,
            level_before: old.level.clone(),
            level_after: new.level.clone(),
            model_before: model_changed.then(|| old.model_name.clone()),
            message,
        })
    }
}

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

/// The lock file that serializes writers of `path`.
#[must_use]
pub fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, ".lock")
}

/// Where a corrupt cache is moved before it is replaced.
#[must_use]
pub fn corrupt_path(path: &Path) -> PathBuf {
    with_suffix(path, ".corrupt")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// How long a writer waits for another writer's lock before giving up
/// with an error naming the lock file.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Whether `name` is a temporary file a writer of `path` left behind: this
/// version's (`.cluster.json.XXXXXX.tmp`, see [`crate::fsutil::stage`]) or
/// an older one's (`.cluster.json.tmp.PID`).
fn is_leftover(name: &str, path: &Path) -> bool {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::fsutil::is_temp_of(name, &file) || name.starts_with(&format!(".{file}.tmp."))
}

/// An exclusive writer: holds the lock until dropped.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    lock: File,
}

/// A new cache written to a temporary file, not yet visible.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::NamedTempFile,
}

impl Staged {
    /// The temporary file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.temp.path()
    }
}

impl Writer {
    /// Takes the writers' lock (waiting at most [`LOCK_WAIT`] for another
    /// writer to finish), creating the cache directory if needed, and
    /// removes temporary files left by a writer that died.
    ///
    /// # Errors
    /// The directory or lock file cannot be created (a symlink or a FIFO at
    /// the lock path is refused), or the lock is still held after the wait.
    pub fn lock(path: &Path) -> Result<Writer> {
        Writer::lock_within(path, LOCK_WAIT)
    }

    /// [`Writer::lock`] with another bound on the wait.
    ///
    /// # Errors
    /// As [`Writer::lock`].
    pub fn lock_within(path: &Path, wait: Duration) -> Result<Writer> {
        let dir = parent(path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lp = lock_path(path);
        let lock = crate::fsutil::open_lock(&lp).map_err(|e| Error::Lock {
            path: lp.clone(),
            source: e,
        })?;
        crate::fsutil::lock_within(&lock, &lp, wait, "another pve-cpuguard scan or migrate")?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if is_leftover(&e.file_name().to_string_lossy(), path) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Writer {
            path: path.to_path_buf(),
            lock,
        })
    }

    /// The current cache, under the lock. A corrupt file is moved aside to
    /// `<file>.corrupt` and reported; the cache is then empty.
    ///
    /// # Errors
    /// I/O errors.
    pub fn load(&self) -> Result<(Cache, Option<Error>)> {
        let (cache, problem) = Cache::load_lenient(&self.path)?;
        if problem.is_some() {
            let aside = corrupt_path(&self.path);
            std::fs::rename(&self.path, &aside).map_err(|e| Error::io(&aside, e))?;
        }
        Ok((cache, problem))
    }

    /// Writes `cache` to a new temporary file beside the cache (created
    /// with `O_EXCL` and a random name, so a planted link there is never
    /// followed) and fsyncs it.
    ///
    /// # Errors
    /// I/O errors (the temporary file is removed).
    pub fn stage(&self, cache: &Cache) -> Result<Staged> {
        let temp = crate::fsutil::stage(&self.path, cache.to_json().as_bytes(), Some(0o644))
            .map_err(|e| Error::io(parent(&self.path), e))?;
        Ok(Staged { temp })
    }

    /// Makes a staged cache the cache: rename, then fsync the directory.
    ///
    /// # Errors
    /// I/O errors (the old cache then stays in place).
    pub fn commit(&self, staged: Staged) -> Result<()> {
        crate::fsutil::commit(staged.temp, &self.path).map_err(|e| Error::io(&self.path, e))
    }

    /// [`Writer::stage`] then [`Writer::commit`].
    ///
    /// # Errors
    /// I/O errors.
    pub fn store(&self, cache: &Cache) -> Result<()> {
        let staged = self.stage(cache)?;
        self.commit(staged)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.lock);
    }
}

use crate::fsutil::parent;

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
#[must_use]
pub fn human_age(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(flags: &str) -> CpuInfo {
        CpuInfo {
            vendor: "GenuineIntel".into(),
            model_name: "Test CPU".into(),
            family: Some(6),
            model: Some(85),
            stepping: Some(7),
            microcode: Some("0x5003".into()),
            phys_bits: Some(46),
            flags: flags.split_whitespace().map(String::from).collect(),
            bugs: Some(["spectre_v1".to_string()].into()),
            processors: 4,
            uniform: true,
        }
    }

    fn rec(name: &str, flags: &str, at: u64) -> NodeRecord {
        NodeRecord::new(name, "10.0.0.1", &info(flags), Some("6.8.12".into()), at)
    }

    #[test]
    fn record_rebuilds_its_cpuinfo() {
        let i = info("fpu sse sse2 hle rtm");
        let r = NodeRecord::new("pve1", "a", &i, None, 5);
        assert_eq!(r.cpuinfo(), i);
        assert_eq!(r.capability(), Capability::from_cpuinfo(&i));
        assert_eq!(r.flags.as_str(), "fpu hle rtm sse sse2", "sorted");
        assert_eq!(r.age(65), 60);
    }

    #[test]
    fn drift_message() {
        let old = rec("pve2", "fpu sse hle rtm", 1);
        let new = rec("pve2", "fpu sse", 2);
        let d = Drift::between(&old, &new).unwrap();
        assert_eq!(d.message, "pve2 lost hle, rtm; level unchanged");
        assert_eq!(d.lost, ["hle", "rtm"]);
        assert!(Drift::between(&new, &rec("pve2", "fpu sse", 3)).is_none());
        let d = Drift::between(&new, &old).unwrap();
        assert_eq!(d.message, "pve2 gained hle, rtm; level unchanged");
    }

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
        assert!(pve2.is_stale());
        assert_eq!(pve2.scanned_at, 10, "data keeps its own age");
        assert_eq!(pve2.flags.as_str(), "fpu");
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
        assert!(!again.node("pve2").unwrap().is_stale());
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

    #[test]
    fn writer_replaces_atomically_and_sets_corrupt_files_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cluster.json");
        assert_eq!(
            Cache::load(&path).unwrap(),
            Cache::default(),
            "missing = empty"
        );
        let w = Writer::lock(&path).unwrap();
        let mut c = Cache::default();
        c.nodes.insert("pve1".into(), rec("pve1", "fpu", 1));
        w.store(&c).unwrap();
        drop(w);
        assert_eq!(Cache::load(&path).unwrap(), c);
        std::fs::write(&path, "{garbage").unwrap();
        let (lenient, problem) = Cache::load_lenient(&path).unwrap();
        assert!(lenient.nodes.is_empty());
        assert!(problem.unwrap().to_string().contains("not JSON"));
        let w = Writer::lock(&path).unwrap();
        let (loaded, problem) = w.load().unwrap();
        assert!(loaded.nodes.is_empty() && problem.is_some());
        assert_eq!(
            std::fs::read_to_string(corrupt_path(&path)).unwrap(),
            "{garbage"
        );
        assert!(!path.exists());
        w.store(&c).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(names.is_empty(), "no temp files left: {names:?}");
    }

    #[test]
    fn future_and_ancient_records_are_flagged() {
        let now = 1_000_000;
        assert_eq!(time_problem(now, now, 7200), None);
        assert_eq!(time_problem(now + CLOCK_SKEW, now, 7200), None);
        let e = time_problem(now + 3600, now, 7200).unwrap();
        assert!(e.starts_with("record dated 1h 0m in the future"), "{e}");
        assert_eq!(time_problem(now - 72_000, now, 7200), None);
        let e = time_problem(0, now, 7200).unwrap();
        assert!(
            e.starts_with(
                "record scanned 11d 13h ago, more than 10 times the staleness limit (2h 0m)"
            ),
            "{e}"
        );
        assert!(time_problem(5, u64::MAX, 0).is_some(), "no overflow");
    }

    #[test]
    fn human_ages() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(125), "2m 5s");
        assert_eq!(human_age(7500), "2h 5m");
        assert_eq!(human_age(90000), "1d 1h");
    }
}
