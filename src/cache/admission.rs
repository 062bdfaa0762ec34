//! Admission: a node whose record first appears, or whose capability
//! dropped (a BIOS setting, a microcode update, a new CPU), may no longer
//! start or receive VMs that ran elsewhere in the cluster.
//!
//! How it is known: the cache keeps the previous record of every node, so
//! a refresh ([`super::Cache::merge`]) compares each new record with the
//! one it replaces ([`super::Drift`]). A node is *admitted* when
//! - it had no record before while other nodes had one (a new node; the
//!   first scan of an empty cache admits nobody), or
//! - it lost a flag, or its level fell on the ladder.
//!
//! The [`Admission`] keeps the record from before the drop (none for a new
//! node), so that `audit` can tell the VMs that could start there before
//! and cannot now. It stays in the cache for [`KEEP_SECS`] after the
//! refresh that found it (the daily audit and the metrics see it), and
//! ends sooner once the node has every flag and the level of that earlier
//! record again. A node that leaves the cluster takes its admission along.

use serde::{Deserialize, Serialize};

use super::drift::Drift;
use super::record::NodeRecord;
use crate::cpu::level::LADDER;

/// How long an admission stays in the cache: 7 days.
pub const KEEP_SECS: u64 = 7 * 24 * 3600;

/// A node whose capability appeared or dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// Node name.
    pub node: String,
    /// When the refresh found it (Unix seconds).
    pub since: u64,
    /// The record before the drop; `None` for a new node.
    #[serde(default)]
    pub previous: Option<NodeRecord>,
    /// The human sentence, e.g. `pve2 lost avx512f; level x86-64-v4 ->
    /// x86-64-v3` or `pve4 is new`.
    pub message: String,
}

impl Admission {
    /// Whether this is a new node (no earlier record).
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.previous.is_none()
    }
}

fn rank(level: &str) -> Option<usize> {
    LADDER.iter().position(|l| *l == level)
}

/// Whether `drift` is a drop: a lost flag or a lower level.
#[must_use]
pub fn is_drop(drift: &Drift) -> bool {
    !drift.lost.is_empty()
        || matches!(
            (rank(&drift.level_before), rank(&drift.level_after)),
            (Some(b), Some(a)) if a < b
        )
}

/// Whether `now` has every flag and at least the level of `before`.
#[must_use]
pub fn recovered(before: &NodeRecord, now: &NodeRecord) -> bool {
    let has: std::collections::BTreeSet<&str> = now.cpu.flags.iter().collect();
    before.cpu.flags.iter().all(|f| has.contains(f)) && rank(&now.level) >= rank(&before.level)
}

/// The admission a refresh finds for `new`, given the node's earlier
/// record (`old`), its standing admission (`standing`), whether the cache
/// had any record before (`had_any`), and the time.
#[must_use]
pub fn next(
    old: Option<&NodeRecord>,
    new: &NodeRecord,
    standing: Option<&Admission>,
    had_any: bool,
    now: u64,
) -> Option<Admission> {
    let Some(old) = old else {
        return had_any.then(|| Admission {
            node: new.name.clone(),
            since: now,
            previous: None,
            message: format!("{} is new (level {})", new.name, new.level),
        });
    };
    if let Some(d) = Drift::between(old, new).filter(is_drop) {
        // The earliest record before the drops stays the reference.
        let previous = match standing {
            Some(s) => s.previous.clone(),
            None => Some(old.clone()),
        };
        return Some(Admission {
            node: new.name.clone(),
            since: now,
            previous,
            message: d.message,
        });
    }
    let s = standing?;
    if now.saturating_sub(s.since) >= KEEP_SECS {
        return None;
    }
    if s.previous.as_ref().is_some_and(|p| recovered(p, new)) {
        return None;
    }
    Some(s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::record::tests::rec;

    #[test]
    fn a_lost_flag_admits_and_a_recovery_ends_it() {
        let old = rec("pve2", "fpu sse hle rtm", 1);
        let new = rec("pve2", "fpu sse", 2);
        let a = next(Some(&old), &new, None, true, 10).unwrap();
        assert_eq!(a.message, "pve2 lost hle, rtm; level unchanged");
        assert_eq!(a.previous.as_ref(), Some(&old));
        assert!(!a.is_new());
        // Unchanged: it stays; a second drop keeps the first reference.
        assert_eq!(next(Some(&new), &new, Some(&a), true, 20), Some(a.clone()));
        let newer = rec("pve2", "fpu", 3);
        let b = next(Some(&new), &newer, Some(&a), true, 30).unwrap();
        assert_eq!(b.previous.as_ref(), Some(&old));
        assert_eq!(b.since, 30);
        // Back to the old flags: over.
        assert_eq!(next(Some(&newer), &old, Some(&b), true, 40), None);
        // Gaining flags is no drop.
        assert_eq!(next(Some(&new), &old, None, true, 50), None);
    }

    #[test]
    fn a_new_node_is_admitted_unless_the_cache_was_empty() {
        let new = rec("pve4", "fpu sse", 2);
        let a = next(None, &new, None, true, 10).unwrap();
        assert!(a.is_new());
        assert!(a.message.starts_with("pve4 is new"), "{}", a.message);
        assert_eq!(next(None, &new, None, false, 10), None);
        // It ends after KEEP_SECS.
        assert_eq!(
            next(Some(&new), &new, Some(&a), true, 10 + KEEP_SECS - 1),
            Some(a.clone())
        );
        assert_eq!(next(Some(&new), &new, Some(&a), true, 10 + KEEP_SECS), None);
    }
}
