//! The cluster audit: every VM against every node, from the cache.
//!
//! Pure: the command gathers VM configs, custom models, HA resources and
//! the fleet; this module answers, for each VM, where it could start and
//! where it could live-migrate to, and flags the VMs at risk, each with
//! the CPU type that would make it movable everywhere.
//!
//! Built to stay fast on big clusters (10 000 VMs × 64 nodes): VMs with
//! the same CPU configuration share one [`Requirement`]; nodes with the
//! same CPU share one capability class; each (requirement, class) pair —
//! and, for live migration, each (requirement, source class, target class)
//! triple — is judged once.

use std::collections::{BTreeMap, HashMap};

use crate::cache::admission::Admission;
use crate::cpu::capability::Capability;
use crate::cpu::launch::{self, StartNode, VmSpec};
use crate::cpu::level;
use crate::cpu::requirement::{self, GuestCpu, Requirement};
use crate::cpu::verdict::{self, Outcome, Question, Verdict};
use crate::guard::audit_memo::Memo;
use crate::guard::decision::{self as guard, Rules};
use crate::guard::fleet::Fleet;
use crate::guard::memo_hash::{self, MemoMap};
use crate::pve::custom_models::CustomModels;
use crate::pve::ha::HaVm;
use crate::pve::paths::VmId;
use crate::pve::running::RunningRecord;
use crate::pve::vmconf::VmConfig;

/// The file name the guard's hookscript has in every snippets directory.
pub const HOOK_FILE_NAME: &str = "pve-cpuguard-hook";

/// Whether a `hookscript:` value is the guard's.
#[must_use]
pub fn is_guard_hookscript(volid: &str) -> bool {
    volid
        .split_once(':')
        .and_then(|(_, v)| v.strip_prefix("snippets/"))
        == Some(HOOK_FILE_NAME)
}

/// One VM as found in the cluster file system.
#[derive(Debug, Clone)]
pub struct VmEntry {
    /// VMID.
    pub vmid: VmId,
    /// Node whose directory holds the config.
    pub node: String,
    /// The parsed main section, or why it could not be read.
    pub config: Result<VmConfig, String>,
    /// What its node recorded of it running (`crate::pve::running`).
    pub running: Option<RunningRecord>,
}

/// Why a VM is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Finding {
    /// Its CPU type cannot start on these nodes (indices into the fleet).
    AboveBaseline(Vec<usize>),
    /// `host`/`max` in a cluster whose nodes' CPUs differ.
    HostInMixedCluster(usize),
    /// HA-managed, and could not be recovered onto these nodes.
    HaCannotRecover(Vec<usize>),
    /// No hookscript, or another one than the guard's.
    NoGuardHookscript(Option<String>),
    /// The VM's CPU cannot be judged at all.
    CannotJudge(String),
    /// A `[PENDING]` change (applied at the next cold start) that its own
    /// node cannot start: the VM runs now, and fails at its next start.
    PendingCannotStart,
    /// Nodes newly admitted, or whose capability dropped
    /// ([`crate::cache::admission`]), that this VM can no longer start on
    /// or live-migrate to (indices into the fleet).
    NodeAdmission(Vec<usize>),
}

impl Finding {
    /// Stable identifier for JSON and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Finding::AboveBaseline(_) => "above-baseline",
            Finding::HostInMixedCluster(_) => "host-cpu-in-mixed-cluster",
            Finding::HaCannotRecover(_) => "ha-cannot-recover",
            Finding::NoGuardHookscript(_) => "no-guard-hookscript",
            Finding::CannotJudge(_) => "cannot-judge",
            Finding::PendingCannotStart => "pending-cannot-start",
            Finding::NodeAdmission(_) => "node-admission",
        }
    }

    /// Every code, in a fixed order (metrics emit each one).
    pub const CODES: [&'static str; 7] = [
        "above-baseline",
        "host-cpu-in-mixed-cluster",
        "ha-cannot-recover",
        "no-guard-hookscript",
        "cannot-judge",
        "pending-cannot-start",
        "node-admission",
    ];

    /// Whether the flag is about the VM's CPU (a missing hookscript is not
    /// a risk in itself, only a missing guard).
    #[must_use]
    pub fn is_risk(&self) -> bool {
        !matches!(self, Finding::NoGuardHookscript(_))
    }
}

/// The audit of one VM.
#[derive(Debug, Clone)]
pub struct VmAudit {
    /// VMID.
    pub vmid: VmId,
    /// `name:`.
    pub name: Option<String>,
    /// Node that owns the config.
    pub node: String,
    /// The owner's index in the fleet, if it is a known node.
    pub owner: Option<usize>,
    /// The `cpu:` value as configured (`kvm64` when absent).
    pub cpu: String,
    /// `hookscript:`.
    pub hookscript: Option<String>,
    /// HA-managed (and not `ignored`).
    pub ha: bool,
    /// A template (started only for backups, under TCG).
    pub template: bool,
    /// `[PENDING]` changes what its next cold start gives the guest.
    pub pending_changes_cpu: bool,
    /// The node its running guest's CPU came from (where it was
    /// cold-started, as recorded; else its own node), as a fleet index.
    pub origin: Option<usize>,
    /// What its node recorded of it running, when recorded.
    pub running: Option<RunningState>,
    /// Why the config could not be read, if it could not.
    pub error: Option<String>,
    /// Index of its requirement (on its own node).
    req: usize,
    /// Its start row (a verdict per class).
    start_row: usize,
    /// Its live-migration row.
    live_row: usize,
    /// Flags, in [`Finding::CODES`] order.
    pub findings: Vec<Finding>,
    /// A CPU type that would start on every node, when a CPU flag is set.
    pub suggestion: Option<Suggestion>,
}

/// A running guest's CPU, as its node recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningState {
    /// The `-cpu` its QEMU runs with.
    pub cpu: String,
    /// Where it was cold-started.
    pub cold_start_node: String,
    /// Whether its configuration would give it another `-cpu` at the next
    /// cold start on its node (a change takes effect only then).
    pub differs: bool,
}

/// What to change a flagged VM's CPU type to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Suggestion {
    /// This type starts on every node (the text may add a vendor note).
    Use {
        /// The CPU type.
        cpu: &'static str,
        /// The sentence from [`guard::everywhere`].
        text: String,
    },
    /// Even the baseline type cannot start everywhere (e.g. 1 GiB huge
    /// pages without pdpe1gb on some node).
    None(String),
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Compatible.
    Yes,
    /// Incompatible, with the verdict.
    No(&'a Verdict),
    /// Unknown: the verdict, or `None` when the node has no data.
    Unknown(Option<&'a Verdict>),
}

/// The whole audit.
pub struct Audit<'f> {
    /// The nodes.
    pub fleet: &'f Fleet,
    /// Node index → capability class (`None`: no data).
    node_class: Vec<Option<usize>>,
    /// Distinct requirements (each VM's, on its own node).
    reqs: Vec<Requirement>,
    /// Every verdict, judged once ([`crate::guard::audit_memo`]).
    verdicts: Vec<Verdict>,
    /// Distinct rows: a verdict index per class.
    rows: Vec<Vec<usize>>,
    /// Every VM, by VMID.
    pub vms: Vec<VmAudit>,
    /// The cluster baseline level.
    pub baseline: Option<&'static str>,
    /// [`guard::everywhere`].
    pub everywhere: Option<String>,
    /// Number of distinct node CPUs.
    pub classes: usize,
    /// The policy (unknown answers count as refusals under `strict`).
    rules: Rules,
}

/// Runs the audit.
#[must_use]
pub fn run<'f>(
    vms: &[VmEntry],
    custom: &CustomModels,
    fleet: &'f Fleet,
    ha: &BTreeMap<VmId, HaVm>,
    rules: Rules,
) -> Audit<'f> {
    run_with(vms, custom, fleet, ha, rules, true)
}

/// [`run`] without the live-migration answers (every [`Audit::live_cell`]
/// is then unknown): what the findings and the summary need, which is
/// most of a large cluster's time saved.
#[must_use]
pub fn run_without_live<'f>(
    vms: &[VmEntry],
    custom: &CustomModels,
    fleet: &'f Fleet,
    ha: &BTreeMap<VmId, HaVm>,
    rules: Rules,
) -> Audit<'f> {
    run_with(vms, custom, fleet, ha, rules, false)
}

fn run_with<'f>(
    vms: &[VmEntry],
    custom: &CustomModels,
    fleet: &'f Fleet,
    ha: &BTreeMap<VmId, HaVm>,
    rules: Rules,
    live: bool,
) -> Audit<'f> {
    // Nodes: one capability class per distinct CPU (and size and QEMU,
    // which decide vCPU limits and what qemu-server adds).
    let mut classes: Vec<&Capability> = Vec::new();
    let node_class: Vec<Option<usize>> = fleet
        .nodes
        .iter()
        .map(|n| {
            let cap = n.capability()?;
            Some(match classes.iter().position(|c| *c == cap) {
                Some(i) => i,
                None => {
                    classes.push(cap);
                    classes.len() - 1
                }
            })
        })
        .collect();
    let node_index: HashMap<&str, usize> = fleet
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let distinct_cpus = classes
        .iter()
        .enumerate()
        .filter(|(i, c)| !classes[..*i].iter().any(|d| d.same_cpu(c)))
        .count();
    let mut memo = Memo::new(classes, custom, rules);

    // VMs: equal launch inputs share their rows; rows of equal verdicts
    // are one (the matrix and the HTML columns group by them).
    let mut rows_of: MemoMap<(usize, usize, Option<usize>), (usize, usize)> = memo_hash::map();
    let mut suggest_key: Vec<Option<VmSpec>> = Vec::with_capacity(vms.len());
    let mut audits = Vec::with_capacity(vms.len());
    for vm in vms {
        let owner = node_index.get(vm.node.as_str()).copied();
        let owner_class = owner.and_then(|o| node_class[o]);
        let origin = vm
            .running
            .as_ref()
            .and_then(|r| node_index.get(r.cold_start_node.as_str()).copied())
            .or(owner);
        let origin_class = origin.and_then(|o| node_class[o]);
        let mut running_state = None;
        let mut pending_changes_cpu = false;
        let mut next_cpu = None;
        let (req, start_row, live_row, error) = match &vm.config {
            Ok(conf) => {
                // The configuration of the next cold start, worked out once.
                let next_conf = conf.with_pending();
                next_cpu.clone_from(&next_conf.cpu);
                let next = next_conf.launch_spec();
                let mut running = conf.launch_spec();
                // What `VmConfig::has_cpu_relevant_pending` says, without
                // applying `[PENDING]` again.
                pending_changes_cpu = next != running;
                if let Some(r) = &vm.running {
                    running.qemu_cpu = Some(r.cpu.clone());
                    if r.machine.is_some() {
                        running.machine.clone_from(&r.machine);
                    }
                    let gives = launch::launch(
                        &next,
                        &owner_class
                            .map_or(StartNode::UNKNOWN, |c| StartNode::of(memo.classes()[c])),
                        custom,
                    );
                    running_state = Some(RunningState {
                        cpu: r.cpu.clone(),
                        cold_start_node: r.cold_start_node.clone(),
                        differs: gives.cpu_arg.as_deref() != Ok(r.cpu.as_str()),
                    });
                }
                let next_id = memo.spec(&next);
                let running_id = memo.spec(&running);
                let req = memo.launch(next_id, owner_class);
                let key = (next_id, running_id, origin_class);
                let (start_row, live_row) = match rows_of.get(&key) {
                    Some(r) => *r,
                    None => {
                        let start_row = memo.start_row(next_id);
                        let live_row = if live {
                            memo.live_row(running_id, origin_class)
                        } else {
                            usize::MAX
                        };
                        rows_of.insert(key, (start_row, live_row));
                        (start_row, live_row)
                    }
                };
                suggest_key.push(Some(suggestion_key(&next)));
                (req, start_row, live_row, None)
            }
            Err(e) => {
                let mut r = requirement::from_cpu_value("kvm64", custom);
                r.unknown = Some(e.clone());
                let req = memo.intern(r);
                let n = memo.classes().len();
                let start_row = (0..n).map(|c| memo.start(req, c)).collect();
                let live_row = if live {
                    memo.live_row_of(req, origin_class)
                } else {
                    usize::MAX
                };
                suggest_key.push(None);
                (req, memo.row(start_row), live_row, Some(e.clone()))
            }
        };
        let conf = vm.config.as_ref().ok();
        audits.push(VmAudit {
            vmid: vm.vmid,
            name: conf.and_then(|c| c.name.clone()),
            node: vm.node.clone(),
            owner,
            cpu: next_cpu.unwrap_or_else(|| "kvm64".into()),
            hookscript: conf.and_then(|c| c.hookscript.clone()),
            ha: ha.get(&vm.vmid).is_some_and(HaVm::managed),
            template: conf.is_some_and(|c| c.template),
            pending_changes_cpu,
            origin,
            running: running_state,
            error,
            req,
            start_row,
            live_row,
            findings: Vec::new(),
            suggestion: None,
        });
    }

    let classes: Vec<&Capability> = memo.classes().to_vec();
    let mut audit = Audit {
        fleet,
        classes: distinct_cpus,
        node_class,
        reqs: std::mem::take(&mut memo.reqs.items),
        verdicts: std::mem::take(&mut memo.verdicts.items),
        rows: std::mem::take(&mut memo.rows.items),
        vms: Vec::new(),
        baseline: fleet.baseline(),
        everywhere: guard::everywhere(fleet),
        rules,
    };
    // A suggestion depends on the VM only through what `qm set --cpu`
    // keeps: one per such configuration, judged through a memo of its own.
    let mut suggestions: MemoMap<Option<VmSpec>, Option<Suggestion>> = memo_hash::map();
    let mut smemo = Memo::new(classes, custom, rules);
    for (a, key) in audits.iter_mut().zip(suggest_key) {
        a.findings = audit.findings_of(a);
        if a.findings.iter().any(|f| {
            matches!(
                f,
                Finding::AboveBaseline(_)
                    | Finding::HostInMixedCluster(_)
                    | Finding::HaCannotRecover(_)
            )
        }) {
            a.suggestion = suggestions
                .entry(key.clone())
                .or_insert_with(|| audit.suggest(key.as_ref(), &mut smemo))
                .clone();
        }
    }
    audits.sort_by_key(|a| a.vmid);
    audit.vms = audits;
    audit
}

/// What a suggestion depends on: the configuration with its CPU cleared,
/// as [`VmSpecs::with_cpu`] replaces it, as it launches
/// ([`launch::launch_key`]: the suggestion judges launches of it, each
/// with a CPU type of the ladder set, and setting `cpu:` changes nothing
/// the key puts one way).
fn suggestion_key(spec: &VmSpec) -> VmSpec {
    launch::launch_key(&VmSpec {
        cpu: None,
        args_cpu: None,
        runningcpu: None,
        qemu_cpu: None,
        ..spec.clone()
    })
}

impl Audit<'_> {
    /// Whether VM `a` could start on node `n`.
    #[must_use]
    pub fn start_cell(&self, a: &VmAudit, n: usize) -> Cell<'_> {
        match self.node_class[n] {
            None => Cell::Unknown(None),
            Some(c) => cell(&self.verdicts[self.rows[a.start_row][c]]),
        }
    }

    /// Whether VM `a` could live-migrate from its node to node `n`.
    #[must_use]
    pub fn live_cell(&self, a: &VmAudit, n: usize) -> Cell<'_> {
        match (self.node_class[n], self.rows.get(a.live_row)) {
            (Some(c), Some(row)) => cell(&self.verdicts[row[c]]),
            _ => Cell::Unknown(None),
        }
    }

    /// The verdict of VM `a`'s start on node `n`, as an index into
    /// [`Audit::verdicts`]; `None` for a node without data.
    #[must_use]
    pub fn start_verdict(&self, a: &VmAudit, n: usize) -> Option<usize> {
        Some(self.rows[a.start_row][self.node_class[n]?])
    }

    /// The verdict of VM `a`'s live migration to node `n`, as
    /// [`Audit::start_verdict`] (`None` also when live migrations were
    /// not judged: [`run_without_live`]).
    #[must_use]
    pub fn live_verdict(&self, a: &VmAudit, n: usize) -> Option<usize> {
        Some(self.rows.get(a.live_row)?[self.node_class[n]?])
    }

    /// Every distinct verdict of the audit (equal verdicts are one).
    #[must_use]
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// The index of VM `a`'s requirement among the distinct ones.
    #[must_use]
    pub fn requirement_id(&self, a: &VmAudit) -> usize {
        a.req
    }

    /// VMs with equal keys have equal matrix rows as shown: (start row,
    /// live row, owner — a VM's own node is no live-migration target).
    #[must_use]
    pub fn row_key(&self, a: &VmAudit) -> (usize, usize, Option<usize>) {
        (a.start_row, a.live_row, a.owner)
    }

    /// The requirement of VM `a`.
    #[must_use]
    pub fn requirement(&self, a: &VmAudit) -> &Requirement {
        &self.reqs[a.req]
    }

    /// Number of distinct requirements judged (for tests and benchmarks).
    #[must_use]
    pub fn distinct_requirements(&self) -> usize {
        self.reqs.len()
    }

    fn findings_of(&self, a: &VmAudit) -> Vec<Finding> {
        let req = &self.reqs[a.req];
        let mut findings = Vec::new();
        if let Some(why) = &req.unknown {
            findings.push(Finding::CannotJudge(why.clone()));
        }
        // The policy decides unknown answers as the hook does
        // (`guard::allows`): under `strict` they cannot start either.
        let cannot_start: Vec<usize> = (0..self.fleet.nodes.len())
            .filter(|&n| match self.start_cell(a, n) {
                Cell::No(_) => true,
                Cell::Unknown(Some(v)) => !guard::allows(v, self.rules),
                _ => false,
            })
            .collect();
        let host = matches!(req.base, GuestCpu::Host | GuestCpu::Max) && req.unknown.is_none();
        if !host && !cannot_start.is_empty() {
            findings.push(Finding::AboveBaseline(cannot_start.clone()));
        }
        if host && self.classes > 1 {
            findings.push(Finding::HostInMixedCluster(self.classes));
        }
        if a.ha {
            let nodes: Vec<usize> = cannot_start
                .iter()
                .copied()
                .filter(|&n| Some(n) != a.owner)
                .collect();
            if !nodes.is_empty() {
                findings.push(Finding::HaCannotRecover(nodes));
            }
        }
        if !a.template && !a.hookscript.as_deref().is_some_and(is_guard_hookscript) {
            findings.push(Finding::NoGuardHookscript(a.hookscript.clone()));
        }
        if a.pending_changes_cpu && a.owner.is_some_and(|o| cannot_start.contains(&o)) {
            findings.push(Finding::PendingCannotStart);
        }
        findings
    }

    /// The type that starts on every node (with or without 1 GiB huge
    /// pages, which need pdpe1gb everywhere): [`guard::recommend`], so the
    /// verdict itself accepted it on every node with data.
    /// The highest ladder type that starts on every node with data for a
    /// VM configured like `key` (its `cpu:` replaced, as `qm set --cpu`
    /// does), judged by the verdict through `memo` ([`guard::recommend`]
    /// asks the same); else which nodes refuse even kvm64.
    fn suggest(&self, key: Option<&VmSpec>, memo: &mut Memo<'_>) -> Option<Suggestion> {
        let classes = memo.classes().len();
        if classes == 0 {
            return None;
        }
        let row_for = |memo: &mut Memo<'_>, rung: &str| -> Vec<usize> {
            match key {
                Some(k) => {
                    let sid = memo.spec(&VmSpec {
                        cpu: Some(rung.to_string()),
                        ..k.clone()
                    });
                    let r = memo.start_row(sid);
                    memo.rows[r].clone()
                }
                None => {
                    let req =
                        memo.intern(requirement::from_cpu_value(rung, &CustomModels::default()));
                    (0..classes).map(|c| memo.start(req, c)).collect()
                }
            }
        };
        for rung in level::LADDER.iter().rev() {
            let row = row_for(memo, rung);
            if row
                .iter()
                .all(|&v| memo.verdicts[v].outcome == Outcome::Compatible)
            {
                return Some(Suggestion::Use {
                    cpu: rung,
                    text: guard::everywhere_text(self.fleet, rung),
                });
            }
        }
        let row = row_for(memo, "kvm64");
        let failing: Vec<String> = self
            .fleet
            .nodes
            .iter()
            .zip(&self.node_class)
            .filter_map(|(node, class)| {
                let v = &memo.verdicts[row[(*class)?]];
                (v.outcome != Outcome::Compatible)
                    .then(|| format!("{} ({})", node.name, v.summary()))
            })
            .collect();
        Some(Suggestion::None(format!(
            "not even kvm64 starts on {}",
            failing.join(", ")
        )))
    }

    /// Adds [`Finding::NodeAdmission`] to every VM that can no longer
    /// start on, or live-migrate to, a node in `admissions`: on a new node,
    /// any such VM; on a node whose capability dropped, only those its
    /// earlier record let start there. Returns, per admitted node (in
    /// fleet order), the VMIDs so affected.
    pub fn admit(&mut self, admissions: &BTreeMap<String, Admission>) -> Vec<(usize, Vec<VmId>)> {
        let mut lost: Vec<(usize, Vec<VmId>)> = Vec::new();
        for (n, node) in self.fleet.nodes.iter().enumerate() {
            let Some(adm) = admissions.get(&node.name) else {
                continue;
            };
            let before = adm
                .previous
                .as_ref()
                .map(|p| crate::cache::truth::of_record(p).capability);
            let mut vms = Vec::new();
            for i in 0..self.vms.len() {
                let a = &self.vms[i];
                let refused = |c: Cell<'_>| match c {
                    Cell::No(_) => true,
                    Cell::Unknown(Some(v)) => !guard::allows(v, self.rules),
                    _ => false,
                };
                let start = refused(self.start_cell(a, n));
                let live = a.owner != Some(n) && refused(self.live_cell(a, n));
                if !start && !live {
                    continue;
                }
                if let Some(cap) = &before {
                    let v = verdict::judge(&self.reqs[a.req], cap, Question::Start);
                    if !guard::allows(&v, self.rules) {
                        continue;
                    }
                }
                vms.push(a.vmid);
                let a = &mut self.vms[i];
                match a.findings.iter_mut().find_map(|f| match f {
                    Finding::NodeAdmission(nodes) => Some(nodes),
                    _ => None,
                }) {
                    Some(nodes) => nodes.push(n),
                    None => a.findings.push(Finding::NodeAdmission(vec![n])),
                }
            }
            lost.push((n, vms));
        }
        lost
    }

    /// Counts of flagged VMs by flag code, and the VMs at risk.
    #[must_use]
    pub fn counts(&self) -> (BTreeMap<&'static str, usize>, usize) {
        let mut by: BTreeMap<&'static str, usize> =
            Finding::CODES.iter().map(|c| (*c, 0)).collect();
        let mut risk = 0;
        for a in &self.vms {
            for f in &a.findings {
                *by.entry(f.code()).or_default() += 1;
            }
            if a.findings.iter().any(Finding::is_risk) {
                risk += 1;
            }
        }
        (by, risk)
    }

    /// Running guests whose CPU is not what their configuration gives at
    /// the next cold start.
    #[must_use]
    pub fn running_cpu_differs(&self) -> usize {
        self.vms
            .iter()
            .filter(|v| v.running.as_ref().is_some_and(|r| r.differs))
            .count()
    }

    /// The level of node `n`, for display.
    #[must_use]
    pub fn node_level(&self, n: usize) -> Option<&str> {
        self.fleet.nodes[n].level()
    }
}

fn cell(v: &Verdict) -> Cell<'_> {
    match v.outcome {
        Outcome::Compatible => Cell::Yes,
        Outcome::Incompatible => Cell::No(v),
        Outcome::Unknown => Cell::Unknown(Some(v)),
    }
}

/// The ladder position of a level name (for metrics), `None` if unknown.
#[must_use]
pub fn level_rank(name: &str) -> Option<usize> {
    level::LADDER.iter().position(|l| *l == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_hosts::kvm_host as cap;
    use crate::guard::fleet::FleetNode;
    use crate::pve::ha::HaVm;

    fn vm(vmid: u32, node: &str, conf: &str) -> VmEntry {
        VmEntry {
            vmid: VmId(vmid),
            node: node.into(),
            config: crate::pve::vmconf::parse(conf, std::path::Path::new("x"))
                .map_err(|e| e.to_string()),
            running: None,
        }
    }

    #[test]
    fn flags_and_matrix() {
        let mut fleet = Fleet::default();
        fleet.upsert(FleetNode::known("a", cap("GenuineIntel", "x86-64-v4"), 1));
        fleet.upsert(FleetNode::known("b", cap("GenuineIntel", "x86-64-v3"), 1));
        fleet.upsert(FleetNode::known("c", cap("GenuineIntel", "x86-64-v4"), 1));
        fleet.upsert(FleetNode::never_scanned("d", None));
        let vms = vec![
            vm(
                100,
                "a",
                "cpu: x86-64-v4\nhookscript: local:snippets/pve-cpuguard-hook\n",
            ),
            vm(101, "a", "cpu: host\n"),
            vm(
                102,
                "b",
                "cpu: x86-64-v3\nhookscript: local:snippets/pve-cpuguard-hook\n",
            ),
            vm(
                103,
                "a",
                "cpu: x86-64-v4\nhookscript: local:snippets/mine.pl\n",
            ),
            vm(104, "c", "cpu: NoSuchCpu\n"),
        ];
        let mut ha = BTreeMap::new();
        ha.insert(
            VmId(103),
            HaVm {
                state: "started".into(),
                group: None,
            },
        );
        let audit = run(
            &vms,
            &CustomModels::default(),
            &fleet,
            &ha,
            Rules::default(),
        );
        // 100 and 103 share one requirement.
        assert_eq!(audit.distinct_requirements(), 4);
        assert_eq!(audit.classes, 2);
        let codes =
            |i: usize| -> Vec<&str> { audit.vms[i].findings.iter().map(Finding::code).collect() };
        assert_eq!(codes(0), ["above-baseline"]);
        assert_eq!(audit.vms[0].findings[0], Finding::AboveBaseline(vec![1]));
        assert_eq!(
            codes(1),
            ["host-cpu-in-mixed-cluster", "no-guard-hookscript"]
        );
        assert!(codes(2).is_empty());
        assert_eq!(
            codes(3),
            ["above-baseline", "ha-cannot-recover", "no-guard-hookscript"]
        );
        assert_eq!(codes(4), ["cannot-judge", "no-guard-hookscript"]);
        assert_eq!(
            audit.vms[0].suggestion,
            Some(Suggestion::Use {
                cpu: "x86-64-v3",
                text: "x86-64-v3".into()
            })
        );
        assert_eq!(audit.vms[2].suggestion, None);
        // Matrix: 100 on a → c yes, b no, d unknown.
        let a0 = &audit.vms[0];
        assert_eq!(audit.live_cell(a0, 2), Cell::Yes);
        assert!(matches!(audit.live_cell(a0, 1), Cell::No(_)));
        assert_eq!(audit.live_cell(a0, 3), Cell::Unknown(None));
        assert!(matches!(audit.start_cell(a0, 1), Cell::No(_)));
        let (by, risk) = audit.counts();
        assert_eq!(by["above-baseline"], 2);
        assert_eq!(risk, 4);
    }

    #[test]
    fn pending_change_its_node_cannot_start_is_a_finding() {
        let mut fleet = Fleet::default();
        fleet.upsert(FleetNode::known("a", cap("GenuineIntel", "x86-64-v3"), 1));
        let hook = "hookscript: local:snippets/pve-cpuguard-hook\n";
        let vms = vec![
            vm(
                100,
                "a",
                &format!("cpu: x86-64-v3\n{hook}[PENDING]\ncpu: x86-64-v4\n"),
            ),
            vm(
                101,
                "a",
                &format!("cpu: x86-64-v3\n{hook}[PENDING]\ncpu: x86-64-v2-AES\n"),
            ),
            vm(
                102,
                "a",
                &format!("cpu: x86-64-v3\n{hook}[PENDING]\nmemory: 2048\n"),
            ),
            vm(103, "a", "cpu: x86-64-v3\ntemplate: 1\n"),
        ];
        let audit = run(
            &vms,
            &CustomModels::default(),
            &fleet,
            &BTreeMap::new(),
            Rules::default(),
        );
        let codes =
            |i: usize| -> Vec<&str> { audit.vms[i].findings.iter().map(Finding::code).collect() };
        assert_eq!(codes(0), ["above-baseline", "pending-cannot-start"]);
        assert!(codes(1).is_empty());
        assert!(codes(2).is_empty());
        assert!(
            codes(3).is_empty(),
            "a template is not flagged for a hookscript"
        );
    }

    fn record(name: &str, fixture: &str) -> crate::cache::NodeRecord {
        let path = format!(
            "{}/tests/data/cpuinfo/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let info = crate::cpu::cpuinfo::parse(&text, std::path::Path::new(&path)).unwrap();
        crate::cache::NodeRecord::new(name, "10.0.0.2", &info, None, 1)
    }

    #[test]
    fn node_admission_names_the_vms_a_new_or_weaker_node_no_longer_takes() {
        let mut fleet = Fleet::default();
        for (name, level) in [("a", "x86-64-v4"), ("b", "x86-64-v3")] {
            fleet.upsert(FleetNode::known(name, cap("GenuineIntel", level), 1));
        }
        let hook = "hookscript: local:snippets/pve-cpuguard-hook\n";
        let vms = vec![
            vm(100, "a", &format!("cpu: x86-64-v4\n{hook}")),
            vm(101, "a", &format!("cpu: x86-64-v3\n{hook}")),
        ];
        let admitted = |previous: Option<crate::cache::NodeRecord>| {
            let mut audit = run(
                &vms,
                &CustomModels::default(),
                &fleet,
                &BTreeMap::new(),
                Rules::default(),
            );
            let adm = Admission {
                node: "b".into(),
                since: 5,
                previous,
                message: "b".into(),
            };
            let lost = audit.admit(&BTreeMap::from([("b".to_string(), adm)]));
            let codes: Vec<Vec<&str>> = audit
                .vms
                .iter()
                .map(|v| v.findings.iter().map(Finding::code).collect())
                .collect();
            (lost, codes, audit.vms[0].findings.clone())
        };
        // A new node: the v4 VM can neither start nor live-migrate there.
        let (lost, codes, f) = admitted(None);
        assert_eq!(lost, [(1, vec![VmId(100)])]);
        assert_eq!(codes[0], ["above-baseline", "node-admission"]);
        assert!(codes[1].is_empty());
        assert_eq!(f[1], Finding::NodeAdmission(vec![1]));
        // Its capability dropped from a Cascade Lake: the v4 VM lost it.
        let (lost, ..) = admitted(Some(record("b", "hwloc-xeon-gold-6230-cascadelake.txt")));
        assert_eq!(lost, [(1, vec![VmId(100)])]);
        // From a Clovertown, which could not start it either: nothing lost.
        let (lost, codes, _) = admitted(Some(record("b", "hwloc-xeon-e5345-clovertown.txt")));
        assert_eq!(lost, [(1, vec![])]);
        assert_eq!(codes[0], ["above-baseline"]);
    }

    #[test]
    fn guard_hookscript_is_recognised_on_any_storage() {
        assert!(is_guard_hookscript("local:snippets/pve-cpuguard-hook"));
        assert!(is_guard_hookscript("cephfs:snippets/pve-cpuguard-hook"));
        assert!(!is_guard_hookscript("local:snippets/pve-cpuguard-hook.old"));
        assert!(!is_guard_hookscript("pve-cpuguard-hook"));
    }
}
