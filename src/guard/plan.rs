//! `plan`: a what-if over the cluster, changing nothing. The changes (a
//! node added or removed, VMs given another `cpu:`) are applied to the
//! audit's inputs ([`crate::guard::audit_input::Gathered`]), and the audit
//! runs on both: "before" is the audit of the cluster as it is, "after" is
//! the audit of the changed inputs — the same verdict, no second model.
//!
//! A `cpu:` change is judged as it is after the VM's next cold start (a
//! `qm set` of a running VM waits in `[PENDING]`, and a live migration
//! keeps the CPU the guest runs with): the pending section is applied, the
//! new value set, and the running record dropped.
//!
//! Pure: the command reads the files and the new nodes' CPUs.

use std::collections::{BTreeMap, BTreeSet};

use crate::cpu::capability::Capability;
use crate::cpu::cpudata;
use crate::cpu::custom_models::CustomModels;
use crate::cpu::level::LADDER;
use crate::cpu::requirement::{self, GuestCpu};
use crate::guard::audit::{Audit, Cell, VmAudit};
use crate::guard::audit_input::Gathered;
use crate::guard::fleet::{Fleet, FleetNode};
use crate::guard::ha_rules::{self, Allowed};
use crate::pve::ha_rules::Rule;
use crate::pve::paths::VmId;
use crate::pve::vmconf::VmConfig;

/// What to change, all at once.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Nodes to add (new names: the command refuses a name the cluster
    /// has, or one given twice).
    pub add: Vec<FleetNode>,
    /// Nodes to remove.
    pub remove: Vec<String>,
    /// VM → its new `cpu:` value.
    pub set_cpu: BTreeMap<VmId, String>,
    /// Every other VM's new `cpu:` value.
    pub set_cpu_all: Option<String>,
}

impl Changes {
    /// Whether nothing changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.remove.is_empty()
            && self.set_cpu.is_empty()
            && self.set_cpu_all.is_none()
    }

    /// The new `cpu:` of VM `vmid`, if it gets one (`--set-cpu` wins over
    /// `--set-cpu-all`).
    #[must_use]
    pub fn cpu_for(&self, vmid: VmId) -> Option<&str> {
        self.set_cpu
            .get(&vmid)
            .or(self.set_cpu_all.as_ref())
            .map(String::as_str)
    }
}

/// VM `conf` as it is after a cold start with `cpu` as its `cpu:`.
#[must_use]
pub fn with_cpu(conf: &VmConfig, cpu: &str) -> VmConfig {
    let mut c = conf.with_pending();
    c.cpu = Some(cpu.to_string());
    // A cold start boots afresh: no saved state resumes.
    c.vmstate = None;
    c.runningcpu = None;
    c
}

/// The audit's inputs with `changes` applied.
#[must_use]
pub fn changed(g: &Gathered, changes: &Changes) -> Gathered {
    let mut out = g.clone();
    out.fleet = changed_fleet(&g.fleet, changes);
    for vm in &mut out.vms {
        let Some(cpu) = changes.cpu_for(vm.vmid) else {
            continue;
        };
        if let Ok(conf) = &vm.config {
            vm.config = Ok(with_cpu(conf, cpu));
            vm.running = None;
        }
    }
    out
}

/// The fleet with nodes removed, then added.
#[must_use]
pub fn changed_fleet(fleet: &Fleet, changes: &Changes) -> Fleet {
    let mut out = fleet.clone();
    out.nodes.retain(|n| !changes.remove.contains(&n.name));
    for n in &changes.add {
        out.upsert(n.clone());
    }
    out
}

/// Where one VM can go: nodes it can start on, nodes it can live-migrate
/// to from where its guest runs (its own node left out), by the audit's
/// verdicts. A node whose verdict is unknown (or that has no data) is in
/// neither: it is in `start_unknown`/`live_unknown`, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Nodes it can start on.
    pub start: BTreeSet<String>,
    /// Nodes it can live-migrate to.
    pub live: BTreeSet<String>,
    /// Nodes where its start cannot be judged → why.
    pub start_unknown: BTreeMap<String, String>,
    /// Nodes where its live migration cannot be judged → why.
    pub live_unknown: BTreeMap<String, String>,
}

/// Why a cell is unknown, in one line.
fn unknown_why(a: &Audit<'_>, i: usize, c: &Cell<'_>) -> Option<String> {
    match c {
        Cell::Unknown(Some(v)) => Some(if v.unknown.is_empty() {
            "cannot be judged".into()
        } else {
            v.unknown.join("; ")
        }),
        Cell::Unknown(None) => Some(
            a.fleet.nodes[i]
                .freshness
                .why()
                .filter(|_| a.fleet.nodes[i].capability().is_none())
                .unwrap_or_else(|| "no usable data".into()),
        ),
        _ => None,
    }
}

/// Where VM `vm` of audit `a` can go.
#[must_use]
pub fn reach(a: &Audit<'_>, vm: &VmAudit) -> Reach {
    let mut r = Reach::default();
    for (i, n) in a.fleet.nodes.iter().enumerate() {
        let c = a.start_cell(vm, i);
        if matches!(c, Cell::Yes) {
            r.start.insert(n.name.clone());
        } else if let Some(why) = unknown_why(a, i, &c) {
            r.start_unknown.insert(n.name.clone(), why);
        }
        if n.name == vm.node {
            continue;
        }
        let c = a.live_cell(vm, i);
        if matches!(c, Cell::Yes) {
            r.live.insert(n.name.clone());
        } else if let Some(why) = unknown_why(a, i, &c) {
            r.live_unknown.insert(n.name.clone(), why);
        }
    }
    r
}

/// Whether `r` reaches every node of `a` (start, and live migration from
/// `node`): `Some(false)` when some node is refused, `None` when none is
/// but some cannot be judged.
fn everywhere(a: &Audit<'_>, r: &Reach, node: &str) -> Option<bool> {
    let refused = a.fleet.nodes.iter().any(|n| {
        (!r.start.contains(&n.name) && !r.start_unknown.contains_key(&n.name))
            || (n.name != node
                && !r.live.contains(&n.name)
                && !r.live_unknown.contains_key(&n.name))
    });
    if refused {
        Some(false)
    } else if r.start_unknown.is_empty() && r.live_unknown.is_empty() {
        Some(true)
    } else {
        None
    }
}

/// The cluster's level and best common named model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Every node.
    pub nodes: Vec<String>,
    /// [`Fleet::baseline`].
    pub level: Option<&'static str>,
    /// [`crate::cpu::baseline::compute`]'s model.
    pub model: Option<String>,
    /// Nodes without data: `level` and `model` hold on the others only,
    /// and are no claim for the cluster ([`super::scope`]).
    pub unscanned: Vec<String>,
}

/// The view of `fleet`.
#[must_use]
pub fn cluster_view(fleet: &Fleet) -> ClusterView {
    let known: Vec<(String, Capability)> = fleet
        .known()
        .map(|(n, c)| (n.to_string(), c.clone()))
        .collect();
    ClusterView {
        nodes: fleet.nodes.iter().map(|n| n.name.clone()).collect(),
        level: fleet.baseline(),
        model: crate::cpu::baseline::compute(&known).model,
        unscanned: fleet
            .without_data()
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

/// One VM, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPlan {
    /// VMID.
    pub vmid: VmId,
    /// `name:`.
    pub name: Option<String>,
    /// The node its config is on.
    pub node: String,
    /// Whether that node is removed by the plan (the VM must move first).
    pub node_removed: bool,
    /// `cpu:` before (as the next cold start has it).
    pub cpu_before: String,
    /// `cpu:` after.
    pub cpu_after: String,
    /// Where it can go now.
    pub before: Reach,
    /// Where it can go after the changes.
    pub after: Reach,
    /// Whether it can start on and live-migrate to every node, now
    /// (`None`: no node refuses it, but some cannot be judged).
    pub movable_before: Option<bool>,
    /// The same, after.
    pub movable_after: Option<bool>,
}

/// Nodes in `to` that are neither in `from` nor unknown in `from_unknown`.
fn gained(
    from: &BTreeSet<String>,
    from_unknown: &BTreeMap<String, String>,
    to: &BTreeSet<String>,
) -> Vec<String> {
    to.iter()
        .filter(|n| !from.contains(*n) && !from_unknown.contains_key(*n))
        .cloned()
        .collect()
}

impl VmPlan {
    /// Nodes it could not start on before (refused, or not in the
    /// cluster) and can after; a node unknown before is no gain.
    #[must_use]
    pub fn start_gained(&self) -> Vec<String> {
        gained(
            &self.before.start,
            &self.before.start_unknown,
            &self.after.start,
        )
    }
    /// Nodes it could start on before and cannot after (removed nodes
    /// included); a node unknown after is not lost, but unknown.
    #[must_use]
    pub fn start_lost(&self) -> Vec<String> {
        gained(
            &self.after.start,
            &self.after.start_unknown,
            &self.before.start,
        )
    }
    /// Nodes it can live-migrate to after, not before.
    #[must_use]
    pub fn live_gained(&self) -> Vec<String> {
        gained(
            &self.before.live,
            &self.before.live_unknown,
            &self.after.live,
        )
    }
    /// Nodes it could live-migrate to before, not after.
    #[must_use]
    pub fn live_lost(&self) -> Vec<String> {
        gained(
            &self.after.live,
            &self.after.live_unknown,
            &self.before.live,
        )
    }
    /// Nodes where its start cannot be judged after, that could before
    /// (or were not in the cluster), with why.
    #[must_use]
    pub fn start_newly_unknown(&self) -> Vec<(String, String)> {
        newly(&self.before.start_unknown, &self.after.start_unknown)
    }
    /// The same for live migration.
    #[must_use]
    pub fn live_newly_unknown(&self) -> Vec<(String, String)> {
        newly(&self.before.live_unknown, &self.after.live_unknown)
    }
    /// Whether what the plan does to it cannot be judged: nodes become
    /// unknown, or its `cpu:` changes while some node is unknown after
    /// (what it was there says nothing of what it will be).
    #[must_use]
    pub fn unjudged(&self) -> bool {
        let unknown_after =
            !self.after.start_unknown.is_empty() || !self.after.live_unknown.is_empty();
        !self.start_newly_unknown().is_empty()
            || !self.live_newly_unknown().is_empty()
            || (unknown_after && self.cpu_before != self.cpu_after)
    }
    /// Whether anything about it changes.
    #[must_use]
    pub fn changes(&self) -> bool {
        self.before != self.after || self.cpu_before != self.cpu_after
    }
}

fn newly(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    after
        .iter()
        .filter(|(n, _)| !before.contains_key(*n))
        .map(|(n, w)| (n.clone(), w.clone()))
        .collect()
}

/// A `qm set` the plan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmSet {
    /// VMID.
    pub vmid: VmId,
    /// The node to run it on (qm changes only its own node's VMs).
    pub node: String,
    /// The arguments after `qm`.
    pub argv: Vec<String>,
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cluster now.
    pub before: ClusterView,
    /// The cluster after.
    pub after: ClusterView,
    /// Nodes added.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
    /// Every node now, then every node added: their data's freshness.
    pub nodes: Vec<FleetNode>,
    /// Every VM, by VMID.
    pub vms: Vec<VmPlan>,
    /// HA-managed VMs: where `ha-rules` lets them go now.
    pub ha_before: Allowed,
    /// The same after.
    pub ha_after: Allowed,
    /// The `ha-manager` calls `ha-rules` would then run (as arguments).
    pub ha_calls: Vec<Vec<String>>,
    /// The calls `ha-rules` would run now, without the plan.
    pub ha_calls_now: Vec<Vec<String>>,
    /// The `qm set` commands of the `cpu:` changes.
    pub qm_set: Vec<QmSet>,
}

impl Plan {
    /// The `ha-manager` calls the plan adds to those pending now, and
    /// those pending now it makes unneeded.
    #[must_use]
    pub fn ha_calls_changed(&self) -> (Vec<&Vec<String>>, Vec<&Vec<String>>) {
        (
            self.ha_calls
                .iter()
                .filter(|c| !self.ha_calls_now.contains(c))
                .collect(),
            self.ha_calls_now
                .iter()
                .filter(|c| !self.ha_calls.contains(c))
                .collect(),
        )
    }

    /// VMs with no node to start on (every node refuses them), now and
    /// after.
    #[must_use]
    pub fn no_start(&self) -> (Vec<VmId>, Vec<VmId>) {
        let pick = |f: &dyn Fn(&VmPlan) -> bool| {
            self.vms.iter().filter(|v| f(v)).map(|v| v.vmid).collect()
        };
        (
            pick(&|v| v.before.start.is_empty() && v.before.start_unknown.is_empty()),
            pick(&|v| v.after.start.is_empty() && v.after.start_unknown.is_empty()),
        )
    }

    /// VMs with no node to live-migrate to, now and after (in a cluster of
    /// more than one node).
    #[must_use]
    pub fn no_live(&self) -> (Vec<VmId>, Vec<VmId>) {
        let b = self.before.nodes.len() > 1;
        let a = self.after.nodes.len() > 1;
        (
            self.vms
                .iter()
                .filter(|v| b && v.before.live.is_empty() && v.before.live_unknown.is_empty())
                .map(|v| v.vmid)
                .collect(),
            self.vms
                .iter()
                .filter(|v| a && v.after.live.is_empty() && v.after.live_unknown.is_empty())
                .map(|v| v.vmid)
                .collect(),
        )
    }

    /// VMs the changes make movable everywhere.
    #[must_use]
    pub fn made_movable(&self) -> Vec<VmId> {
        self.vms
            .iter()
            .filter(|v| v.movable_after == Some(true) && v.movable_before != Some(true))
            .map(|v| v.vmid)
            .collect()
    }

    /// Why the plan makes things worse, one line per VM: a node it had
    /// and loses (other than a removed one), or an added node it cannot
    /// start on or live-migrate to. Empty when nothing gets worse.
    #[must_use]
    pub fn worse(&self) -> Vec<(VmId, String)> {
        let mut out = Vec::new();
        for v in &self.vms {
            let kept = |n: &String| !self.removed.contains(n);
            let lost_start: Vec<String> = v.start_lost().into_iter().filter(kept).collect();
            let lost_live: Vec<String> = v.live_lost().into_iter().filter(kept).collect();
            // An added node that refuses it (unknown is not refused).
            let new_no_start: Vec<&String> = self
                .added
                .iter()
                .filter(|n| !v.after.start.contains(*n) && !v.after.start_unknown.contains_key(*n))
                .collect();
            let new_no_live: Vec<&String> = self
                .added
                .iter()
                .filter(|n| {
                    **n != v.node
                        && !v.after.live.contains(*n)
                        && !v.after.live_unknown.contains_key(*n)
                })
                .collect();
            let mut why = Vec::new();
            if v.after.start.is_empty()
                && v.after.start_unknown.is_empty()
                && !v.before.start.is_empty()
            {
                why.push("no node left to start on".to_string());
            }
            if !lost_start.is_empty() {
                why.push(format!("can no longer start on {}", lost_start.join(", ")));
            }
            if !lost_live.is_empty() {
                why.push(format!(
                    "can no longer live-migrate to {}",
                    lost_live.join(", ")
                ));
            }
            if !new_no_start.is_empty() {
                why.push(format!("cannot start on new node {}", join(&new_no_start)));
            }
            if !new_no_live.is_empty() {
                why.push(format!(
                    "cannot live-migrate to new node {}",
                    join(&new_no_live)
                ));
            }
            if !why.is_empty() {
                out.push((v.vmid, why.join("; ")));
            }
        }
        out
    }
}

impl Plan {
    /// VMs whose fate under the plan cannot be judged, each with where
    /// and why (one line): never "nothing gets worse" for them.
    #[must_use]
    pub fn unjudged(&self) -> Vec<(VmId, String)> {
        let mut out = Vec::new();
        for v in self.vms.iter().filter(|v| v.unjudged()) {
            // Nodes by why, start and live migration together.
            let mut by_why: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for (n, w) in v.after.start_unknown.iter().chain(&v.after.live_unknown) {
                by_why.entry(w).or_default().insert(n);
            }
            let parts: Vec<String> = by_why
                .iter()
                .map(|(w, ns)| {
                    format!(
                        "unknown on {}: {w}",
                        ns.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            out.push((v.vmid, parts.join("; ")));
        }
        out
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Plans `changes` over what was gathered; `rules_cfg` is
/// `ha/rules.cfg` (what `ha-rules` would change).
#[must_use]
pub fn plan(g: &Gathered, changes: &Changes, rules_cfg: &[Rule]) -> Plan {
    let after_inputs = changed(g, changes);
    let a0 = g.audit();
    let a1 = after_inputs.audit();
    let rules = g.rules;
    let by_vmid: BTreeMap<VmId, &VmAudit> = a1.vms.iter().map(|v| (v.vmid, v)).collect();
    let all = |a: &Audit<'_>, v: &VmAudit, r: &Reach| {
        if v.error.is_some() {
            // Its config cannot be read: nothing is known of it.
            None
        } else {
            everywhere(a, r, &v.node)
        }
    };
    let mut vms = Vec::new();
    let mut qm_set = Vec::new();
    for v0 in &a0.vms {
        let Some(v1) = by_vmid.get(&v0.vmid) else {
            continue;
        };
        let before = reach(&a0, v0);
        let after = reach(&a1, v1);
        if changes.cpu_for(v0.vmid).is_some() && v0.cpu != v1.cpu && v0.error.is_none() {
            qm_set.push(QmSet {
                vmid: v0.vmid,
                node: v0.node.clone(),
                argv: vec![
                    "set".into(),
                    v0.vmid.to_string(),
                    "--cpu".into(),
                    v1.cpu.clone(),
                ],
            });
        }
        vms.push(VmPlan {
            vmid: v0.vmid,
            name: v0.name.clone(),
            node: v0.node.clone(),
            node_removed: changes.remove.contains(&v0.node),
            cpu_before: v0.cpu.clone(),
            cpu_after: v1.cpu.clone(),
            movable_before: all(&a0, v0, &before),
            movable_after: all(&a1, v1, &after),
            before,
            after,
        });
    }
    let ha_before = ha_rules::allowed(&a0, rules);
    let ha_after = ha_rules::allowed(&a1, rules);
    let calls = |a: &Allowed| -> Vec<Vec<String>> {
        ha_rules::plan(a, rules_cfg)
            .calls
            .iter()
            .map(ha_rules::Call::argv)
            .collect()
    };
    let ha_calls = calls(&ha_after);
    let ha_calls_now = calls(&ha_before);
    let names =
        |f: &Fleet| -> BTreeSet<String> { f.nodes.iter().map(|n| n.name.clone()).collect() };
    let (n0, n1) = (names(&g.fleet), names(&after_inputs.fleet));
    Plan {
        before: cluster_view(&g.fleet),
        after: cluster_view(&after_inputs.fleet),
        added: n1.difference(&n0).cloned().collect(),
        removed: n0.difference(&n1).cloned().collect(),
        nodes: g
            .fleet
            .nodes
            .iter()
            .chain(
                after_inputs
                    .fleet
                    .nodes
                    .iter()
                    .filter(|n| !n0.contains(&n.name)),
            )
            .cloned()
            .collect(),
        vms,
        ha_before,
        ha_after,
        ha_calls,
        ha_calls_now,
        qm_set,
    }
}

/// The least a new node must offer so that every VM can start on it and
/// live-migrate to it (`plan --need`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Need {
    /// CPU features (QEMU's canonical names) some VM's CPU needs.
    pub features: BTreeSet<String>,
    /// The lowest rung of Proxmox's ladder that has all of them, if one does.
    pub level: Option<&'static str>,
    /// Features no rung has (beyond `x86-64-v4`).
    pub beyond_level: BTreeSet<String>,
    /// Named QEMU models that have all of them (fewest features first).
    pub models: Vec<String>,
    /// The CPU vendor of every node now, when they share one (a live
    /// migration across vendors is refused).
    pub vendor: Option<String>,
    /// The most vCPUs any VM has (the node needs as many logical CPUs).
    pub vcpus: u32,
    /// VMs with `cpu: host`/`max`: they need the very CPU of their node.
    pub host_vms: Vec<VmId>,
    /// VMs that cannot be judged, left out.
    pub unjudged: Vec<VmId>,
}

/// What a new node must offer for every VM of audit `a`.
#[must_use]
pub fn need(a: &Audit<'_>) -> Need {
    let mut out = Need::default();
    for v in &a.vms {
        let r = a.requirement(v);
        if r.unknown.is_some() || v.error.is_some() {
            out.unjudged.push(v.vmid);
            continue;
        }
        if !r.kvm {
            continue;
        }
        match r.base {
            GuestCpu::Host | GuestCpu::Max => out.host_vms.push(v.vmid),
            GuestCpu::Model { .. } => out.features.extend(r.features.iter().cloned()),
        }
        if r.hugepages_1g {
            out.features.insert("pdpe1gb".into());
        }
        out.vcpus = out.vcpus.max(r.vcpus);
    }
    let none = CustomModels::default();
    let mut rest = out.features.clone();
    for rung in LADDER {
        let have = requirement::from_cpu_value(rung, &none).features;
        if out.features.is_subset(&have) {
            out.level = Some(rung);
            rest.clear();
            break;
        }
        rest = out.features.difference(&have).cloned().collect();
    }
    out.beyond_level = rest;
    let vendors = a.fleet.vendors();
    if vendors.len() == 1 {
        out.vendor = vendors.iter().next().map(|v| (*v).to_string());
    }
    let idx = cpudata::index();
    let mut models: Vec<(usize, String)> = (0..idx.data.models.len())
        .map(|i| idx.model(i))
        .filter(|m| {
            out.features.is_subset(&m.features)
                && out.vendor.as_ref().is_none_or(|v| *v == m.vendor)
        })
        .map(|m| (m.features.len(), m.name.clone()))
        .collect();
    models.sort();
    out.models = models.into_iter().map(|(_, n)| n).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_hosts::kvm_host as cap;
    use crate::guard::audit::VmEntry;

    fn gathered(vms: &[(u32, &str, &str)]) -> Gathered {
        let mut fleet = Fleet::default();
        fleet.upsert(FleetNode::known("a", cap("GenuineIntel", "x86-64-v4"), 1));
        fleet.upsert(FleetNode::known("b", cap("GenuineIntel", "x86-64-v3"), 1));
        Gathered {
            vms: vms
                .iter()
                .map(|(id, node, conf)| VmEntry {
                    vmid: VmId(*id),
                    node: (*node).into(),
                    config: crate::pve::vmconf::parse(conf, std::path::Path::new("x"))
                        .map_err(|e| e.to_string()),
                    running: None,
                })
                .collect(),
            custom: CustomModels::default(),
            ha: BTreeMap::new(),
            fleet,
            rules: crate::guard::decision::Rules::default(),
            admissions: BTreeMap::new(),
        }
    }

    #[test]
    fn a_cpu_change_is_judged_as_after_the_next_cold_start() {
        let conf = crate::pve::vmconf::parse(
            "cpu: x86-64-v4\nmemory: 1024\n[PENDING]\ncpu: host\nmemory: 2048\n",
            std::path::Path::new("x"),
        )
        .unwrap();
        let c = with_cpu(&conf, "x86-64-v3");
        assert_eq!(c.cpu.as_deref(), Some("x86-64-v3"));
        assert!(c.pending.is_none(), "the pending section is applied");
    }

    #[test]
    fn no_change_no_difference_and_a_lower_type_gains_a_node() {
        let g = gathered(&[
            (100, "a", "cpu: x86-64-v4\n"),
            (101, "b", "cpu: x86-64-v3\n"),
        ]);
        let p = plan(&g, &Changes::default(), &[]);
        assert!(p.vms.iter().all(|v| !v.changes()));
        assert!(p.worse().is_empty());
        assert_eq!(p.before, p.after);

        let mut c = Changes::default();
        c.set_cpu.insert(VmId(100), "x86-64-v3".into());
        let p = plan(&g, &c, &[]);
        assert_eq!(p.vms[0].start_gained(), ["b"]);
        assert_eq!(p.made_movable(), [VmId(100)]);
        assert_eq!(p.qm_set[0].argv, ["set", "100", "--cpu", "x86-64-v3"]);
        assert!(p.worse().is_empty());
    }

    #[test]
    fn removing_the_strong_node_strands_its_vm_and_need_names_v4() {
        let g = gathered(&[
            (100, "a", "cpu: x86-64-v4\n"),
            (101, "b", "cpu: x86-64-v3\n"),
        ]);
        let c = Changes {
            remove: vec!["a".into()],
            ..Changes::default()
        };
        let p = plan(&g, &c, &[]);
        assert_eq!(p.no_start().1, [VmId(100)]);
        assert_eq!(p.worse()[0], (VmId(100), "no node left to start on".into()));
        assert_eq!(p.after.level, Some("x86-64-v3"));
        let n = need(&g.audit());
        assert_eq!(n.level, Some("x86-64-v4"));
        assert_eq!(n.vendor.as_deref(), Some("GenuineIntel"));
    }
}
