//! `audit`'s default text: a summary a person reads in one screen whatever
//! the cluster's size (issue 23) — the counts, the nodes grouped by level,
//! then the findings grouped by finding, CPU and node set, each group with
//! a few VMIDs and its fix. The full per-VM report is `--all` (or the
//! filters `--vm`, `--on`, `--finding`), in `text.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::app::commands::node_list;
use crate::app::paint;
use crate::cache;
use crate::guard::audit::{Audit, Finding, Suggestion, VmAudit};
use crate::guard::coverage::{self, Coverage};
use crate::guard::scope;

/// Groups shown in all, shared out among the kinds of finding present
/// (each gets at least one, its largest) before the rest is only counted.
const MAX_GROUPS: usize = 12;
/// VMIDs named per group.
const EXAMPLES: usize = 6;
/// Node names named per list.
const NAMES: usize = 5;

/// The summary, coverage last.
pub(super) fn render(a: &Audit<'_>, cov: &Coverage) -> String {
    let mut s = String::new();
    let (by, risk) = a.counts();
    let flagged = a.vms.iter().filter(|v| !v.findings.is_empty()).count();
    let _ = writeln!(s, "{} VMs, {flagged} flagged, {risk} at risk", a.vms.len());
    nodes(&mut s, a);
    findings(&mut s, a, &by);
    let differing = a.running_cpu_differs();
    if differing > 0 {
        let _ = writeln!(
            s,
            "\n{differing} running VMs have another CPU than their configuration gives at the \
             next cold start (`audit --all` lists them)."
        );
    }
    let _ = writeln!(
        s,
        "\nEvery VM: `pve-cpuguard audit --all`; some: --vm VMID, --on NODE, --finding CODE."
    );
    s.push('\n');
    s.push_str(&coverage::text(cov));
    crate::app::output::wrap(&s, crate::app::output::WIDTH)
}

/// `a, b, c, d, e (+7)`.
fn some<S: AsRef<str>>(names: &[S], max: usize) -> String {
    let shown: Vec<&str> = names.iter().take(max).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if names.len() > max {
        let _ = write!(out, " (+{})", names.len() - max);
    }
    out
}

/// `baseline x86-64-v3`, or, while some node has no data, which nodes
/// and what holds on the others (no baseline is claimed).
pub(super) fn baseline_text(a: &Audit<'_>) -> String {
    let missing = a.fleet.without_data();
    if missing.is_empty() {
        return format!("baseline {}", a.baseline.unwrap_or("unknown"));
    }
    scope::withheld(
        "no baseline",
        &missing,
        a.baseline,
        a.fleet.nodes.len() - missing.len(),
    )
}

/// The nodes, one line per level, one for nodes without usable data, one
/// per kind of staleness, then what to do about it.
fn nodes(s: &mut String, a: &Audit<'_>) {
    let vendors = a.fleet.vendors();
    let _ = writeln!(
        s,
        "\nNodes: {} ({}; CPU vendors: {})",
        a.fleet.nodes.len(),
        baseline_text(a),
        if vendors.is_empty() {
            "unknown".to_string()
        } else {
            vendors.into_iter().collect::<Vec<_>>().join(", ")
        }
    );
    let mut by_level: BTreeMap<usize, (&str, Vec<&str>)> = BTreeMap::new();
    // Stale nodes with data, by why (the words of `status`).
    let mut stale: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &a.fleet.nodes {
        let Some(level) = n.level() else { continue };
        let rank = crate::guard::audit::level_rank(level).map_or(usize::MAX, |r| 100 - r);
        by_level
            .entry(rank)
            .or_insert((level, Vec::new()))
            .1
            .push(n.name.as_str());
        if let Some(kind) = n.freshness.kind() {
            stale
                .entry(kind)
                .or_default()
                .push(match n.freshness.age() {
                    Some(age) => format!("{} ({} old)", n.name, cache::human_age(age)),
                    None => n.name.clone(),
                });
        }
    }
    for (level, names) in by_level.values() {
        let _ = writeln!(s, "  {level:14} {:3}  {}", names.len(), some(names, NAMES));
    }
    let missing = a.fleet.without_data();
    if !missing.is_empty() {
        let _ = writeln!(
            s,
            "  {} {:3}  {}",
            // Padded before it is coloured: escapes have no width.
            paint::stale(&format!("{:14}", "never scanned")),
            missing.len(),
            some(&missing, NAMES)
        );
    }
    for (kind, names) in &stale {
        let _ = writeln!(
            s,
            "  {} {}, {kind}: {}",
            names.len(),
            paint::stale("stale"),
            some(names, NAMES)
        );
    }
    for h in node_list::hints(a.fleet.nodes.iter().filter(|n| n.is_stale())) {
        let _ = writeln!(s, "  note: {h}");
    }
    for p in &a.fleet.problems {
        // A problem's own `note:` line stays inside the indented block.
        let p = p.replace('\n', "\n  ");
        let _ = writeln!(s, "  {} cache: {p}", paint::warning("warning:"));
    }
}

/// One group of VMs that share a finding, a CPU, the nodes concerned and
/// the fix.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct GroupKey {
    /// The finding's place in [`Finding::CODES`].
    pub(super) order: usize,
    /// Whether the finding is a risk ([`Finding::is_risk`]).
    pub(super) risk: bool,
    /// What they share, in words, the code first.
    pub(super) text: String,
    /// Their fix, in words with `commands` in backticks.
    pub(super) fix: Option<String>,
}

/// The findings' groups with their VMIDs: in [`Finding::CODES`] order, the
/// largest groups of each finding first.
pub(super) fn groups(a: &Audit<'_>) -> Vec<(GroupKey, Vec<u32>)> {
    // A group's words depend on the finding, the CPU and the suggestion
    // only: each such triple is put in words once (10 000 VMs share a few
    // hundred), and triples that read alike are one group.
    let mut slot_of: HashMap<(&Finding, &str, Option<&Suggestion>), usize> = HashMap::new();
    let mut slots: BTreeMap<GroupKey, usize> = BTreeMap::new();
    let mut vmids: Vec<Vec<u32>> = Vec::new();
    for v in &a.vms {
        for f in &v.findings {
            let slot = *slot_of
                .entry((f, v.cpu.as_str(), v.suggestion.as_ref()))
                .or_insert_with(|| {
                    let order = Finding::CODES
                        .iter()
                        .position(|c| *c == f.code())
                        .unwrap_or(99);
                    let key = GroupKey {
                        order,
                        risk: f.is_risk(),
                        text: group_text(a, v, f),
                        fix: fix_text(v, f),
                    };
                    *slots.entry(key).or_insert_with(|| {
                        vmids.push(Vec::new());
                        vmids.len() - 1
                    })
                });
            vmids[slot].push(v.vmid.0);
        }
    }
    let mut ordered: Vec<(GroupKey, Vec<u32>)> = slots
        .into_iter()
        .map(|(key, slot)| (key, std::mem::take(&mut vmids[slot])))
        .collect();
    ordered.sort_by(|x, y| x.0.order.cmp(&y.0.order).then(y.1.len().cmp(&x.1.len())));
    ordered
}

fn findings(s: &mut String, a: &Audit<'_>, by: &BTreeMap<&'static str, usize>) {
    let ordered = groups(a);
    if ordered.is_empty() {
        let _ = writeln!(s, "\nNo findings.");
        return;
    }
    let counts: Vec<String> = by
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "\n{} ({}):",
        paint::refused("Findings"),
        counts.join(", ")
    );
    // Every kind of finding present gets its largest groups, up to an
    // even share of MAX_GROUPS (at least one), so that a kind with many
    // small groups cannot hide the others.
    let mut kinds: BTreeMap<usize, Vec<(GroupKey, Vec<u32>)>> = BTreeMap::new();
    for (key, vmids) in ordered {
        kinds.entry(key.order).or_default().push((key, vmids));
    }
    let per_kind = (MAX_GROUPS / kinds.len()).max(1);
    for mut list in kinds.into_values() {
        list.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then_with(|| x.0.cmp(&y.0)));
        for (key, vmids) in list.iter().take(per_kind) {
            let ids: Vec<String> = vmids.iter().map(u32::to_string).collect();
            let _ = writeln!(
                s,
                "  {} {}: {}",
                vmids.len(),
                if vmids.len() == 1 { "VM" } else { "VMs" },
                key.text
            );
            let _ = writeln!(s, "    e.g. {}", some(&ids, EXAMPLES));
            if let Some(fix) = &key.fix {
                let _ = writeln!(s, "    fix: {fix}");
            }
        }
        if list.len() > per_kind {
            let code = Finding::CODES
                .get(list[0].0.order)
                .copied()
                .unwrap_or("CODE");
            let rest = &list[per_kind..];
            let vms: usize = rest.iter().map(|(_, v)| v.len()).sum();
            let _ = writeln!(
                s,
                "  … {} more group{} ({vms} VMs): `pve-cpuguard audit --finding {code}`",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            );
        }
    }
}

/// What the VMs of a group share, in words.
fn group_text(a: &Audit<'_>, v: &VmAudit, f: &Finding) -> String {
    let cpu = crate::error::quoted(&v.cpu);
    let nodes = |idx: &[usize]| {
        let names: Vec<&str> = idx
            .iter()
            .map(|&i| a.fleet.nodes[i].name.as_str())
            .collect();
        format!(
            "{} node{}: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            some(&names, NAMES)
        )
    };
    match f {
        Finding::AboveBaseline(idx) => {
            format!("{} — CPU '{cpu}' cannot start on {}", f.code(), nodes(idx))
        }
        Finding::HostInMixedCluster(k) => format!(
            "{} — CPU '{cpu}' passes each node's CPU through, and the nodes have {k} different CPUs",
            f.code()
        ),
        Finding::HaCannotRecover(idx) => format!(
            "{} — HA-managed with CPU '{cpu}', not recoverable onto {}",
            f.code(),
            nodes(idx)
        ),
        Finding::NoGuardHookscript(None) => format!("{} — no hookscript", f.code()),
        Finding::NoGuardHookscript(Some(_)) => format!(
            "{} — a hookscript of their own (attach chains it behind the guard)",
            f.code()
        ),
        Finding::CannotJudge(why) => format!(
            "{} — {}",
            f.code(),
            crate::error::capped(&crate::error::shorten_quotes(why), 160)
        ),
        Finding::PendingCannotStart => format!(
            "{} — a pending change to CPU '{cpu}' that their own node cannot start",
            f.code()
        ),
        Finding::NodeAdmission(idx) => format!(
            "{} — CPU '{cpu}' can no longer start on or live-migrate to {} (new, or \
             capability dropped)",
            f.code(),
            nodes(idx)
        ),
    }
}

/// The fix of a group, when one command says it.
fn fix_text(v: &VmAudit, f: &Finding) -> Option<String> {
    match f {
        Finding::NoGuardHookscript(_) => {
            Some("`pve-cpuguard attach --all` on each node (or `attach VMID…`)".into())
        }
        Finding::PendingCannotStart => Some("`qm set VMID --revert cpu`, or another value".into()),
        Finding::CannotJudge(_) => None,
        _ => match &v.suggestion {
            Some(Suggestion::Use { cpu, .. }) => Some(format!(
                "`qm set VMID --cpu {cpu}` (takes effect at the next cold start)"
            )),
            Some(Suggestion::None(why)) => Some(format!("no CPU type starts on every node: {why}")),
            None => None,
        },
    }
}
