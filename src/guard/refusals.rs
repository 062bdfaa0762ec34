//! The last refusal on this node, kept in a tiny state file so that
//! `pve-cpuguard metrics` can expose when the guard last said no.
//!
//! `<state_dir>/last-refusal.json`, replaced atomically (an `O_EXCL`
//! temporary file + rename, `crate::fsutil::replace`) under an exclusive
//! lock on `last-refusal.lock`, so concurrent hooks never leave a torn file
//! or lose a count, and a link planted at either path is never followed.
//! The lock wait is bounded ([`LOCK_WAIT`]). Recording never fails a
//! decision: the caller ignores errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state file in `dir`.
#[must_use]
pub fn file(dir: &Path) -> PathBuf {
    dir.join("last-refusal.json")
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefusal {
    /// When (Unix seconds).
    pub at: u64,
    /// The VM.
    pub vmid: String,
    /// Target node.
    pub target: String,
    /// Source node of a migration.
    pub source: Option<String>,
    /// Refusals recorded on this node so far.
    pub count: u64,
}

/// How long a hook waits for another hook recording its refusal: the
/// hook's answer is already fixed, this only bounds the bookkeeping.
pub const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Reads the state; missing or unreadable (a FIFO, a directory) means none.
#[must_use]
pub fn read(dir: &Path) -> Option<LastRefusal> {
    let bytes = crate::fsutil::read_raw(&file(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Records a refusal.
///
/// # Errors
/// The directory or files cannot be written.
pub fn record(dir: &Path, vmid: &str, target: &str, source: Option<&str>, now: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let lock_path = dir.join("last-refusal.lock");
    let lock = crate::fsutil::open_lock(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    crate::fsutil::lock_within(
        &lock,
        &lock_path,
        LOCK_WAIT,
        "another hook recording a refusal",
    )?;
    let count = read(dir).map_or(0, |r| r.count);
    let state = LastRefusal {
        at: now,
        vmid: vmid.to_string(),
        target: target.to_string(),
        source: source.map(str::to_string),
        count: count + 1,
    };
    let text = serde_json::to_string(&state).unwrap_or_default();
    crate::fsutil::replace(&file(dir), text.as_bytes(), Some(0o644))
}

/// A refusal goes to the journal and becomes the last refusal (for
/// `metrics`); failing to write the state file never changes the answer.
pub fn log(state_dir: &Path, d: &crate::guard::decision::Decision) {
    crate::syslog::log(crate::syslog::Severity::Err, &d.one_line());
    let _ = record(
        state_dir,
        &d.vm.vmid,
        &d.target,
        d.source.as_deref(),
        crate::cache::now(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        record(dir.path(), "100", "pve2", Some("pve1"), 10).unwrap();
        record(dir.path(), "101", "pve2", None, 20).unwrap();
        let r = read(dir.path()).unwrap();
        assert_eq!(
            r,
            LastRefusal {
                at: 20,
                vmid: "101".into(),
                target: "pve2".into(),
                source: None,
                count: 2
            }
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".last-refusal")),
            "{names:?}"
        );
    }
}
