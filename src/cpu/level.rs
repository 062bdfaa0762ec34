//! A node's level on Proxmox VE's ladder of generic CPU types.
//!
//! `kvm64` < `x86-64-v2` < `x86-64-v2-AES` < `x86-64-v3` < `x86-64-v4`,
//! each judged with the very same verdict as a VM of that type (so the
//! level never disagrees with what the guard allows). `x86-64-v1` is not a
//! Proxmox CPU type: the floor is `kvm64`.

use crate::cpu::capability::Capability;
use crate::cpu::custom_models::CustomModels;
use once_cell::sync::Lazy;

use crate::cpu::requirement::{self, Requirement};
use crate::cpu::verdict::{self, Mode, Outcome};

/// The ladder, lowest first.
pub const LADDER: [&str; 5] = [
    "kvm64",
    "x86-64-v2",
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
];

/// The ladder's requirements, resolved once.
static RUNGS: Lazy<Vec<Requirement>> = Lazy::new(|| {
    let none = CustomModels::default();
    LADDER
        .iter()
        .map(|rung| requirement::from_cpu_value(rung, &none))
        .collect()
});

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

/// Computes the level of one node: the highest rung it can run. The rungs
/// are not strictly nested (`kvm64` needs `vme`, the `qemu64`-based
/// x86-64-vN types do not), so every rung is judged.
#[must_use]
pub fn of(cap: &Capability) -> Level {
    let missing: Vec<Option<Vec<String>>> = RUNGS
        .iter()
        .map(|req| {
            let v = verdict::judge(req, cap, Mode::Start);
            (v.outcome == Outcome::Incompatible).then(|| v.missing_flags())
        })
        .collect();
    let best = missing.iter().rposition(Option::is_none);
    let next_index = best.map_or(0, |i| i + 1);
    Level {
        name: LADDER[best.unwrap_or(0)],
        floor_met: missing[0].is_none(),
        next: LADDER
            .get(next_index)
            .map(|rung| (*rung, missing[next_index].clone().unwrap_or_default())),
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

/// What is printed for a node that cannot start even `kvm64` (the lowest
/// Proxmox VE type): it has no level on the ladder.
pub const BELOW_FLOOR: &str = "below-kvm64";

/// The printed name of a level: below the floor is not `kvm64`.
#[must_use]
pub fn display(l: &Level) -> &'static str {
    if l.floor_met {
        l.name
    } else {
        BELOW_FLOOR
    }
}

/// The highest rung the verdict accepts on every one of `caps` (the
/// requirement of each rung adjusted by `adjust`, e.g. for 1 GiB huge
/// pages); `None` when not even `kvm64` starts everywhere. This is the
/// cluster level and the only type recommended "for every node": the
/// verdict itself, not a comparison of level names, decides.
#[must_use]
pub fn highest_everywhere(
    caps: &[&Capability],
    adjust: impl Fn(&mut Requirement),
) -> Option<&'static str> {
    if caps.is_empty() {
        return None;
    }
    (0..LADDER.len()).rev().find_map(|i| {
        let mut req = RUNGS[i].clone();
        adjust(&mut req);
        caps.iter()
            .all(|c| verdict::judge(&req, c, Mode::Start).outcome == Outcome::Compatible)
            .then_some(LADDER[i])
    })
}
