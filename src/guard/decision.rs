//! The guard's decision: a verdict, put through the policy, compared with
//! every other node, and explained.
//!
//! Pure: the commands (`hook`, `migrate`, `check`) gather the inputs and act
//! on the [`Decision`]; everything they print comes from here, so the task
//! log, the source's migration log and the journal tell the same story.

use std::fmt::Write as _;

use crate::conf::config::{Policy, VendorChange};
use crate::cpu::capability::Capability;
use crate::cpu::fix::{self, Fix};
use crate::cpu::launch::VmSpecs;
use crate::cpu::level;
use crate::cpu::requirement::Requirement;
use crate::cpu::verdict::{self, Outcome, Question, Reason, Verdict};
use crate::guard::fleet::Fleet;

/// How the VM would arrive on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement<'a> {
    /// An ordinary start (also HA recovery, first start after an offline move).
    Start,
    /// An offline migration from `source`: the VM must be able to start.
    Offline {
        /// Source node.
        source: &'a str,
    },
    /// A live migration from `source`.
    Live {
        /// Source node.
        source: &'a str,
    },
    /// A live migration from another cluster (`qm remote-migrate`, the
    /// Proxmox Datacenter Manager): the target's `pre-start` runs with the
    /// config's `lock: migrate` and without `PVE_MIGRATED_FROM`. With the
    /// source node's published record (its name and CPU) the live rules
    /// apply; without it the start rules do, and a CPU whose safety
    /// depends on the source node ([`verdict::depends_on_source`]) is
    /// unknown: the policy decides.
    Remote {
        /// The source node's name and CPU, from its published record.
        record: Option<(&'a str, &'a Capability)>,
    },
}

impl Movement<'_> {
    fn source(&self) -> Option<&str> {
        match self {
            Movement::Start | Movement::Remote { .. } => None,
            Movement::Offline { source } | Movement::Live { source } => Some(source),
        }
    }
}

/// The unknown a remote migration without the source's record gives a
/// CPU that depends on the source node.
pub const REMOTE_SOURCE_UNKNOWN: &str = "it arrives by a migration from another cluster (`lock: migrate`, no PVE_MIGRATED_FROM): its running CPU was made on the source cluster's node, which is unknown";

/// The VM, for messages.
#[derive(Debug, Clone)]
pub struct VmLabel {
    /// VMID.
    pub vmid: String,
    /// `name:` from the config.
    pub name: Option<String>,
}

/// Settings that turn a verdict into a decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Unknown → allow (default) or refuse (strict).
    pub policy: Policy,
    /// Vendor change on live migration → refuse (default) or warn.
    pub vendor_change: VendorChange,
}

/// The guard's answer.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Whether the start or move may go ahead.
    pub allow: bool,
    /// The verdict after the policy (vendor changes may be demoted to warnings).
    pub verdict: Verdict,
    /// Warnings to log even when allowed.
    pub warnings: Vec<String>,
    /// Other nodes that would accept the VM in the same way.
    pub accepting: Vec<String>,
    /// A CPU type that every known node can run.
    pub everywhere: Option<String>,
    /// Nodes without data, where `everywhere` is not known to hold; the
    /// text then says so instead of claiming every node.
    pub unscanned: Vec<String>,
    /// How many nodes `everywhere` was judged on.
    pub scanned: usize,
    /// Target node name.
    pub target: String,
    /// Source node name, if moving.
    pub source: Option<String>,
    /// The VM's CPU as configured.
    pub cpu: String,
    /// `runningcpu:` if the config has one.
    pub running_cpu: Option<String>,
    /// The VM.
    pub vm: VmLabel,
    /// Whether the rules for a live migration applied.
    pub live: bool,
    /// Which view decided the target's answer: `kvm`, `tcg` or `cpuinfo`
    /// ([`crate::cache::truth::view_name`]).
    pub view: &'static str,
}

/// Judges the VM (`specs`) on `target` (whose capability is `target_cap`),
/// under `rules`: on every node, what QEMU would be started with there
/// ([`crate::cpu::launch`]), through the one verdict.
#[must_use]
pub fn decide(
    vm: &VmLabel,
    specs: &VmSpecs<'_>,
    target: &str,
    target_cap: &Capability,
    movement: Movement<'_>,
    fleet: &Fleet,
    rules: Rules,
) -> Decision {
    let source = movement.source();
    // A running guest's CPU is that of the node it was cold-started on
    // (recorded at its post-start), not of whichever node it runs on now.
    let origin = specs.cold_start.as_deref().or(source);
    let mode = || match movement {
        Movement::Live { .. } => Question::Live {
            source: origin.and_then(|o| fleet.capability(o)),
        },
        Movement::Remote {
            record: Some((_, cap)),
        } => Question::Live { source: Some(cap) },
        _ => Question::Start,
    };
    let mut warnings: Vec<String> = fleet
        .warnings()
        .iter()
        .map(|p| format!("cache: {p}"))
        .collect();
    let judge = |specs: &VmSpecs<'_>, cap: &Capability| {
        let q = mode();
        verdict::judge(&specs.requirement(&q, cap), cap, q)
    };
    // The VM's launch on each kind of start node (vendor, QEMU, nested
    // flag: all a launch reads of a node) is worked out once: a start
    // judges every node, and most share a kind (the hook's time budget).
    type Kind = (
        Option<String>,
        Option<crate::cpu::launch::QemuVersion>,
        Option<&'static str>,
    );
    let launched: std::cell::RefCell<Vec<(Kind, Requirement)>> =
        std::cell::RefCell::new(Vec::new());
    let judge_vm = |cap: &Capability| {
        let q = mode();
        let node = match q {
            Question::Start => Some(cap),
            Question::Live { source } => source,
        };
        let kind: Kind = (
            node.map(|c| c.vendor.clone()),
            node.and_then(|c| c.qemu_version),
            node.and_then(Capability::nested_flag),
        );
        let mut memo = launched.borrow_mut();
        let i = match memo.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                memo.push((kind, specs.requirement(&q, cap)));
                memo.len() - 1
            }
        };
        verdict::judge(&memo[i].1, cap, q)
    };
    let req = specs.requirement(&mode(), target_cap);
    let mut v = apply_rules(judge_vm(target_cap), rules, &mut warnings);
    match movement {
        Movement::Remote { record: None } => {
            let running = specs.requirement(&Question::Live { source: None }, target_cap);
            if verdict::depends_on_source(&running) {
                v.unknown.push(format!(
                    "CPU '{}': {REMOTE_SOURCE_UNKNOWN}; its published record decides \
                     (`remote_source_record` in the configuration file, `check --source-record`)",
                    running.cpu
                ));
                if v.outcome == Outcome::Compatible {
                    v.outcome = Outcome::Unknown;
                }
            } else {
                v.notes.push(
                    "a migration from another cluster: judged by the start rules (its CPU does not depend on the source node)".into(),
                );
            }
        }
        Movement::Remote {
            record: Some((name, _)),
        } => v.notes.push(format!(
            "a migration from another cluster: the running CPU is judged as {name}'s published record gives it"
        )),
        _ => {}
    }
    if let Movement::Live { source } = movement {
        v.notes.push(match specs.cold_start.as_deref() {
            Some(o) if o != source => format!(
                "the guest was cold-started on {o}: its CPU is judged as that node gave it (it runs on {source} now)"
            ),
            Some(_) => format!("the guest was cold-started on {source}, where it runs now"),
            None => format!(
                "where the guest was cold-started is not recorded: its CPU is judged as {source}, where it runs now, gives it"
            ),
        });
    }

    let allow = allows(&v, rules);
    if v.outcome == Outcome::Unknown {
        let why = v.unknown.join("; ");
        if allow {
            warnings.push(format!(
                "allowed without proof: {why} (set policy = strict to refuse such cases)"
            ));
        } else {
            v.notes
                .push("policy strict: what cannot be proven safe is refused".into());
        }
    }

    let mut accepting = Vec::new();
    let mut cannot_start: Vec<(String, Vec<String>)> = Vec::new();
    // Other nodes matter for a refusal's explanation and for a start's
    // warning; an allowed live migration does not pay for them.
    let survey = !allow || matches!(movement, Movement::Start);
    let others = if survey { fleet.nodes.as_slice() } else { &[] };
    for (name, cap) in others
        .iter()
        .filter_map(|n| n.capability().map(|c| (n.name.as_str(), c)))
    {
        if Some(name) == source {
            continue;
        }
        let mut ignore = Vec::new();
        let other = apply_rules(judge_vm(cap), rules, &mut ignore);
        if other.outcome == Outcome::Compatible && name != target {
            accepting.push(name.to_string());
        }
        if matches!(movement, Movement::Start)
            && other.outcome == Outcome::Incompatible
            && name != target
        {
            note_node_by_reason(&mut cannot_start, name, other.summary());
        }
    }
    if allow && !cannot_start.is_empty() {
        let groups: Vec<String> = cannot_start
            .iter()
            .map(|(why, nodes)| format!("{} ({why})", nodes.join(", ")))
            .collect();
        warnings.push(format!(
            "CPU '{}' is above what some nodes offer; this VM cannot start on: {}",
            req.cpu,
            groups.join("; ")
        ));
    }

    // The suggestion is checked by the same verdict, on the target and for
    // this very movement, before it is printed: a type that would be
    // refused too (e.g. across a vendor change) is never suggested.
    let mut everywhere = if allow {
        None
    } else {
        everywhere_for(fleet, Some(specs))
    };
    if let Some(cpu) = everywhere
        .as_deref()
        .and_then(|e| e.split_whitespace().next())
    {
        let alt = specs.with_cpu(cpu);
        let mut ignore = Vec::new();
        let w = apply_rules(judge(&alt, target_cap), rules, &mut ignore);
        if w.outcome != Outcome::Compatible {
            // Where the core already knows no CPU type can help (a vendor
            // change, a differing width), `explain` says so with the
            // reason; otherwise say which check the suggestion failed.
            if !matches!(fix::fix(&v), Fix::NoCpuType(_)) {
                v.notes.push(format!(
                    "no CPU type makes this possible ({cpu} would be refused too: {}); nodes that would accept the VM as it is: {}",
                    w.summary(),
                    if accepting.is_empty() { "none".to_string() } else { accepting.join(", ") }
                ));
            }
            everywhere = None;
        }
    }
    // Only a refusal pays for every node's level.
    if !allow && everywhere.is_none() {
        let below = fleet.below_floor();
        if !below.is_empty() {
            v.notes.push(format!(
                "no CPU type starts on every node: not even kvm64 starts on {}",
                below.join(", ")
            ));
        }
    }

    Decision {
        allow,
        verdict: v,
        warnings,
        accepting,
        everywhere,
        // Only a survey says anything of the other nodes (a refusal's
        // "works on every node"); an allowed live migration must not read
        // every node's record to count them.
        unscanned: if survey {
            fleet
                .without_data()
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        },
        scanned: if survey { fleet.known().count() } else { 0 },
        target: target.to_string(),
        source: source.map(str::to_string),
        cpu: req.cpu.clone(),
        running_cpu: req.running_cpu.clone(),
        vm: vm.clone(),
        live: matches!(
            movement,
            Movement::Live { .. } | Movement::Remote { record: Some(_) }
        ),
        view: crate::cache::truth::view_name(target_cap),
    }
}

/// The published record of a remote migration's source node, when the
/// configuration file names one (`remote_source_record`): its node name
/// and CPU, or why it cannot be used (a warning; the source is then
/// unknown).
#[must_use]
pub fn remote_source(
    settings: &crate::conf::settings::Settings,
) -> Option<std::result::Result<(String, Capability), String>> {
    let path = settings.config.remote_source_record.as_deref()?;
    Some(
        crate::cache::published::load_file(
            path,
            crate::cache::now(),
            settings.cache_max_age.as_secs(),
        )
        .map(|p| (p.node.clone(), p.record.into_capability()))
        .map_err(|e| {
            format!(
                "remote_source_record: {}; the source node is taken as unknown",
                e.describe(path)
            )
        }),
    )
}

/// The policy's answer to a verdict (after [`apply_rules`]): compatible
/// goes ahead, incompatible is refused, unknown is allowed under `policy
/// default` and refused under `policy strict`. The hook, `migrate`,
/// `check` and `audit` all decide through here.
#[must_use]
pub fn allows(v: &Verdict, rules: Rules) -> bool {
    match v.outcome {
        Outcome::Compatible => true,
        Outcome::Incompatible => false,
        Outcome::Unknown => rules.policy != Policy::Strict,
    }
}

/// Applies the vendor-change rule: with `vendor_change = warn`, a vendor
/// change becomes a warning instead of a reason.
#[must_use]
pub fn apply_rules(mut v: Verdict, rules: Rules, warnings: &mut Vec<String>) -> Verdict {
    if rules.vendor_change == VendorChange::Warn {
        let (demoted, kept): (Vec<Reason>, Vec<Reason>) = v
            .reasons
            .into_iter()
            .partition(|r| matches!(r, Reason::VendorChange { .. }));
        warnings.extend(
            demoted
                .iter()
                .map(|r| format!("{r} (allowed: vendor_change = warn)")),
        );
        v.reasons = kept;
        if v.reasons.is_empty() && v.outcome == Outcome::Incompatible {
            v.outcome = if v.unknown.is_empty() {
                Outcome::Compatible
            } else {
                Outcome::Unknown
            };
        }
    }
    v
}

/// The highest ladder type the verdict accepts on every known node for
/// the VM `specs` with its `cpu:` set to that type (everything else of its
/// configuration kept: huge pages, vCPUs, `ostype`, …), or for any VM;
/// `None` when not even `kvm64` starts everywhere. The only source of
/// "works on every node".
#[must_use]
pub fn recommend(fleet: &Fleet, specs: Option<&VmSpecs<'_>>) -> Option<&'static str> {
    let caps: Vec<&Capability> = fleet.known().map(|(_, c)| c).collect();
    match specs {
        None => level::highest_everywhere(&caps, |_| {}),
        Some(specs) => level::highest_everywhere_by(&caps, |rung, cap| {
            specs.with_cpu(rung).requirement(&Question::Start, cap)
        }),
    }
}

/// The suggestion "a CPU type that works on every node" ([`recommend`]).
#[must_use]
pub fn everywhere(fleet: &Fleet) -> Option<String> {
    everywhere_for(fleet, None)
}

/// [`everywhere`] for the VM `specs`.
#[must_use]
pub fn everywhere_for(fleet: &Fleet, specs: Option<&VmSpecs<'_>>) -> Option<String> {
    Some(everywhere_text(fleet, recommend(fleet, specs)?))
}

/// How a type that starts on every node is said: with the vendors, when
/// the nodes mix them.
#[must_use]
pub fn everywhere_text(fleet: &Fleet, base: &str) -> String {
    let vendors = fleet.vendors();
    if vendors.len() > 1 {
        format!(
            "{base} (starts on every node; the nodes mix {} CPUs, so live migration between vendors stays refused)",
            vendors.into_iter().collect::<Vec<_>>().join(" and ")
        )
    } else {
        base.to_string()
    }
}

impl Decision {
    /// `everywhere` as said: the type, or while some node has no data,
    /// which nodes and that it holds on the others only.
    fn scope(&self, everywhere: &str) -> String {
        if self.unscanned.is_empty() {
            return everywhere.to_string();
        }
        let missing: Vec<&str> = self.unscanned.iter().map(String::as_str).collect();
        super::scope::withheld("unknown", &missing, Some(everywhere), self.scanned)
    }

    fn movement_text(&self) -> String {
        match (&self.source, self.live) {
            (Some(s), true) => format!("live migration {s} -> {}", self.target),
            (Some(s), false) => format!("offline migration {s} -> {}", self.target),
            (None, _) => format!("start on {}", self.target),
        }
    }

    fn vm_text(&self) -> String {
        match &self.vm.name {
            Some(n) => format!("VM {} ({n})", self.vm.vmid),
            None => format!("VM {}", self.vm.vmid),
        }
    }

    fn cpu_text(&self) -> String {
        match &self.running_cpu {
            Some(r) => format!("CPU '{}' (running: {r})", self.cpu),
            None => format!("CPU '{}'", self.cpu),
        }
    }

    /// The multi-line explanation of a refusal (for stderr / the task log).
    #[must_use]
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let verb = if self.allow { "allowed" } else { "refused" };
        let _ = writeln!(
            s,
            "pve-cpuguard: {verb}: {} of {} with {}",
            self.movement_text(),
            self.vm_text(),
            self.cpu_text()
        );
        for r in &self.verdict.reasons {
            let _ = writeln!(s, "  - {r}");
        }
        if !self.allow {
            for u in &self.verdict.unknown {
                let _ = writeln!(s, "  - unknown: {u}");
            }
        }
        let _ = writeln!(s, "  view: {} ({})", self.view, self.verdict.checked_with);
        for n in &self.verdict.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        if !self.allow {
            let accept = if self.accepting.is_empty() {
                "none".to_string()
            } else {
                self.accepting.join(", ")
            };
            let _ = writeln!(s, "  nodes that would accept it: {accept}");
            if let Fix::NoCpuType(why) = fix::fix(&self.verdict) {
                let _ = writeln!(s, "  no CPU type can fix this: {why}");
            } else if let Some(e) = &self.everywhere {
                let _ = writeln!(s, "  CPU type that works on every node: {}", self.scope(e));
                let _ = writeln!(
                    s,
                    "  note: change it with `qm set {} --cpu {}` (takes effect at the next VM start)",
                    self.vm.vmid,
                    e.split_whitespace().next().unwrap_or(e)
                );
            }
        }
        s
    }

    /// One line for the source's migration log and the journal.
    #[must_use]
    pub fn one_line(&self) -> String {
        let verb = if self.allow { "allowed" } else { "refused" };
        let mut parts = vec![format!(
            "{verb} {} of {} with {}",
            self.movement_text(),
            self.vm_text(),
            self.cpu_text()
        )];
        parts.extend(self.verdict.reasons.iter().map(ToString::to_string));
        if !self.allow {
            parts.extend(self.verdict.unknown.iter().map(|u| format!("unknown: {u}")));
        }
        parts.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        if !self.allow {
            let accept = if self.accepting.is_empty() {
                "none".to_string()
            } else {
                self.accepting.join(", ")
            };
            parts.push(format!("would accept: {accept}"));
            if let Fix::NoCpuType(why) = fix::fix(&self.verdict) {
                parts.push(format!("no CPU type can fix this: {why}"));
            } else if let Some(e) = &self.everywhere {
                parts.push(format!("works everywhere: {}", self.scope(e)));
            }
        }
        parts.join("; ")
    }
}

/// Adds `node` to the group of nodes that gave the same reason (a reason
/// that holds for half the cluster, such as "no usable KVM", is said once
/// with its nodes, not once per node), keeping the order they came in.
fn note_node_by_reason(groups: &mut Vec<(String, Vec<String>)>, node: &str, why: String) {
    match groups.iter_mut().find(|(w, _)| *w == why) {
        Some((_, nodes)) => nodes.push(node.to_string()),
        None => groups.push((why, vec![node.to_string()])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_hosts::kvm_host as cap;
    use crate::guard::fleet::FleetNode;
    use crate::pve::custom_models::CustomModels;

    fn fleet() -> Fleet {
        let mut f = Fleet::default();
        for (name, vendor, level) in [
            ("a", "GenuineIntel", "x86-64-v4"),
            ("b", "GenuineIntel", "x86-64-v3"),
            ("c", "GenuineIntel", "x86-64-v4"),
        ] {
            f.upsert(FleetNode::known(name, cap(vendor, level), 5));
        }
        f
    }

    fn vm() -> VmLabel {
        VmLabel {
            vmid: "100".into(),
            name: Some("db".into()),
        }
    }

    #[test]
    fn refusal_lists_accepting_nodes_and_the_baseline() {
        let f = fleet();
        let d = arrive(&f, "b", "x86-64-v4", Movement::Live { source: "a" });
        assert!(!d.allow);
        assert_eq!(d.accepting, vec!["c"]);
        assert_eq!(d.everywhere.as_deref(), Some("x86-64-v3"));
        assert!(
            d.one_line()
                .contains("would accept: c; works everywhere: x86-64-v3"),
            "{}",
            d.one_line()
        );
    }

    #[test]
    fn vendor_change_refusal_suggests_no_cpu_type_but_names_accepting_nodes() {
        let mut f = fleet();
        f.upsert(FleetNode::known("d", cap("AuthenticAMD", "x86-64-v4"), 5));
        let d = arrive(&f, "d", "x86-64-v3", Movement::Live { source: "a" });
        assert!(!d.allow);
        assert_eq!(d.verdict.reasons[0].code(), "vendor-change");
        let text = d.explain();
        assert!(!text.contains("qm set"), "{text}");
        assert!(text.contains("nodes that would accept it: b, c"), "{text}");
        assert!(
            text.contains(
                "no CPU type can fix this: the running guest sees the GenuineIntel vendor"
            ),
            "{text}"
        );
        assert!(
            !d.one_line().contains("works everywhere"),
            "{}",
            d.one_line()
        );
        assert!(
            d.one_line().contains("no CPU type can fix this"),
            "{}",
            d.one_line()
        );
    }

    #[test]
    fn unknown_follows_the_policy() {
        let f = fleet();
        let none = CustomModels::default();
        let req = specs("NoSuchCPU", &none);
        let target = f.capability("b").unwrap();
        let d = decide(
            &vm(),
            &req,
            "b",
            target,
            Movement::Start,
            &f,
            Rules::default(),
        );
        assert!(d.allow);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.contains("allowed without proof")));
        let strict = Rules {
            policy: Policy::Strict,
            ..Rules::default()
        };
        assert!(!decide(&vm(), &req, "b", target, Movement::Start, &f, strict).allow);
    }

    /// The decision for an ordinary start of a `cpu` VM on `node`.
    fn start_on(f: &Fleet, node: &str, cpu: &str) -> Decision {
        arrive(f, node, cpu, Movement::Start)
    }

    /// The decision for a `cpu` VM arriving on `node` by `movement`.
    fn arrive(f: &Fleet, node: &str, cpu: &str, movement: Movement<'_>) -> Decision {
        let none = CustomModels::default();
        let req = specs(cpu, &none);
        let target = f.capability(node).unwrap();
        decide(&vm(), &req, node, target, movement, f, Rules::default())
    }

    /// A VM whose configuration is `cpu: VALUE` alone.
    fn specs<'a>(cpu: &str, custom: &'a CustomModels) -> VmSpecs<'a> {
        let spec = crate::cpu::launch::VmSpec {
            cpu: Some(cpu.to_string()),
            ..Default::default()
        };
        VmSpecs {
            next_start: spec.clone(),
            running: spec,
            custom,
            cold_start: None,
        }
    }

    #[test]
    fn start_warns_about_nodes_it_could_not_start_on() {
        let f = fleet();
        let d = start_on(&f, "a", "x86-64-v4");
        assert!(d.allow);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("cannot start on: b (missing flags")),
            "{:?}",
            d.warnings
        );
    }

    /// Nodes that cannot start the VM for the same reason are named
    /// together, the reason once: a start survey of a large cluster said
    /// "no usable KVM …" (five lines) once per node without KVM.
    #[test]
    fn nodes_with_the_same_reason_share_one_mention() {
        let mut f = fleet();
        for name in ["d", "e"] {
            f.upsert(FleetNode::known(name, cap("GenuineIntel", "x86-64-v3"), 5));
        }
        let d = start_on(&f, "a", "x86-64-v4");
        let w = d
            .warnings
            .iter()
            .find(|w| w.contains("cannot start on"))
            .unwrap();
        assert!(w.contains("cannot start on: b, d, e (missing flags"), "{w}");
        assert_eq!(w.matches("missing flags").count(), 1, "{w}");
    }

    #[test]
    fn cache_problems_become_warnings() {
        let mut f = fleet();
        f.problems.push("cluster.json is corrupt".into());
        let d = start_on(&f, "a", "x86-64-v3");
        assert!(d.allow);
        assert_eq!(d.warnings, vec!["cache: cluster.json is corrupt"]);
    }
}
