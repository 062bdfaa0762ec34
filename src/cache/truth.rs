//! The one definition of what a node can give a guest, used by every
//! command (scan, status, baseline, audit, check, hook, migrate, metrics,
//! inspect): QEMU's answer under KVM when that node's QEMU answered, else
//! the /proc/cpuinfo view. The other view never becomes a second answer;
//! where it disagrees it is a note beside the one answer.
//!
//! Building a [`Capability`] from a cache record is cache + CPU core, so it
//! lives here; the level is [`crate::cpu::level::of`] of that capability,
//! never of the other view.

use crate::cpu::capability::{Capability, Disagreement, View};
use crate::cpu::cpudata;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::flags;
use crate::cpu::level::{self, Level};
use crate::cpu::qemu_report::QemuReport;

use super::NodeRecord;

pub use crate::cpu::level::BELOW_FLOOR;

/// One node's answer, and which view decided it.
#[derive(Debug, Clone)]
pub struct Truth {
    /// What the verdict judges against.
    pub capability: Capability,
    /// The node's level, from `capability`.
    pub level: Level,
    /// Where the other view disagrees, and a failed QEMU probe.
    pub notes: Vec<String>,
}

impl Truth {
    /// `kvm`, `tcg` or `cpuinfo`: which view decided.
    #[must_use]
    pub fn view(&self) -> &'static str {
        view_name(&self.capability)
    }

    /// The level as every command prints it: the rung, or [`BELOW_FLOOR`].
    #[must_use]
    pub fn level_name(&self) -> &'static str {
        level_name(&self.level)
    }
}

/// `kvm`, `tcg` or `cpuinfo` for a capability.
#[must_use]
pub fn view_name(cap: &Capability) -> &'static str {
    match cap.view.as_str() {
        "qemu-kvm" => "kvm",
        "qemu-tcg" => "tcg",
        _ => "cpuinfo",
    }
}

/// The printed name of a level: below the floor is not `kvm64`.
#[must_use]
pub fn level_name(l: &Level) -> &'static str {
    level::display(l)
}

/// The capability of a node from its parts: QEMU's answer when there is
/// one (with the cpuinfo kept for names, phys-bits and notes), else the
/// cpuinfo view. Every capability the guard judges comes from here or
/// from [`NodeRecord::into_capability`], which calls it.
#[must_use]
pub fn capability(info: &CpuInfo, kvm: Option<&QemuReport>) -> Capability {
    match kvm {
        Some(view) => Capability::from_qemu_report(view, Some(info)),
        None => Capability::from_cpuinfo(info),
    }
}

/// The truth of a cached record.
#[must_use]
pub fn of_record(rec: &NodeRecord) -> Truth {
    let mut t = build(&rec.cpu, rec.kvm.as_ref());
    if let Some(e) = &rec.kvm_error {
        t.notes.push(probe_failed(e));
    }
    t
}

/// The truth of the local node, read now: its cached QEMU answer counts
/// only while /proc/cpuinfo still shows the flags it was recorded with (a
/// microcode or kernel change since then invalidates it).
#[must_use]
pub fn of_local(info: &CpuInfo, cached: Option<&NodeRecord>) -> Truth {
    let kvm = cached
        .filter(|r| same_flags(r, info))
        .and_then(|r| r.kvm.as_ref());
    let mut t = build(info, kvm);
    if let Some(e) = cached
        .filter(|r| same_flags(r, info) && r.kvm.is_none())
        .and_then(|r| r.kvm_error.as_ref())
    {
        t.notes.push(probe_failed(e));
    }
    t
}

/// Whether a record was taken from a host with exactly `info`'s flags.
#[must_use]
pub fn same_flags(rec: &NodeRecord, info: &CpuInfo) -> bool {
    // Word lists are sorted and distinct: equal text, equal sets.
    rec.cpu.flags == info.flags
}

/// The note for a QEMU probe that gave no answer.
#[must_use]
pub fn probe_failed(error: &str) -> String {
    format!(
        "QEMU probe failed ({}); judged from /proc/cpuinfo, which may show more than KVM can give",
        error.lines().next().unwrap_or("")
    )
}

fn build(info: &CpuInfo, kvm: Option<&QemuReport>) -> Truth {
    let capability = capability(info, kvm);
    let level = level::of(&capability);
    let notes = notes(info, &capability, &level);
    Truth {
        capability,
        level,
        notes,
    }
}

/// Where /proc/cpuinfo disagrees with the deciding QEMU answer (nothing
/// when the cpuinfo view decides): its level, and the features one view
/// shows and the other does not.
#[must_use]
pub fn notes(info: &CpuInfo, decided: &Capability, decided_level: &Level) -> Vec<String> {
    let View::QemuKvm(q) = &decided.view else {
        return Vec::new();
    };
    // No /proc/cpuinfo to compare (a record built from pvestatd's list).
    if info.flags.is_empty() {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let other = level::of(&Capability::from_cpuinfo(info));
    if level_name(&other) != level_name(decided_level) {
        notes.push(format!(
            "/proc/cpuinfo alone would say {}; QEMU {} under {} decides",
            level_name(&other),
            q.qemu_version,
            q.accel.label()
        ));
    }
    let all = cpudata::index().feature_names();
    let d = Disagreement::between(&flags::host_features(info), |f| decided.has(f), &all);
    notes.extend(
        d.notes(q.accel.label())
            .into_iter()
            .filter(|n| !n.starts_with("/proc/cpuinfo cannot show")),
    );
    notes
}

/// The cluster level: the highest rung the verdict accepts on every node
/// ([`level::highest_everywhere`]), [`BELOW_FLOOR`] when none does.
#[must_use]
pub fn cluster_level(caps: &[&Capability]) -> Option<&'static str> {
    if caps.is_empty() {
        return None;
    }
    Some(level::highest_everywhere(caps, |_| {}).unwrap_or(BELOW_FLOOR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::kvm_probe::{self, Accel};
    use std::path::Path;

    /// The nested EPYC of tests/data/qmp: cpuinfo says x86-64-v3, QEMU
    /// under KVM cannot give SSE3 (recorded). That machine runs KVM through
    /// an out-of-tree module and shows no `svm`; a Proxmox VE node with KVM
    /// shows it, so it is added here.
    fn epyc() -> (CpuInfo, QemuReport) {
        let mut info = crate::cpu::cpuinfo::parse(
            include_str!("../../tests/data/qmp/pvm-epyc-cpuinfo.txt"),
            Path::new("pvm-epyc-cpuinfo.txt"),
        )
        .unwrap();
        info.flags.insert("svm");
        let view = kvm_probe::interpret(
            include_bytes!("../../tests/data/qmp/qemu-7.2-pvm-epyc-kvm.jsonl"),
            b"",
            Accel::Kvm,
            "recorded",
        )
        .unwrap();
        (info, view)
    }

    #[test]
    fn qemus_answer_decides_and_cpuinfo_is_a_note() {
        let (info, view) = epyc();
        let rec = NodeRecord::new("pve1", "a", &info, None, 1).with_kvm(Some(Ok(view)));
        let t = of_record(&rec);
        assert_eq!((t.view(), t.level_name()), ("kvm", BELOW_FLOOR));
        assert_eq!(
            t.notes[0],
            "/proc/cpuinfo alone would say x86-64-v3; QEMU 7.2.22 under KVM decides"
        );
        // The stored level follows the same answer.
        assert!(rec.below_floor);
        // The local node keeps the cached answer while its flags are the same.
        assert_eq!(of_local(&info, Some(&rec)).level_name(), BELOW_FLOOR);
        let mut changed = info.clone();
        changed.flags.remove("pni");
        let t = of_local(&changed, Some(&rec));
        assert_eq!(
            t.view(),
            "cpuinfo",
            "a flag change invalidates QEMU's answer"
        );
    }

    #[test]
    fn a_failed_probe_leaves_cpuinfo_deciding_with_a_note() {
        let (info, _) = epyc();
        let rec = NodeRecord::new("pve1", "a", &info, None, 1)
            .with_kvm(Some(Err("Could not access KVM kernel module".into())));
        let t = of_record(&rec);
        assert_eq!((t.view(), t.level_name()), ("cpuinfo", "x86-64-v3"));
        assert_eq!(
            t.notes,
            [probe_failed("Could not access KVM kernel module")]
        );
    }

    #[test]
    fn one_node_below_the_floor_puts_the_cluster_below_it() {
        let (info, view) = epyc();
        let nested = capability(&info, Some(&view));
        let plain = capability(&info, None);
        assert_eq!(cluster_level(&[&plain]), Some("x86-64-v3"));
        assert_eq!(cluster_level(&[&plain, &nested]), Some(BELOW_FLOOR));
        assert_eq!(cluster_level(&[]), None);
    }
}
