//! The refusals on this node, for `pve-cpuguard metrics`: how many, and the
//! last one.
//!
//! The count is `<state_dir>/refusals.tally`: every refusal appends one
//! byte (a newline) to it with `O_APPEND` (`crate::fsutil::append`), so the
//! count is the file's size (`wc -l` says the same) and its modification
//! time is when the last counted refusal was recorded. No refusal waits
//! for another to be counted: the kernel serialises the appends, and none
//! is lost however many hooks refuse at once (issue 21: a read-modify-write
//! of one JSON file under a lock waited for at most 0.5 s dropped 23 to 80
//! of 200 concurrent refusals). A refusal is not counted only when the
//! append itself fails (a full or read-only disk, a link or a FIFO planted
//! at the path) or does not return before the hook's recording bound (a
//! hung file system); the caller then says so on stderr and in the
//! journal. The file grows by one byte per refusal; removing it resets the
//! counter (Prometheus sees a counter reset).
//!
//! The details of the last refusal (VM, nodes, time) are
//! `last-refusal.json`, replaced atomically (an `O_EXCL` temporary file +
//! rename, `crate::fsutil::replace`) under an exclusive lock on
//! `last-refusal.lock` waited for at most [`LOCK_WAIT`], and never by an
//! older refusal's. They are informational: when the lock cannot be had in
//! time, that refusal's details are not kept, its count is. A link planted
//! at any of these paths is never followed.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The details file in `dir`.
#[must_use]
pub fn file(dir: &Path) -> PathBuf {
    dir.join("last-refusal.json")
}

/// The tally in `dir`: one byte per refusal.
#[must_use]
pub fn tally(dir: &Path) -> PathBuf {
    dir.join("refusals.tally")
}

/// The details of one refusal.
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
}

/// What `metrics` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Refusals counted on this node.
    pub count: u64,
    /// When the last one was recorded (Unix seconds; 0: never).
    pub last_at: u64,
    /// The last refusal whose details were kept.
    pub last: Option<LastRefusal>,
}

/// How long a refusal waits for another refusal's details to be written:
/// the hook's answer is already fixed and counted, this only bounds the
/// bookkeeping.
pub const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Reads the state; a missing or unreadable file (a FIFO, a directory, a
/// link) counts as none.
#[must_use]
pub fn read(dir: &Path) -> Refusals {
    let last: Option<LastRefusal> = crate::fsutil::read_raw(&file(dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // Not followed: a link there is not what the hook counts into.
    let (count, tally_at) = std::fs::symlink_metadata(tally(dir))
        .ok()
        .filter(|m| m.file_type().is_file() && m.len() > 0)
        .map_or((0, 0), |m| {
            let at = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            (m.len(), at)
        });
    Refusals {
        count,
        last_at: tally_at.max(last.as_ref().map_or(0, |l| l.at)),
        last,
    }
}

/// What recording one refusal did.
#[derive(Debug)]
pub struct Recorded {
    /// Why it was not counted; `None` when it was.
    pub not_counted: Option<Error>,
    /// Why its details were not kept; `None` when they were (or a newer
    /// refusal's were already there).
    pub details_not_kept: Option<Error>,
}

/// Records a refusal: counts it (then calls `counted`), then keeps its
/// details.
#[must_use]
pub fn record(
    dir: &Path,
    vmid: &str,
    target: &str,
    source: Option<&str>,
    now: u64,
    counted: impl FnOnce(),
) -> Recorded {
    if let Err(e) = std::fs::create_dir_all(dir) {
        let again = std::io::Error::new(e.kind(), e.to_string());
        return Recorded {
            not_counted: Some(Error::io(dir, e)),
            details_not_kept: Some(Error::io(dir, again)),
        };
    }
    let path = tally(dir);
    let not_counted = crate::fsutil::append(&path, b"\n", 0o644)
        .err()
        .map(|e| Error::io(&path, e));
    if not_counted.is_none() {
        counted();
    }
    let details = LastRefusal {
        at: now,
        vmid: vmid.to_string(),
        target: target.to_string(),
        source: source.map(str::to_string),
    };
    Recorded {
        not_counted,
        details_not_kept: keep_details(dir, &details).err(),
    }
}

/// Replaces the details file with `details` unless it holds a newer
/// refusal.
fn keep_details(dir: &Path, details: &LastRefusal) -> Result<()> {
    let lock_path = dir.join("last-refusal.lock");
    let lock = crate::fsutil::open_lock(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    crate::fsutil::lock_within(
        &lock,
        &lock_path,
        LOCK_WAIT,
        "another hook recording a refusal",
    )?;
    if read(dir).last.is_some_and(|old| old.at > details.at) {
        return Ok(());
    }
    let text = serde_json::to_string(details).unwrap_or_default();
    crate::fsutil::replace(&file(dir), text.as_bytes(), Some(0o644))
}

/// Records a refusal of VM `vmid` on `target` (see [`record`]; `counted`
/// is called once it is counted) and, when it could not be counted, logs
/// that to the journal and returns the warning for the caller's stderr.
/// Recording never changes the answer.
#[must_use]
pub fn keep(
    state_dir: &Path,
    vmid: &str,
    target: &str,
    source: Option<&str>,
    counted: impl FnOnce(),
) -> Option<String> {
    let r = record(
        state_dir,
        vmid,
        target,
        source,
        crate::cache::now(),
        counted,
    );
    if let Some(e) = &r.details_not_kept {
        crate::syslog::log(
            crate::syslog::Severity::Notice,
            &format!("VM {vmid}: the refusal's details were not kept: {e}"),
        );
    }
    let e = r.not_counted?;
    let msg = format!("VM {vmid}: the refusal was not counted: {e}");
    crate::syslog::log(crate::syslog::Severity::Warning, &msg);
    Some(msg)
}

/// A refusal goes to the journal and is recorded ([`keep`]); the warning,
/// if it could not be counted, is returned for the caller's stderr.
#[must_use]
pub fn log(
    state_dir: &Path,
    d: &crate::guard::decision::Decision,
    counted: impl FnOnce(),
) -> Option<String> {
    crate::syslog::log(crate::syslog::Severity::Err, &d.one_line());
    keep(
        state_dir,
        &d.vm.vmid,
        &d.target,
        d.source.as_deref(),
        counted,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_keeps_the_newest_details() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Refusals::default());
        for (vmid, at) in [("100", 10), ("101", 30), ("102", 20)] {
            let mut counted = false;
            let r = record(dir.path(), vmid, "pve2", Some("pve1"), at, || {
                counted = true
            });
            assert!(counted);
            assert!(
                r.not_counted.is_none() && r.details_not_kept.is_none(),
                "{r:?}"
            );
        }
        let r = read(dir.path());
        assert_eq!(r.count, 3);
        assert_eq!(
            r.last,
            Some(LastRefusal {
                at: 30,
                vmid: "101".into(),
                target: "pve2".into(),
                source: Some("pve1".into()),
            })
        );
        // The tally's time: now, later than any of the made-up times.
        assert!(r.last_at >= crate::cache::now() - 60, "{r:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".last-refusal")),
            "{names:?}"
        );
    }

    #[test]
    fn a_held_lock_costs_the_details_never_the_count() {
        use fs2::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let held = crate::fsutil::open_lock(&dir.path().join("last-refusal.lock")).unwrap();
        held.lock_exclusive().unwrap();
        let r = record(dir.path(), "100", "pve2", None, 10, || ());
        assert!(r.not_counted.is_none(), "{r:?}");
        assert!(r
            .details_not_kept
            .is_some_and(|e| e.to_string().contains("another hook")),);
        assert_eq!(read(dir.path()).count, 1);
        assert_eq!(read(dir.path()).last, None);
    }

    #[test]
    fn a_link_at_the_tally_is_not_counted_into_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "").unwrap();
        std::os::unix::fs::symlink(&victim, tally(dir.path())).unwrap();
        let mut counted = false;
        let r = record(dir.path(), "100", "pve2", None, 10, || counted = true);
        assert!(!counted);
        let e = r.not_counted.unwrap().to_string();
        assert!(
            e.contains("refusals.tally") && e.contains("symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"");
        assert_eq!(read(dir.path()).count, 0);
    }
}
