//! A node's level on Proxmox VE's ladder of generic CPU types.
//!
//! `kvm64` < `x86-64-v2` < `x86-64-v2-AES` < `x86-64-v3` < `x86-64-v4`,
//! each judged with the very same verdict as a VM of that type (so the
//! level never disagrees with what the guard allows). `x86-64-v1` is not a
//! Proxmox CPU type: the floor is `kvm64`.

use crate::cpu::capability::Capability;
use crate::cpu::custom_models::CustomModels;
use once_cell::sync::Lazy;

use crate::cpu::models::BUILTINS;
use crate::cpu::requirement::{self, Requirement};
use crate::cpu::verdict::{self, Outcome, Question};

/// The ladder, lowest first: `kvm64`, then the built-in types of
/// [`crate::cpu::models::BUILTINS`].
pub const LADDER: [&str; 5] = [
    "kvm64",
    BUILTINS[0].name,
    BUILTINS[1].name,
    BUILTINS[2].name,
    BUILTINS[3].name,
];

// The ladder is `kvm64` under the built-in types, in their order: one more
// built-in type must also be one more rung.
const _: () = assert!(BUILTINS.len() == LADDER.len() - 1);

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
    /// `false` when even `kvm64` is not fully supported (then `floor` says why).
    pub floor_met: bool,
    /// Where the node stands against the floor; anything but
    /// [`Floor::Met`] means `name` is no level the node can run.
    pub floor: Floor,
    /// The next rung and the flags it lacks, if there is a next rung.
    pub next: Option<(&'static str, Vec<String>)>,
}

/// Where a node stands against the ladder's floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Floor {
    /// `kvm64` starts there: the node is on the ladder.
    Met,
    /// Not even `kvm64` starts: the node lacks these flags.
    Missing(Vec<String>),
    /// No usable KVM (/proc/cpuinfo lists neither `vmx` nor `svm`): no KVM
    /// guest starts there, only `kvm: 0` (TCG) ones.
    NoKvm,
    /// /proc/cpuinfo names no x86 vendor: the node cannot be judged.
    UnknownVendor(String),
}

impl Floor {
    /// Whether the node is on the ladder.
    #[must_use]
    pub fn is_met(&self) -> bool {
        *self == Floor::Met
    }

    /// Stable identifier for JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Floor::Met => "met",
            Floor::Missing(_) => "below-floor",
            Floor::NoKvm => "no-kvm",
            Floor::UnknownVendor(_) => "unknown-vendor",
        }
    }
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Floor::Met => f.write_str("kvm64 starts here"),
            Floor::Missing(flags) => write!(
                f,
                "below the floor: not even kvm64 starts here (missing flags: {})",
                flags.join(", ")
            ),
            Floor::NoKvm => f.write_str(
                "below the floor: no usable KVM (/proc/cpuinfo lists neither vmx nor svm), so no KVM guest starts here",
            ),
            Floor::UnknownVendor(v) => write!(
                f,
                "unknown: /proc/cpuinfo names no x86 CPU vendor (vendor_id '{v}')"
            ),
        }
    }
}

/// The node's place against the floor, without judging the upper rungs.
#[must_use]
pub fn floor(cap: &Capability) -> Floor {
    if !cap.x86_vendor() {
        return Floor::UnknownVendor(cap.vendor.clone());
    }
    if cap.kvm_module().is_none() {
        return Floor::NoKvm;
    }
    let v = verdict::judge(&RUNGS[0], cap, Question::Start);
    if v.outcome == Outcome::Incompatible {
        Floor::Missing(v.missing_flags())
    } else {
        Floor::Met
    }
}

/// Whether the node is below the floor (no KVM, or not even `kvm64`), or
/// cannot be judged; `None` when it is on the ladder.
#[must_use]
pub fn below_floor(cap: &Capability) -> Option<Floor> {
    Some(floor(cap)).filter(|f| !f.is_met())
}

/// Computes the level of one node: the highest rung it can run. The rungs
/// are not strictly nested (`kvm64` needs `vme`, the `qemu64`-based
/// x86-64-vN types do not), so every rung is judged. A node without KVM or
/// without an x86 vendor runs no rung: it gets the floor's name with
/// `floor` saying why, and no next rung.
#[must_use]
pub fn of(cap: &Capability) -> Level {
    let off_ladder = if !cap.x86_vendor() {
        Some(Floor::UnknownVendor(cap.vendor.clone()))
    } else if cap.kvm_module().is_none() {
        Some(Floor::NoKvm)
    } else {
        None
    };
    if let Some(floor) = off_ladder {
        return Level {
            name: LADDER[0],
            floor_met: false,
            floor,
            next: None,
        };
    }
    let missing: Vec<Option<Vec<String>>> = RUNGS
        .iter()
        .map(|req| {
            let v = verdict::judge(req, cap, Question::Start);
            (v.outcome == Outcome::Incompatible).then(|| v.missing_flags())
        })
        .collect();
    let best = missing.iter().rposition(Option::is_none);
    let next_index = best.map_or(0, |i| i + 1);
    Level {
        name: LADDER[best.unwrap_or(0)],
        floor_met: missing[0].is_none(),
        floor: match &missing[0] {
            None => Floor::Met,
            Some(flags) => Floor::Missing(flags.clone()),
        },
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
    highest_everywhere_by(caps, |rung, _| {
        let mut req = RUNGS[LADDER.iter().position(|r| *r == rung).unwrap_or(0)].clone();
        adjust(&mut req);
        req
    })
}

/// [`highest_everywhere`] with the requirement of each rung on each node
/// given by `requirement` (a VM's own configuration with `cpu:` set to the
/// rung, as [`crate::cpu::launch`] builds it for that node).
#[must_use]
pub fn highest_everywhere_by(
    caps: &[&Capability],
    requirement: impl Fn(&'static str, &Capability) -> Requirement,
) -> Option<&'static str> {
    if caps.is_empty() {
        return None;
    }
    LADDER.iter().rev().copied().find(|rung| {
        caps.iter().all(|c| {
            verdict::judge(&requirement(rung, c), c, Question::Start).outcome == Outcome::Compatible
        })
    })
}
