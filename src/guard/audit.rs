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

use crate::cpu::capability::Capability;
use crate::cpu::launch::{self, StartNode, VmSpec, VmSpecs};
use crate::cpu::level;
use crate::cpu::requirement::{self, GuestCpu, Requirement};
use crate::cpu::verdict::{self, Outcome, Question, Verdict};
use crate::guard::decision::{self as guard, Rules};
use crate::guard::fleet::Fleet;
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }

    /// Every code, in a fixed order (metrics emit each one).
    pub const CODES: [&'static str; 6] = [
        "above-baseline",
        "host-cpu-in-mixed-cluster",
        "ha-cannot-recover",
        "no-guard-hookscript",
        "cannot-judge",
        "pending-cannot-start",
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
    /// Index of its requirement.
    req: usize,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Distinct requirements.
    reqs: Vec<Requirement>,
    /// `start[req][class]`.
    start: Vec<Vec<Verdict>>,
    /// `(req, source class)` → verdict per target class.
    live: HashMap<(usize, Option<usize>), Vec<Verdict>>,
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
    let start_node =
        |class: Option<usize>| class.map_or(StartNode::UNKNOWN, |c| StartNode::of(classes[c]));

    // VMs: equal launch inputs (next start, running) share their verdicts;
    // one requirement per (inputs, owner's class) for what is shown.
    let mut specs: Vec<(VmSpec, VmSpec)> = Vec::new();
    let mut spec_index: HashMap<(VmSpec, VmSpec), usize> = HashMap::new();
    let mut reqs: Vec<Requirement> = Vec::new();
    let mut req_spec: Vec<Option<usize>> = Vec::new();
    let mut req_index: HashMap<(usize, Option<usize>, Option<usize>), usize> = HashMap::new();
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
        let (req, error) = match &vm.config {
            Ok(conf) => {
                let mut running = conf.launch_spec();
                if let Some(r) = &vm.running {
                    running.qemu_cpu = Some(r.cpu.clone());
                    if r.machine.is_some() {
                        running.machine.clone_from(&r.machine);
                    }
                    let next = launch::launch(
                        &conf.with_pending().launch_spec(),
                        &start_node(owner_class),
                        custom,
                    );
                    running_state = Some(RunningState {
                        cpu: r.cpu.clone(),
                        cold_start_node: r.cold_start_node.clone(),
                        differs: next.cpu_arg.as_deref() != Ok(r.cpu.as_str()),
                    });
                }
                let key = (conf.with_pending().launch_spec(), running);
                let next = specs.len();
                let si = *spec_index.entry(key.clone()).or_insert(next);
                if si == next {
                    specs.push(key);
                }
                let i = *req_index
                    .entry((si, owner_class, origin_class))
                    .or_insert_with(|| {
                        let mut r = launch::launch(&specs[si].0, &start_node(owner_class), custom)
                            .requirement;
                        r.running_cpu = None;
                        reqs.push(r);
                        req_spec.push(Some(si));
                        reqs.len() - 1
                    });
                (i, None)
            }
            Err(e) => {
                reqs.push(requirement::from_cpu_value("kvm64", custom));
                req_spec.push(None);
                let i = reqs.len() - 1;
                reqs[i].unknown = Some(e.clone());
                (i, Some(e.clone()))
            }
        };
        let conf = vm.config.as_ref().ok();
        audits.push(VmAudit {
            vmid: vm.vmid,
            name: conf.and_then(|c| c.name.clone()),
            node: vm.node.clone(),
            owner,
            cpu: conf
                .and_then(|c| c.with_pending().cpu)
                .unwrap_or_else(|| "kvm64".into()),
            hookscript: conf.and_then(|c| c.hookscript.clone()),
            ha: ha.get(&vm.vmid).is_some_and(HaVm::managed),
            template: conf.is_some_and(|c| c.template),
            pending_changes_cpu: conf.is_some_and(VmConfig::has_cpu_relevant_pending),
            origin,
            running: running_state,
            error,
            req,
            findings: Vec::new(),
            suggestion: None,
        });
    }

    let judge = |req: &Requirement, cap: &Capability, mode: Question<'_>| {
        let mut ignore = Vec::new();
        guard::apply_rules(verdict::judge(req, cap, mode), rules, &mut ignore)
    };
    // Per requirement index: a requirement that could not be read is
    // judged as it is; one read from a config by its launch on each node.
    let start: Vec<Vec<Verdict>> = req_spec
        .iter()
        .zip(&reqs)
        .map(|(si, r)| {
            classes
                .iter()
                .map(|c| match si {
                    Some(si) => {
                        let req =
                            launch::launch(&specs[*si].0, &StartNode::of(c), custom).requirement;
                        judge(&req, c, Question::Start)
                    }
                    None => judge(r, c, Question::Start),
                })
                .collect()
        })
        .collect();
    let mut live: HashMap<(usize, Option<usize>), Vec<Verdict>> = HashMap::new();
    for a in &audits {
        let src = a.origin.and_then(|o| node_class[o]);
        live.entry((a.req, src)).or_insert_with(|| {
            let source = src.map(|s| classes[s]);
            let req = match req_spec[a.req] {
                Some(si) => launch::launch(&specs[si].1, &start_node(src), custom).requirement,
                None => reqs[a.req].clone(),
            };
            classes
                .iter()
                .map(|c| judge(&req, c, Question::Live { source }))
                .collect()
        });
    }
    let distinct_cpus = classes
        .iter()
        .enumerate()
        .filter(|(i, c)| !classes[..*i].iter().any(|d| d.same_cpu(c)))
        .count();

    let mut audit = Audit {
        fleet,
        classes: distinct_cpus,
        node_class,
        reqs,
        start,
        live,
        vms: Vec::new(),
        baseline: fleet.baseline(),
        everywhere: guard::everywhere(fleet),
        rules,
    };
    let mut suggestions: HashMap<usize, Option<Suggestion>> = HashMap::new();
    for a in &mut audits {
        a.findings = audit.findings_of(a);
        if a.findings.iter().any(|f| {
            matches!(
                f,
                Finding::AboveBaseline(_)
                    | Finding::HostInMixedCluster(_)
                    | Finding::HaCannotRecover(_)
            )
        }) {
            let spec = req_spec[a.req];
            a.suggestion = suggestions
                .entry(spec.unwrap_or(usize::MAX))
                .or_insert_with(|| {
                    let specs = spec.map(|si| VmSpecs {
                        next_start: specs[si].0.clone(),
                        running: specs[si].1.clone(),
                        custom,
                        cold_start: None,
                    });
                    audit.suggest(specs.as_ref(), rules, &classes)
                })
                .clone();
        }
    }
    audits.sort_by_key(|a| a.vmid);
    audit.vms = audits;
    audit
}

impl Audit<'_> {
    /// Whether VM `a` could start on node `n`.
    #[must_use]
    pub fn start_cell(&self, a: &VmAudit, n: usize) -> Cell<'_> {
        match self.node_class[n] {
            None => Cell::Unknown(None),
            Some(c) => cell(&self.start[a.req][c]),
        }
    }

    /// Whether VM `a` could live-migrate from its node to node `n`.
    #[must_use]
    pub fn live_cell(&self, a: &VmAudit, n: usize) -> Cell<'_> {
        let src = a.origin.and_then(|o| self.node_class[o]);
        match (self.node_class[n], self.live.get(&(a.req, src))) {
            (Some(c), Some(v)) => cell(&v[c]),
            _ => Cell::Unknown(None),
        }
    }

    /// VMs with equal keys have equal matrix rows: (requirement, owner).
    #[must_use]
    pub fn row_key(&self, a: &VmAudit) -> (usize, Option<usize>) {
        (a.req, a.owner)
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
    fn suggest(
        &self,
        specs: Option<&VmSpecs<'_>>,
        rules: Rules,
        classes: &[&Capability],
    ) -> Option<Suggestion> {
        if classes.is_empty() {
            return None;
        }
        if let Some(cpu) = guard::recommend(self.fleet, specs) {
            let text = guard::everywhere_for(self.fleet, specs).unwrap_or_else(|| cpu.to_string());
            return Some(Suggestion::Use { cpu, text });
        }
        let kvm64 = specs.map(|s| s.with_cpu("kvm64"));
        let failing: Vec<String> = self
            .fleet
            .nodes
            .iter()
            .zip(&self.node_class)
            .filter_map(|(node, class)| {
                let mut ignore = Vec::new();
                let cap = classes[(*class)?];
                let like = kvm64.as_ref().map_or_else(
                    || requirement::from_cpu_value("kvm64", &CustomModels::default()),
                    |s| s.requirement(&Question::Start, cap),
                );
                let v = guard::apply_rules(
                    verdict::judge(&like, cap, Question::Start),
                    rules,
                    &mut ignore,
                );
                (v.outcome != Outcome::Compatible)
                    .then(|| format!("{} ({})", node.name, v.summary()))
            })
            .collect();
        Some(Suggestion::None(format!(
            "not even kvm64 starts on {}",
            failing.join(", ")
        )))
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
        fleet.upsert(FleetNode::known(
            "a",
            cap("GenuineIntel", "x86-64-v4"),
            Some(1),
        ));
        fleet.upsert(FleetNode::known(
            "b",
            cap("GenuineIntel", "x86-64-v3"),
            Some(1),
        ));
        fleet.upsert(FleetNode::known(
            "c",
            cap("GenuineIntel", "x86-64-v4"),
            Some(1),
        ));
        fleet.upsert(FleetNode::unknown("d", "never scanned".into()));
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
        fleet.upsert(FleetNode::known(
            "a",
            cap("GenuineIntel", "x86-64-v3"),
            Some(1),
        ));
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

    #[test]
    fn guard_hookscript_is_recognised_on_any_storage() {
        assert!(is_guard_hookscript("local:snippets/pve-cpuguard-hook"));
        assert!(is_guard_hookscript("cephfs:snippets/pve-cpuguard-hook"));
        assert!(!is_guard_hookscript("local:snippets/pve-cpuguard-hook.old"));
        assert!(!is_guard_hookscript("pve-cpuguard-hook"));
    }
}
