//! ProxLB tags that keep the load balancer on nodes a VM's CPU can be
//! live-migrated to (issue 25).
//!
//! ProxLB (credativ/ProxLB 2.2, `proxlb/models/tags.py`) reads each guest's
//! `tags:` (split on `;`): `plb_pin_<node>` limits its moves to the pinned
//! nodes, `plb_ignore_<anything>` keeps it where it is. It moves guests
//! live, through the migrate API, so the hookscript would refuse a move to
//! a node the CPU cannot take; these tags keep ProxLB from asking.
//!
//! Pure: for each VM, the tags it should carry from the audit's live cells
//! (by the same policy as the hook), and the tag list to write, keeping
//! every tag that is not ours. Which tags are ours is recorded by the
//! command (a state file in /etc/pve): only those are ever removed.

use std::collections::{BTreeMap, BTreeSet};

use crate::guard::audit::{Audit, Cell};
use crate::guard::decision::{self as guard, Rules};
use crate::pve::paths::VmId;

/// Pins for the nodes a VM can live-migrate to.
pub const PIN_PREFIX: &str = "plb_pin_";

/// ProxLB's "never move" prefix.
pub const IGNORE_PREFIX: &str = "plb_ignore_";

/// The tag a VM gets when it can live-migrate to no other node.
pub const IGNORE: &str = "plb_ignore_cpuguard";

/// Whether `tag` is a valid Proxmox VE tag (`[a-z0-9_][a-z0-9_+.-]*`,
/// pve-common `PVE::JSONSchema` `pve-tag`).
#[must_use]
pub fn valid_tag(tag: &str) -> bool {
    let mut c = tag.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_lowercase() || f.is_ascii_digit() || f == '_')
        && c.all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '+' | '.' | '-')
        })
}

/// A config's `tags:` value as a list, in order, without duplicates
/// (Proxmox VE separates them with `;`, and accepts `,` and spaces).
#[must_use]
pub fn split(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in value
        .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// Whether `tag` is one ProxLB places by.
fn placing(tag: &str) -> bool {
    tag.starts_with(PIN_PREFIX) || tag.starts_with(IGNORE_PREFIX)
}

/// One VM's input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmTags {
    /// Its node.
    pub node: String,
    /// Its `tags:` now.
    pub tags: Vec<String>,
    /// The tags of those we wrote earlier (from the state file).
    pub ours: BTreeSet<String>,
    /// Nodes it can live-migrate to from its node (its node included);
    /// `None` when it cannot be judged (left as it is).
    pub live: Option<BTreeSet<String>>,
}

/// What to do with one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its node (where `qm set` must run).
    pub node: String,
    /// The tags ours should be.
    pub want: BTreeSet<String>,
    /// The whole tag list to write, or `None` when it is current.
    pub write: Option<Vec<String>>,
    /// Why it gets no tags of ours, if so.
    pub note: Option<String>,
}

/// The tags ours should be for a VM that live-migrates to `live` among
/// `all` nodes: none when it can go everywhere, [`IGNORE`] when nowhere
/// but its own node, else one pin per node (node names that are not valid
/// tags are left out: the second value names them).
#[must_use]
pub fn wanted(live: &BTreeSet<String>, all: &BTreeSet<String>) -> (BTreeSet<String>, Vec<String>) {
    if live == all {
        return (BTreeSet::new(), Vec::new());
    }
    if live.len() <= 1 {
        return (BTreeSet::from([IGNORE.to_string()]), Vec::new());
    }
    let mut bad = Vec::new();
    let mut pins = BTreeSet::new();
    for n in live {
        let t = format!("{PIN_PREFIX}{n}");
        if valid_tag(&t) {
            pins.insert(t);
        } else {
            bad.push(n.clone());
        }
    }
    (pins, bad)
}

/// Plans one VM: keeps every tag that is not ours, drops ours that are no
/// longer right, adds the missing. A VM the administrator placed with
/// ProxLB tags of their own gets none of ours (their pins and ours would
/// add up).
#[must_use]
pub fn plan_vm(vm: &VmTags, all: &BTreeSet<String>) -> Change {
    let keep = |want: BTreeSet<String>, note: Option<String>| Change {
        node: vm.node.clone(),
        want,
        write: None,
        note,
    };
    let Some(live) = &vm.live else {
        return keep(
            vm.ours.clone(),
            Some("cannot be judged: its tags are left as they are".into()),
        );
    };
    let admin: Vec<&String> = vm
        .tags
        .iter()
        .filter(|t| placing(t) && !vm.ours.contains(*t))
        .collect();
    let (want, bad) = if admin.is_empty() {
        wanted(live, all)
    } else {
        (BTreeSet::new(), Vec::new())
    };
    let mut tags: Vec<String> = vm
        .tags
        .iter()
        .filter(|t| !vm.ours.contains(*t) || want.contains(*t))
        .cloned()
        .collect();
    for t in &want {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let note = if !admin.is_empty() {
        Some(format!(
            "placed by the administrator's ProxLB tags ({}): none of ours added",
            admin
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(";")
        ))
    } else if !bad.is_empty() {
        Some(format!(
            "node names that are no valid tag left out: {}",
            bad.join(", ")
        ))
    } else {
        None
    };
    Change {
        node: vm.node.clone(),
        want,
        write: (tags != vm.tags).then_some(tags),
        note,
    }
}

/// Every VM of the audit with the nodes it can live-migrate to from its
/// node, by the hook's policy (`None`: cannot be judged).
#[must_use]
pub fn live_sets(audit: &Audit<'_>, rules: Rules) -> BTreeMap<VmId, Option<BTreeSet<String>>> {
    let fleet = audit.fleet;
    let ok = |c: Cell<'_>| match c {
        Cell::Yes => true,
        Cell::No(_) => false,
        Cell::Unknown(Some(v)) => guard::allows(v, rules),
        Cell::Unknown(None) => rules.policy != crate::conf::config::Policy::Strict,
    };
    audit
        .vms
        .iter()
        .map(|a| {
            let set = (a.error.is_none() && !a.template && a.owner.is_some()).then(|| {
                (0..fleet.nodes.len())
                    .filter(|&n| Some(n) == a.owner || ok(audit.live_cell(a, n)))
                    .map(|n| fleet.nodes[n].name.clone())
                    .collect()
            });
            (a.vmid, set)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn vm(tags: &str, ours: &[&str], live: &[&str]) -> VmTags {
        VmTags {
            node: "a".into(),
            tags: split(tags),
            ours: set(ours),
            live: Some(set(live)),
        }
    }

    #[test]
    fn pins_are_added_keeping_other_tags_and_a_second_plan_writes_nothing() {
        let all = set(&["a", "b", "c"]);
        let c = plan_vm(&vm("prod;web", &[], &["a", "b"]), &all);
        let w = c.write.unwrap();
        assert_eq!(w, ["prod", "web", "plb_pin_a", "plb_pin_b"]);
        let again = plan_vm(
            &VmTags {
                tags: w,
                ours: c.want,
                ..vm("", &[], &["a", "b"])
            },
            &all,
        );
        assert_eq!(again.write, None);
    }

    #[test]
    fn only_our_pins_are_removed_and_nowhere_is_ignore() {
        let all = set(&["a", "b", "c"]);
        // b no longer takes it: our pins go, its only node left: ignore.
        let c = plan_vm(
            &vm("x;plb_pin_a;plb_pin_b", &["plb_pin_a", "plb_pin_b"], &["a"]),
            &all,
        );
        assert_eq!(c.write.unwrap(), ["x", "plb_ignore_cpuguard"]);
        // Everywhere: none of ours.
        let c = plan_vm(
            &vm(
                "x;plb_ignore_cpuguard",
                &["plb_ignore_cpuguard"],
                &["a", "b", "c"],
            ),
            &all,
        );
        assert_eq!(c.write.unwrap(), ["x"]);
        // The administrator's own pin: nothing of ours, theirs kept.
        let c = plan_vm(&vm("plb_pin_c", &[], &["a"]), &all);
        assert_eq!(c.write, None);
        assert!(c.note.unwrap().contains("plb_pin_c"));
    }

    #[test]
    fn tags_are_read_and_checked_as_proxmox_does() {
        assert_eq!(split("a;b,c d;;a"), ["a", "b", "c", "d"]);
        assert!(valid_tag("plb_pin_pve-1.x"));
        assert!(!valid_tag("plb_pin_PVE1"));
        assert!(!valid_tag("-x"));
        let (want, bad) = wanted(&set(&["a", "B"]), &set(&["a", "B", "c"]));
        assert_eq!(want, set(&["plb_pin_a"]));
        assert_eq!(bad, ["B"]);
    }
}
