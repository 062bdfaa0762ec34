//! A node's level on Proxmox VE's ladder of generic CPU types.
//!
//! `kvm64` < `x86-64-v2` < `x86-64-v2-AES` < `x86-64-v3` < `x86-64-v4`,
//! each judged with the very same verdict as a VM of that type (so the
//! level never disagrees with what the guard allows). `x86-64-v1` is not a
//! Proxmox CPU type: the floor is `kvm64`.

use crate::capability::Capability;
use crate::custom_models::CustomModels;
use crate::requirement;
use crate::verdict::{self, Mode, Outcome};

/// The ladder, lowest first.
pub const LADDER: [&str; 5] = [
    "kvm64",
    "x86-64-v2",
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
];

/// A node's level and what keeps it from the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Highest rung whose every flag the node has (`kvm64` at the floor).
    pub name: &'static str,
    /// `false` when even `kvm64` is not fully supported (then `missing` says why).
    pub floor_met: bool,
    /// The next rung and the flags it lacks, if there is a next rung.
    pub next: Option<(&'static str, Vec<String>)>,
}

/// Computes the level of one node.
#[must_use]
pub fn of(cap: &Capability) -> Level {
    let none = CustomModels::default();
    let mut reached: Option<usize> = None;
    let mut next = None;
    for (i, rung) in LADDER.iter().enumerate() {
        let req = requirement::from_cpu_value(rung, &none);
        let v = verdict::judge(&req, cap, Mode::Start);
        if v.outcome == Outcome::Incompatible {
            next = Some((*rung, v.missing_flags()));
            break;
        }
        reached = Some(i);
    }
    Level {
        name: LADDER[reached.unwrap_or(0)],
        floor_met: reached.is_some(),
        next,
    }
}

/// The cluster baseline: the lowest level among nodes.
#[must_use]
pub fn lowest<'a>(levels: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    levels
        .into_iter()
        .filter_map(|l| LADDER.iter().position(|r| *r == l))
        .min()
        .map(|i| LADDER[i])
}
