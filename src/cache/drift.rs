//! What a refresh finds: [`Drift`] (a node whose flags, level or model
//! changed) and [`Unscanned`] (a node never reached).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::record::NodeRecord;

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

/// Up to this many flags a drift message names them all (a changed CPU
/// can lose hundreds; `lost` and `gained` keep them all).
const NAMED: usize = 16;

/// A flag list for the message: whole, or its first [`NAMED`] and a count.
fn some(flags: &[String]) -> String {
    if flags.len() <= NAMED {
        return flags.join(", ");
    }
    format!(
        "{} and {} more (`pve-cpuguard status --output json` lists them)",
        flags[..NAMED].join(", "),
        flags.len() - NAMED
    )
}

impl Drift {
    /// Compares an old and a new record; `None` when flags, level and
    /// model are unchanged.
    #[must_use]
    pub fn between(old: &NodeRecord, new: &NodeRecord) -> Option<Drift> {
        let before: BTreeSet<&str> = old.cpu.flags.iter().collect();
        let after: BTreeSet<&str> = new.cpu.flags.iter().collect();
        let lost: Vec<String> = before
            .difference(&after)
            .map(|s| (*s).to_string())
            .collect();
        let gained: Vec<String> = after
            .difference(&before)
            .map(|s| (*s).to_string())
            .collect();
        let model_changed = old.cpu.model_name != new.cpu.model_name;
        if lost.is_empty() && gained.is_empty() && old.level == new.level && !model_changed {
            return None;
        }
        let mut parts = Vec::new();
        if !lost.is_empty() {
            parts.push(format!("lost {}", some(&lost)));
        }
        if !gained.is_empty() {
            parts.push(format!("gained {}", some(&gained)));
        }
        let mut message = format!("{} {}", new.name, parts.join(", "));
        if model_changed {
            message = format!(
                "{} CPU changed from {} to {}{}{}",
                new.name,
                old.cpu.model_name,
                new.cpu.model_name,
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
            model_before: model_changed.then(|| old.cpu.model_name.clone()),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::record::tests::rec;

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
}
