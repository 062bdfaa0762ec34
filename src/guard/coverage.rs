//! Coverage: which VMs carry the guard's hookscript — directly, or with
//! their own chained behind it (`attach` then leaves the guard's volume id
//! in `hookscript:` and the VM's own in chain.conf), so one test on the
//! config answers both — and which nodes lack the hook file a guarded VM
//! needs to start there.
//!
//! Pure: built from the audit and each node's published list of snippets
//! storages holding the hook file ([`crate::cache::NodeRecord::hook_storages`];
//! unknown for records that do not say, which never raises an alarm).

use std::collections::BTreeMap;

use crate::guard::audit::{is_guard_hookscript, Audit, Cell};
use crate::guard::decision::{self as guard, Rules};
use crate::pve::paths::VmId;

/// How many VMs more than this are only counted in the coverage line.
const LISTED: usize = 20;

/// The cluster's coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// VMs in the audit.
    pub total: usize,
    /// VMs with the guard's hookscript.
    pub guarded: usize,
    /// VMs without it, by VMID.
    pub unguarded: Vec<VmId>,
    /// Guarded VMs that could start on nodes whose record says the hook
    /// file is missing from the VM's storage: VM → (storage, nodes).
    pub missing_file: BTreeMap<VmId, (String, Vec<String>)>,
}

impl Coverage {
    /// "412 of 420 VMs guarded; unguarded: 101, 103, …".
    #[must_use]
    pub fn line(&self) -> String {
        let mut s = format!("{} of {} VMs guarded", self.guarded, self.total);
        if !self.unguarded.is_empty() {
            let shown: Vec<String> = self
                .unguarded
                .iter()
                .take(LISTED)
                .map(ToString::to_string)
                .collect();
            s.push_str("; unguarded: ");
            s.push_str(&shown.join(", "));
            if self.unguarded.len() > LISTED {
                s.push_str(&format!(" and {} more", self.unguarded.len() - LISTED));
            }
        }
        s
    }
}

/// Coverage of the audit's VMs. `hook_storages` gives, per node, the
/// snippets storages whose directory holds the hook file on that node
/// (`None`: the node's record does not say). Only storages that are not
/// shared are checked (`shared` says which are).
#[must_use]
pub fn of(
    audit: &Audit<'_>,
    rules: Rules,
    hook_storages: &BTreeMap<String, Option<Vec<String>>>,
    shared: &dyn Fn(&str) -> bool,
) -> Coverage {
    let mut c = Coverage {
        total: audit.vms.len(),
        ..Coverage::default()
    };
    for a in &audit.vms {
        let Some(volid) = a.hookscript.as_deref().filter(|h| is_guard_hookscript(h)) else {
            c.unguarded.push(a.vmid);
            continue;
        };
        c.guarded += 1;
        let storage = volid.split_once(':').map_or("", |(s, _)| s);
        if shared(storage) {
            continue;
        }
        let lacking: Vec<String> = audit
            .fleet
            .nodes
            .iter()
            .enumerate()
            .filter(|(n, node)| {
                let can_start = match audit.start_cell(a, *n) {
                    Cell::Yes => true,
                    Cell::No(_) => false,
                    Cell::Unknown(Some(v)) => guard::allows(v, rules),
                    Cell::Unknown(None) => false,
                };
                can_start
                    && hook_storages
                        .get(&node.name)
                        .and_then(Option::as_ref)
                        .is_some_and(|list| !list.iter().any(|s| s == storage))
            })
            .map(|(_, node)| node.name.clone())
            .collect();
        if !lacking.is_empty() {
            c.missing_file
                .insert(a.vmid, (storage.to_string(), lacking));
        }
    }
    c
}

/// Each node's `hook_storages` from the cache file at `path` (an unreadable
/// cache gives no knowledge, never an alarm).
#[must_use]
pub fn hook_storages_of(path: &std::path::Path) -> BTreeMap<String, Option<Vec<String>>> {
    crate::cache::Cache::load(path)
        .map(|c| {
            c.nodes
                .into_iter()
                .map(|(n, r)| (n, r.hook_storages))
                .collect()
        })
        .unwrap_or_default()
}

/// The text lines of a coverage: the summary, then each guarded VM whose
/// start would fail on some node for want of the hook file.
#[must_use]
pub fn text(c: &Coverage) -> String {
    let mut s = format!("Coverage: {}\n", c.line());
    for (vmid, (storage, nodes)) in &c.missing_file {
        s.push_str(&format!(
            "warning: VM {vmid} could start on {}, where storage '{storage}' lacks the hook file: its start there fails (\"script '{storage}:snippets/pve-cpuguard-hook' does not exist\")\nnote: run `pve-cpuguard attach --all --storage {storage}` on {}\n",
            nodes.join(", "),
            nodes.join(", ")
        ));
    }
    s
}

/// Counts the guarded VMs from the VM configs alone (what `scan` records
/// in the cache for `status`); a config that cannot be read counts as
/// unguarded. `None` when the VM directories cannot be listed.
#[must_use]
pub fn count(pve: &crate::pve::paths::PveDir) -> Option<crate::cache::CoverageCount> {
    let (_, found) = pve.scan_nodes().ok()?;
    let mut c = crate::cache::CoverageCount {
        vms: found.len(),
        ..crate::cache::CoverageCount::default()
    };
    for (vmid, node) in &found {
        let guarded = crate::pve::vmconf::read(&pve.vm_config(node, *vmid))
            .ok()
            .and_then(|conf| conf.hookscript)
            .is_some_and(|h| is_guard_hookscript(&h));
        if guarded {
            c.guarded += 1;
        } else {
            c.unguarded.push(vmid.0);
        }
    }
    Some(c)
}
