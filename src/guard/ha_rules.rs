//! HA node-affinity rules that keep Proxmox VE's HA stack on nodes a VM's
//! CPU can run on (issue: HA recovery chooses nodes by load and affinity,
//! never by CPU — `Manager.pm select_service_node`).
//!
//! Pure: the command reads the cache, the VMs, `ha/resources.cfg` and
//! `ha/rules.cfg`; this module computes, for every HA-managed VM, its
//! *allowed set* and the calls to `ha-manager rules …` that make the file
//! say so — and nothing else.
//!
//! The allowed set of a VM is every node where it can **start** (HA
//! recovery after fencing starts it fresh, so a `cpu: host` VM can be
//! recovered on every node), and among them the nodes to which it can
//! also **live-migrate from its current node** (HA `migrate` and the CRS
//! rebalancing move it live) are *preferred*. The rule writes the
//! preferred nodes at priority 2 and the other start-capable nodes at
//! priority 1: HA places and rebalances on the highest-priority available
//! nodes and falls back to lower ones only when none of those is up
//! (pve-ha-manager 5.2 `Manager.pm` `get_node_affinity`,
//! `select_service_node`). When every start-capable node is preferred the
//! rule has no priorities. Each node is decided by the same policy as the
//! hookscript ([`crate::guard::decision::allows`]: an unknown answer
//! counts as allowed under `policy default`, as refused under `strict`).
//! Its current node is always preferred. A VM that can start and
//! live-migrate everywhere gets no rule.
//!
//! Our rules are recognised by both an id prefix ([`ID_PREFIX`]) and a
//! comment prefix ([`COMMENT_PREFIX`]); every other rule is an
//! administrator's and is never changed. Proxmox accepts a resource in
//! only one node-affinity rule (`NodeAffinity.pm`), so a VM already in an
//! administrator's rule gets none of ours; if that rule lets HA pick a node
//! the VM cannot run on, it is reported as a [`Conflict`] with the exact
//! command that fixes it.

use std::collections::{BTreeMap, BTreeSet};

use crate::guard::audit::{Audit, Cell};
use crate::guard::decision::{self as guard, Rules};
use crate::pve::ha_rules::{nodes_value, Rule};
use crate::pve::paths::VmId;

/// Ids of our rules start with this.
pub const ID_PREFIX: &str = "cpuguard-";

/// Comments of our rules start with this.
pub const COMMENT_PREFIX: &str = "pve-cpuguard:";

/// The comment every rule of ours carries: it states what the nodes are.
pub const COMMENT: &str = "pve-cpuguard: the nodes where the CPU of these VMs can start; priority 2: it can also live-migrate there from its current node (kept by pve-cpuguard ha-rules, do not edit)";

/// Priority of the nodes a VM can start on and live-migrate to, when
/// some start-capable node takes no live migration.
pub const PREFERRED: u32 = 2;

/// Priority of the nodes a VM can only start on (HA recovery, a cold
/// start).
pub const START_ONLY: u32 = 1;

/// A rule's `nodes`: name → priority (`None`: none written).
pub type Nodes = BTreeMap<String, Option<u32>>;

/// Where one VM may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Nodes where it can start (its current node included).
    pub start: BTreeSet<String>,
    /// Those to which it can also live-migrate from its current node (its
    /// current node included); a subset of `start`.
    pub live: BTreeSet<String>,
}

impl Placement {
    /// The `nodes` of its rule: without priorities when every
    /// start-capable node takes a live migration, else [`PREFERRED`] for
    /// those that do and [`START_ONLY`] for the others.
    #[must_use]
    pub fn nodes(&self) -> Nodes {
        let flat = self.live == self.start;
        self.start
            .iter()
            .map(|n| {
                let p = if flat {
                    None
                } else if self.live.contains(n) {
                    Some(PREFERRED)
                } else {
                    Some(START_ONLY)
                };
                (n.clone(), p)
            })
            .collect()
    }
}

/// Whether `rule` is one of ours.
#[must_use]
pub fn is_ours(rule: &Rule) -> bool {
    rule.id.starts_with(ID_PREFIX)
        && rule
            .comment
            .as_deref()
            .is_some_and(|c| c.starts_with(COMMENT_PREFIX))
}

/// Where each HA-managed VM may go, from the audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Every node of the cluster, sorted.
    pub nodes: BTreeSet<String>,
    /// VM → nodes it may be started on, and live-migrated to.
    pub vms: BTreeMap<VmId, Placement>,
    /// HA-managed VMs that cannot be judged (config unreadable), with why:
    /// they keep whatever rule they are in.
    pub unjudged: BTreeMap<VmId, String>,
}

/// Whether one cell of the audit lets the VM go there, as the hook would
/// decide it ([`guard::allows`]; a node without data by the policy). The
/// one reading of a cell that `ha-rules` and `plan` share.
#[must_use]
pub fn cell_allows(c: Cell<'_>, rules: Rules) -> bool {
    match c {
        Cell::Yes => true,
        Cell::No(_) => false,
        Cell::Unknown(Some(v)) => guard::allows(v, rules),
        // No data for the node: the hook decides such a start by policy.
        Cell::Unknown(None) => rules.policy != crate::conf::config::Policy::Strict,
    }
}

/// The allowed set of every HA-managed VM of the audit.
#[must_use]
pub fn allowed(audit: &Audit<'_>, rules: Rules) -> Allowed {
    let fleet = audit.fleet;
    let ok = |c: Cell<'_>| cell_allows(c, rules);
    let mut out = Allowed {
        nodes: fleet.nodes.iter().map(|n| n.name.clone()).collect(),
        ..Allowed::default()
    };
    for a in audit.vms.iter().filter(|a| a.ha) {
        if let Some(e) = &a.error {
            out.unjudged.insert(a.vmid, e.clone());
            continue;
        }
        let mut p = Placement::default();
        for n in 0..fleet.nodes.len() {
            let name = &fleet.nodes[n].name;
            if Some(n) == a.owner {
                p.start.insert(name.clone());
                p.live.insert(name.clone());
            } else if ok(audit.start_cell(a, n)) {
                p.start.insert(name.clone());
                if ok(audit.live_cell(a, n)) {
                    p.live.insert(name.clone());
                }
            }
        }
        out.vms.insert(a.vmid, p);
    }
    out
}

/// One `ha-manager` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `rules add node-affinity ID …`.
    Add(Desired),
    /// `rules set node-affinity ID …`.
    Set(Desired),
    /// `rules remove ID`.
    Remove(String),
}

impl Call {
    /// The exact arguments after the `ha-manager` binary
    /// (`src/PVE/CLI/ha_manager.pm`: `rules add|set <type> <rule>`,
    /// `rules remove <rule>`).
    #[must_use]
    pub fn argv(&self) -> Vec<String> {
        let (verb, d) = match self {
            Call::Remove(id) => return vec!["rules".into(), "remove".into(), id.clone()],
            Call::Add(d) => ("add", d),
            Call::Set(d) => ("set", d),
        };
        let resources: Vec<String> = d.resources.iter().map(|v| format!("vm:{v}")).collect();
        vec![
            "rules".into(),
            verb.into(),
            "node-affinity".into(),
            d.id.clone(),
            "--resources".into(),
            resources.join(","),
            "--nodes".into(),
            d.nodes_value(),
            "--strict".into(),
            "1".into(),
            "--comment".into(),
            COMMENT.into(),
        ]
    }
}

/// A rule of ours as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Rule id.
    pub id: String,
    /// The VMs.
    pub resources: BTreeSet<VmId>,
    /// The nodes they may run on, with their priorities.
    pub nodes: Nodes,
}

impl Desired {
    /// `n1:2,n2:1` as `--nodes` takes it.
    #[must_use]
    pub fn nodes_value(&self) -> String {
        let v: Vec<(String, Option<u32>)> = self.nodes.clone().into_iter().collect();
        nodes_value(&v)
    }
}

/// An administrator's rule that lets HA pick a node some of its VMs
/// cannot run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The rule id.
    pub id: String,
    /// Line of its header in rules.cfg.
    pub line: usize,
    /// VM → nodes the rule allows but the VM cannot run on.
    pub bad: BTreeMap<VmId, BTreeSet<String>>,
    /// The rule is not strict: HA may fall back to any node.
    pub not_strict: bool,
    /// The `ha-manager` arguments that fix it, when some node is left.
    pub fix: Option<Vec<String>>,
}

/// What `ha-rules` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The calls, in order: shrinking and removals first, so that no VM is
    /// ever in two node-affinity rules at once.
    pub calls: Vec<Call>,
    /// The rules of ours as they are after the calls.
    pub rules: Vec<Desired>,
    /// Administrators' rules to change.
    pub conflicts: Vec<Conflict>,
    /// HA VMs left to an administrator's rule (VM → rule id).
    pub in_admin_rule: BTreeMap<VmId, String>,
}

/// A stable id for a rule's `nodes`: FNV-1a of the sorted entries as
/// `--nodes` writes them (`n1:2`, or `n1` without priority), so the same
/// nodes give the same id on every node and every run, and a set without
/// priorities keeps the id it had before priorities were written.
#[must_use]
pub fn rule_id(nodes: &Nodes) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let entries = nodes.iter().map(|(n, p)| match p {
        Some(p) => format!("{n}:{p}"),
        None => n.clone(),
    });
    for b in entries.flat_map(|e| e.into_bytes().into_iter().chain([b','])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{ID_PREFIX}{:012x}", h >> 16)
}

fn vm_of(resource: &str) -> Option<VmId> {
    resource.strip_prefix("vm:")?.parse().ok()
}

/// Plans the calls that bring rules.cfg to the allowed sets.
#[must_use]
pub fn plan(allowed: &Allowed, existing: &[Rule]) -> Plan {
    let mut out = Plan::default();

    // Administrators' node-affinity rules: their VMs get none of ours.
    for rule in existing
        .iter()
        .filter(|r| r.is_node_affinity() && !is_ours(r))
    {
        let mut bad = BTreeMap::new();
        let mut keep: BTreeSet<String> = rule.nodes.iter().map(|(n, _)| n.clone()).collect();
        let mut loose = false;
        for vmid in rule.resources.iter().filter_map(|r| vm_of(r)) {
            out.in_admin_rule.insert(vmid, rule.id.clone());
            let Some(set) = allowed.vms.get(&vmid).map(|p| &p.start) else {
                continue;
            };
            let cannot: BTreeSet<String> = rule
                .nodes
                .iter()
                .map(|(n, _)| n)
                .filter(|n| !set.contains(*n))
                .cloned()
                .collect();
            keep.retain(|n| set.contains(n));
            loose |= !rule.strict && *set != allowed.nodes;
            if !cannot.is_empty() {
                bad.insert(vmid, cannot);
            }
        }
        if rule.disabled || (bad.is_empty() && !loose) {
            continue;
        }
        let fix = (!keep.is_empty()).then(|| {
            let nodes: Vec<(String, Option<u32>)> = rule
                .nodes
                .iter()
                .filter(|(n, _)| keep.contains(n))
                .cloned()
                .collect();
            vec![
                "rules".into(),
                "set".into(),
                "node-affinity".into(),
                rule.id.clone(),
                "--nodes".into(),
                nodes_value(&nodes),
                "--strict".into(),
                "1".into(),
            ]
        });
        out.conflicts.push(Conflict {
            id: rule.id.clone(),
            line: rule.line,
            bad,
            not_strict: loose,
            fix,
        });
    }

    // Our rules as they should be: one per distinct set of nodes and
    // priorities, short of starting and live-migrating everywhere.
    let mut groups: BTreeMap<Nodes, BTreeSet<VmId>> = BTreeMap::new();
    for (vmid, p) in &allowed.vms {
        if out.in_admin_rule.contains_key(vmid)
            || p.start.is_empty()
            || (p.start == allowed.nodes && p.live == p.start)
        {
            continue;
        }
        groups.entry(p.nodes()).or_default().insert(*vmid);
    }
    let mut desired: BTreeMap<String, Desired> = BTreeMap::new();
    for (set, vms) in groups {
        let base = rule_id(&set);
        let mut id = base.clone();
        let mut k = 1;
        while desired.contains_key(&id) {
            // A hash collision between two different sets (never seen,
            // but never merge two sets): a deterministic suffix.
            k += 1;
            id = format!("{base}-{k}");
        }
        desired.insert(
            id.clone(),
            Desired {
                id,
                resources: vms,
                nodes: set,
            },
        );
    }

    // Unjudged VMs stay where they are: keep them in our rule they are in.
    let ours: Vec<&Rule> = existing.iter().filter(|r| is_ours(r)).collect();
    for r in &ours {
        for vmid in r.resources.iter().filter_map(|s| vm_of(s)) {
            if allowed.unjudged.contains_key(&vmid) {
                if let Some(d) = desired.get_mut(&r.id) {
                    d.resources.insert(vmid);
                } else {
                    desired.insert(
                        r.id.clone(),
                        Desired {
                            id: r.id.clone(),
                            resources: BTreeSet::from([vmid]),
                            nodes: r.nodes.iter().cloned().collect(),
                        },
                    );
                }
            }
        }
    }

    // Phase 1: shrink or remove our rules that lose resources.
    let mut after: BTreeMap<String, Desired> = BTreeMap::new();
    for r in &ours {
        let current: BTreeSet<VmId> = r.resources.iter().filter_map(|s| vm_of(s)).collect();
        let foreign = r.resources.iter().any(|s| vm_of(s).is_none());
        let Some(d) = desired.get(&r.id) else {
            out.calls.push(Call::Remove(r.id.clone()));
            continue;
        };
        let keep: BTreeSet<VmId> = current.intersection(&d.resources).copied().collect();
        if keep.is_empty() {
            out.calls.push(Call::Remove(r.id.clone()));
            continue;
        }
        let now = Desired {
            id: r.id.clone(),
            resources: current,
            nodes: r.nodes.iter().cloned().collect(),
        };
        // Priorities are compared in `now != d` below (phase 2).
        let exact = r.strict && r.comment.as_deref() == Some(COMMENT) && !foreign;
        if keep != now.resources || foreign {
            let step = Desired {
                id: r.id.clone(),
                resources: keep,
                nodes: d.nodes.clone(),
            };
            out.calls.push(Call::Set(step.clone()));
            after.insert(r.id.clone(), step);
        } else if exact {
            after.insert(r.id.clone(), now);
        } else {
            // Same VMs, but something else differs (an edited comment,
            // strict 0): phase 2 sets it whole.
            after.insert(
                r.id.clone(),
                Desired {
                    nodes: Nodes::new(),
                    ..now
                },
            );
        }
    }
    // Phase 2: grow, add, or correct.
    for d in desired.values() {
        match after.get(&d.id) {
            None => out.calls.push(Call::Add(d.clone())),
            Some(now) if now != d => out.calls.push(Call::Set(d.clone())),
            Some(_) => {}
        }
    }
    out.rules = desired.into_values().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::ha_rules;
    use std::path::Path;

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|s| (*s).to_string()).collect()
    }

    /// Nodes without priorities.
    fn flat(nodes: &[&str]) -> Nodes {
        nodes.iter().map(|s| ((*s).to_string(), None)).collect()
    }

    fn same(nodes: BTreeSet<String>) -> Placement {
        Placement {
            live: nodes.clone(),
            start: nodes,
        }
    }

    /// VMs that start and live-migrate on the same nodes.
    fn allowed(vms: &[(u32, &[&str])]) -> Allowed {
        Allowed {
            nodes: set(&["a", "b", "c"]),
            vms: vms.iter().map(|(v, n)| (VmId(*v), same(set(n)))).collect(),
            unjudged: BTreeMap::new(),
        }
    }

    fn rules(text: &str) -> Vec<Rule> {
        ha_rules::parse(text, Path::new("rules.cfg")).unwrap()
    }

    fn ours(id: &str, res: &str, nodes: &str) -> String {
        format!("node-affinity: {id}\n\tresources {res}\n\tnodes {nodes}\n\tstrict 1\n\tcomment {COMMENT}\n\n")
    }

    #[test]
    fn groups_vms_by_set_and_skips_the_unconstrained() {
        let a = allowed(&[
            (100, &["a", "b"]),
            (101, &["a", "b"]),
            (102, &["a", "b", "c"]),
            (103, &["c"]),
        ]);
        let p = plan(&a, &[]);
        assert_eq!(p.calls.len(), 2);
        let args: Vec<Vec<String>> = p.calls.iter().map(Call::argv).collect();
        assert!(
            args.iter()
                .any(|v| v[5] == "vm:100,vm:101" && v[7] == "a,b"),
            "{args:?}"
        );
        assert!(
            args.iter().any(|v| v[5] == "vm:103" && v[7] == "c"),
            "{args:?}"
        );
        assert!(args
            .iter()
            .all(|v| v[1] == "add" && v[3].starts_with(ID_PREFIX)));
    }

    #[test]
    fn second_run_makes_no_call() {
        let a = allowed(&[(100, &["a", "b"]), (101, &["a", "b"])]);
        let p = plan(&a, &[]);
        let id = p.rules[0].id.clone();
        let file = ours(&id, "vm:100,vm:101", "a,b");
        assert_eq!(plan(&a, &rules(&file)).calls, []);
        // Order in the file does not matter.
        let file = ours(&id, "vm:101,vm:100", "b,a");
        assert_eq!(plan(&a, &rules(&file)).calls, []);
    }

    #[test]
    fn moving_a_vm_shrinks_before_it_grows() {
        let a = allowed(&[(100, &["a", "b"]), (101, &["a"]), (102, &["a"])]);
        let ab = rule_id(&flat(&["a", "b"]));
        let only_a = rule_id(&flat(&["a"]));
        let file = ours(&ab, "vm:100,vm:101", "a,b") + &ours(&only_a, "vm:102", "a");
        let p = plan(&a, &rules(&file));
        let args: Vec<String> = p.calls.iter().map(|c| c.argv()[..6].join(" ")).collect();
        assert_eq!(
            args,
            [
                format!("rules set node-affinity {ab} --resources vm:100"),
                format!("rules set node-affinity {only_a} --resources vm:101,vm:102"),
            ]
        );
    }

    #[test]
    fn admin_rules_are_left_alone_and_conflicts_name_the_fix() {
        let a = allowed(&[(100, &["a", "b"]), (101, &["a", "b", "c"])]);
        let file =
            "node-affinity: mine\n\tresources vm:100,vm:101\n\tnodes a:2,b:1,c\n\tstrict 1\n";
        let p = plan(&a, &rules(file));
        assert_eq!(p.calls, []);
        assert_eq!(p.conflicts.len(), 1);
        let c = &p.conflicts[0];
        assert_eq!(c.bad[&VmId(100)], set(&["c"]));
        assert_eq!(
            c.fix.as_ref().unwrap().join(" "),
            "rules set node-affinity mine --nodes a:2,b:1 --strict 1"
        );
        // A non-strict admin rule lets HA fall back anywhere: a conflict too.
        let file = "node-affinity: loose\n\tresources vm:100\n\tnodes a\n";
        let p = plan(&a, &rules(file));
        assert!(p.conflicts[0].not_strict && p.conflicts[0].bad.is_empty());
    }

    #[test]
    fn vm_leaving_ha_is_dropped_and_empty_rules_removed() {
        let ab = rule_id(&flat(&["a", "b"]));
        let file = ours(&ab, "vm:100,vm:101", "a,b");
        let p = plan(&allowed(&[(100, &["a", "b"])]), &rules(&file));
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].argv()[5], "vm:100");
        let p = plan(&allowed(&[]), &rules(&file));
        assert_eq!(p.calls, [Call::Remove(ab)]);
    }

    #[test]
    fn an_edited_rule_of_ours_is_set_back() {
        let a = allowed(&[(100, &["a", "b"])]);
        let ab = rule_id(&flat(&["a", "b"]));
        let file = format!("node-affinity: {ab}\n\tresources vm:100\n\tnodes a,b\n\tcomment {COMMENT_PREFIX} edited\n");
        let p = plan(&a, &rules(&file));
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].argv()[1], "set");
        // Same id, no comment of ours: an administrator's rule.
        let file = format!("node-affinity: {ab}\n\tresources vm:100\n\tnodes a,b\n\tstrict 1\n");
        assert_eq!(plan(&a, &rules(&file)).calls, []);
    }

    #[test]
    fn start_only_nodes_are_in_the_rule_at_the_lower_priority() {
        // A `cpu: host` VM on a: it starts everywhere, live-migrates nowhere.
        let mut a = allowed(&[]);
        a.vms.insert(
            VmId(100),
            Placement {
                start: set(&["a", "b", "c"]),
                live: set(&["a"]),
            },
        );
        let p = plan(&a, &[]);
        assert_eq!(p.calls.len(), 1);
        let argv = p.calls[0].argv();
        assert_eq!(argv[5..9], ["vm:100", "--nodes", "a:2,b:1,c:1", "--strict"]);
        let id = &argv[3];
        assert_eq!(
            *id,
            rule_id(&Nodes::from([
                ("a".into(), Some(2)),
                ("b".into(), Some(1)),
                ("c".into(), Some(1))
            ]))
        );
        assert_ne!(*id, rule_id(&flat(&["a", "b", "c"])));
        // As ha-manager writes it back (its own order): no further call.
        let file = ours(id, "vm:100", "b:1,a:2,c:1");
        assert_eq!(plan(&a, &rules(&file)).calls, []);
        // The same nodes without priorities: set again.
        let file = ours(id, "vm:100", "a,b,c");
        let p = plan(&a, &rules(&file));
        assert_eq!(p.calls.len(), 1);
        assert_eq!(p.calls[0].argv()[1], "set");
        assert_eq!(p.calls[0].argv()[7], "a:2,b:1,c:1");
    }

    #[test]
    fn admin_rules_conflict_only_on_nodes_a_vm_cannot_start_on() {
        let mut a = allowed(&[]);
        a.vms.insert(
            VmId(100),
            Placement {
                start: set(&["a", "b"]),
                live: set(&["a"]),
            },
        );
        let file = "node-affinity: mine\n\tresources vm:100\n\tnodes a,b\n\tstrict 1\n";
        assert_eq!(plan(&a, &rules(file)).conflicts, []);
        let file = "node-affinity: mine\n\tresources vm:100\n\tnodes a,b,c\n\tstrict 1\n";
        let p = plan(&a, &rules(file));
        assert_eq!(p.conflicts[0].bad[&VmId(100)], set(&["c"]));
        assert_eq!(p.calls, []);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(rule_id(&flat(&["a", "b"])), rule_id(&flat(&["b", "a"])));
        // Without priorities, the id of the plain set (as before them).
        assert_eq!(rule_id(&flat(&["a", "b"])), "cpuguard-587e57826f60");
        assert_ne!(rule_id(&flat(&["a", "b"])), rule_id(&flat(&["ab"])));
        assert!(rule_id(&flat(&["a"])).len() == ID_PREFIX.len() + 12);
    }

    /// Applies calls to a model of rules.cfg as ha-manager would.
    fn apply(rules: &mut Vec<Rule>, call: &Call) {
        let to_rule = |d: &Desired| Rule {
            kind: "node-affinity".into(),
            id: d.id.clone(),
            line: 1,
            resources: d.resources.iter().map(|v| format!("vm:{v}")).collect(),
            nodes: d.nodes.clone().into_iter().collect(),
            strict: true,
            disabled: false,
            comment: Some(COMMENT.into()),
        };
        match call {
            Call::Add(d) => {
                assert!(rules.iter().all(|r| r.id != d.id), "add of an existing id");
                rules.push(to_rule(d));
            }
            Call::Set(d) => {
                let r = rules
                    .iter_mut()
                    .find(|r| r.id == d.id)
                    .expect("set of a missing id");
                *r = to_rule(d);
            }
            Call::Remove(id) => {
                let n = rules.len();
                rules.retain(|r| r.id != *id);
                assert_eq!(rules.len() + 1, n, "remove of a missing id");
            }
        }
    }

    fn node_sets() -> impl Strategy<Value = BTreeSet<String>> {
        proptest::collection::btree_set(
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
            1..=4,
        )
        .prop_map(|s| s.into_iter().map(str::to_string).collect())
    }

    /// A start set and, within it, a live set (never empty: the current
    /// node is in both).
    fn placements() -> impl Strategy<Value = Placement> {
        (node_sets(), node_sets()).prop_map(|(start, other)| {
            let mut live: BTreeSet<String> = start.intersection(&other).cloned().collect();
            if live.is_empty() {
                live.extend(start.iter().next().cloned());
            }
            Placement { start, live }
        })
    }

    use proptest::prelude::*;

    proptest! {
        /// From any state reached by our own calls, any new allowed sets
        /// are reached without a VM ever in two node-affinity rules, and a
        /// second plan makes no call.
        #[test]
        fn converges_without_overlap(
            before in proptest::collection::btree_map(100u32..112, placements(), 0..10),
            after in proptest::collection::btree_map(100u32..112, placements(), 0..10),
            admin_vms in proptest::collection::btree_set(100u32..112, 0..3),
        ) {
            let all = set(&["a", "b", "c", "d"]);
            let mut file: Vec<Rule> = Vec::new();
            if !admin_vms.is_empty() {
                file.push(Rule {
                    kind: "node-affinity".into(),
                    id: "admins".into(),
                    line: 1,
                    resources: admin_vms.iter().map(|v| format!("vm:{v}")).collect(),
                    nodes: vec![("a".into(), Some(2)), ("b".into(), None)],
                    strict: true,
                    disabled: false,
                    comment: None,
                });
            }
            for target in [before, after] {
                let allowed = Allowed {
                    nodes: all.clone(),
                    vms: target.iter().map(|(v, s)| (VmId(*v), s.clone())).collect(),
                    unjudged: BTreeMap::new(),
                };
                let p = plan(&allowed, &file);
                for call in &p.calls {
                    apply(&mut file, call);
                    let mut seen = BTreeSet::new();
                    for r in file.iter().filter(|r| r.is_node_affinity()) {
                        for res in &r.resources {
                            prop_assert!(seen.insert(res.clone()), "{res} in two rules after {call:?}");
                        }
                    }
                }
                prop_assert_eq!(plan(&allowed, &file).calls, Vec::<Call>::new());
                // Every constrained VM outside the admin rule is in exactly
                // the rule of its set.
                for (vmid, s) in &allowed.vms {
                    if admin_vms.contains(&vmid.0) || (s.start == all && s.live == all) {
                        continue;
                    }
                    let r = file.iter().find(|r| r.resources.contains(&format!("vm:{vmid}")));
                    prop_assert_eq!(r.map(|r| r.id.clone()), Some(rule_id(&s.nodes())));
                    // Every start-capable node is in its rule: HA can recover
                    // it on each; the live ones at the highest priority.
                    let r = r.unwrap();
                    let top = r.nodes.iter().filter_map(|(_, p)| *p).max();
                    for (n, p) in &r.nodes {
                        prop_assert!(s.start.contains(n));
                        prop_assert_eq!(s.live.contains(n), top.is_none() || *p == top);
                    }
                    prop_assert_eq!(r.nodes.len(), s.start.len());
                }
            }
        }
    }
}
