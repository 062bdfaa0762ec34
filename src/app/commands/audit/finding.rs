//! The findings in words, shared by the text, JSON and HTML renderings
//! of `audit`.

use std::collections::HashMap;

use crate::cpu::verdict::Verdict;
use crate::guard::audit::{Audit, Cell, Finding, VmAudit};

/// The names of the nodes at these fleet indices.
pub(super) fn names<'a>(a: &'a Audit<'_>, idx: &[usize]) -> Vec<&'a str> {
    idx.iter()
        .map(|&i| a.fleet.nodes[i].name.as_str())
        .collect()
}

/// The nodes a VM cannot start on, grouped by reason:
/// `pve2, pve6 (missing flags: …); pve3 (…)`. The same for every VM with
/// the same requirement, so it is built once per requirement.
pub(super) type WhyCache = std::cell::RefCell<HashMap<usize, std::rc::Rc<str>>>;

fn cannot_start_text(
    a: &Audit<'_>,
    v: &VmAudit,
    idx: &[usize],
    cache: &WhyCache,
) -> std::rc::Rc<str> {
    let key = a.row_key(v).0;
    if let Some(s) = cache.borrow().get(&key) {
        return s.clone();
    }
    let mut groups: Vec<(&Verdict, Vec<&str>)> = Vec::new();
    for &i in idx {
        if let Cell::No(verdict) = a.start_cell(v, i) {
            let name = a.fleet.nodes[i].name.as_str();
            match groups.iter_mut().find(|(p, _)| std::ptr::eq(*p, verdict)) {
                Some((_, names)) => names.push(name),
                None => groups.push((verdict, vec![name])),
            }
        }
    }
    let text: std::rc::Rc<str> = groups
        .iter()
        .map(|(verdict, names)| format!("{} ({})", names.join(", "), verdict.summary()))
        .collect::<Vec<_>>()
        .join("; ")
        .into();
    cache.borrow_mut().insert(key, text.clone());
    text
}

/// What [`finding_text`] and a finding's nodes read of the VM, so that
/// VMs alike in it share one finding (the JSON states each once). Keep in
/// step with `finding_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum FindingKey<'a> {
    /// Its CPU and which nodes refuse its start (its start row).
    StartRow(&'a str, usize),
    /// Its CPU alone (the cluster's count of CPUs is the same for all).
    Cpu(&'static str, &'a str),
    /// Why its CPU cannot be judged.
    Why(&'a str),
    /// Its CPU and the nodes named.
    Nodes(&'static str, &'a str, &'a [usize]),
    /// Its VMID (and node) are in the sentence: its own.
    Vm(&'static str, u32),
}

pub(super) fn finding_key<'a>(a: &Audit<'_>, v: &'a VmAudit, f: &'a Finding) -> FindingKey<'a> {
    match f {
        Finding::AboveBaseline(_) => FindingKey::StartRow(&v.cpu, a.row_key(v).0),
        Finding::HostInMixedCluster(_) => FindingKey::Cpu(f.code(), &v.cpu),
        Finding::CannotJudge(why) => FindingKey::Why(why),
        Finding::NodeAdmission(idx) => FindingKey::Nodes(f.code(), &v.cpu, idx),
        Finding::HaCannotRecover(_)
        | Finding::NoGuardHookscript(_)
        | Finding::PendingCannotStart => FindingKey::Vm(f.code(), v.vmid.0),
    }
}

pub(super) fn finding_text(a: &Audit<'_>, v: &VmAudit, f: &Finding, cache: &WhyCache) -> String {
    let why = |idx: &[usize]| cannot_start_text(a, v, idx, cache);
    match f {
        Finding::AboveBaseline(idx) => format!(
            "CPU '{}' is above the cluster baseline ({}): it cannot start on {}",
            v.cpu,
            a.baseline.unwrap_or("unknown"),
            why(idx)
        ),
        Finding::HostInMixedCluster(k) => format!(
            "CPU '{}' passes each node's own CPU through, and the nodes have {k} different CPUs: a live migration between them can crash the guest",
            v.cpu
        ),
        Finding::HaCannotRecover(idx) => format!(
            "HA-managed (vm:{}): if its node fails, HA may recover it onto {}, where it cannot start",
            v.vmid,
            names(a, idx).join(", ")
        ),
        Finding::NoGuardHookscript(None) => format!(
            "no hookscript: the guard does not check its starts and migrations (run `pve-cpuguard attach {}` on {})",
            v.vmid, v.node
        ),
        Finding::NoGuardHookscript(Some(h)) => format!(
            "hookscript '{h}' is not the guard's (run `pve-cpuguard attach {}` on {}; '{h}' keeps running, chained behind the guard)",
            v.vmid, v.node
        ),
        Finding::CannotJudge(why) => format!(
            "cannot judge its CPU: {}",
            crate::error::shorten_quotes(why)
        ),
        Finding::PendingCannotStart => format!(
            "a pending change (`[PENDING]`, applied at its next cold start) gives it CPU '{}', which its own node {} cannot start; revert it with `qm set {} --revert cpu` or fix the value",
            crate::error::shorten_quotes(&v.cpu),
            v.node,
            v.vmid
        ),
        Finding::NodeAdmission(idx) => format!(
            "CPU '{}' can no longer start on, or live-migrate to, {}: new there, or its CPU \
             capability dropped (see `pve-cpuguard status`)",
            crate::error::shorten_quotes(&v.cpu),
            names(a, idx).join(", ")
        ),
    }
}
