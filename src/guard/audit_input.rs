//! The audit's inputs, read from the cluster file system and the cache:
//! every VM config, `cpu-models.conf`, `ha/resources.cfg`, every node's
//! record and the policy ([`gather`]), and for the coverage `storage.cfg`
//! and each node's hook storages ([`coverage`]). `audit`, `metrics` and
//! `ha-rules` read through here; [`crate::guard::audit`] judges, purely.

use std::collections::{BTreeMap, BTreeSet};

use crate::cache::admission::Admission;
use crate::conf::settings::Settings;
use crate::cpu::cpuinfo::CpuInfo;
use crate::error::Result;
use crate::guard::audit::{self, Audit, VmEntry};
use crate::guard::coverage::{self, Coverage};
use crate::guard::decision::Rules;
use crate::guard::fleet::{self, Fleet, FleetNode};
use crate::pve::custom_models::{self, CustomModels};
use crate::pve::ha::{self, HaVm};
use crate::pve::paths::VmId;
use crate::pve::{running, vmconf};

/// What the audit reads from the cluster file system and the cache.
#[derive(Clone)]
pub struct Gathered {
    /// Every VM.
    pub vms: Vec<VmEntry>,
    /// `cpu-models.conf`.
    pub custom: CustomModels,
    /// `ha/resources.cfg`.
    pub ha: BTreeMap<VmId, HaVm>,
    /// Every node.
    pub fleet: Fleet,
    /// Policy rules.
    pub rules: Rules,
    /// Nodes new or with a dropped capability, from the cache
    /// ([`crate::cache::admission`]).
    pub admissions: BTreeMap<String, Admission>,
}

impl Gathered {
    /// The audit of what was read.
    #[must_use]
    pub fn audit(&self) -> Audit<'_> {
        let mut a = audit::run(&self.vms, &self.custom, &self.fleet, &self.ha, self.rules);
        a.admit(&self.admissions);
        a
    }

    /// [`audit::run_without_live`] on everything gathered.
    #[must_use]
    pub fn audit_without_live(&self) -> Audit<'_> {
        let mut a =
            audit::run_without_live(&self.vms, &self.custom, &self.fleet, &self.ha, self.rules);
        a.admit(&self.admissions);
        a
    }
}

/// Reads everything the audit needs. When this node is a cluster member,
/// `local_cpu` is asked for its /proc/cpuinfo, which then replaces its
/// cached record (as the guard does); `None` keeps the cached record. (The
/// caller reads it: reading a node is `reach`'s, below this layer.)
///
/// # Errors
/// Unreadable directories, a malformed `.vmlist`, `cpu-models.conf` or
/// `resources.cfg`. A VM config that cannot be read is reported on that VM.
pub fn gather(
    settings: &Settings,
    local_cpu: impl FnOnce() -> Option<CpuInfo>,
) -> Result<Gathered> {
    let root = settings.pve.root();
    crate::pve::presence::require(root)?;
    let (node_names, found) = settings.pve.scan_nodes()?;
    let mut vms = read_configs(&settings.pve, found.into_iter().collect());
    attach_running_records(settings, &node_names, &mut vms);
    let known: BTreeSet<VmId> = vms.iter().map(|v| v.vmid).collect();
    for (vmid, entry) in settings.pve.vmlist()? {
        if entry.kind == "qemu" && !known.contains(&vmid) {
            let path = settings.pve.vm_config(&entry.node, vmid);
            vms.push(VmEntry {
                vmid,
                node: entry.node.clone(),
                config: Err(format!(
                    ".vmlist puts VM {vmid} on '{}', but {} does not exist",
                    entry.node,
                    path.display()
                )),
                running: None,
            });
        }
    }

    // This node read now, through the same definition as every command
    // (its cached QEMU answer counts while its flags are unchanged).
    let is_node = node_names.contains(&settings.node);
    let local = is_node.then(local_cpu).flatten();
    let mut fleet = match &local {
        Some(info) => fleet::load(settings, info),
        None => fleet::load_cached(settings),
    };
    fleet.add_unseen_members(&node_names);
    Ok(Gathered {
        vms,
        custom: custom_models::read(&settings.pve.cpu_models())?,
        ha: ha::read(root)?,
        fleet,
        rules: Rules {
            policy: settings.policy,
            vendor_change: settings.vendor_change,
        },
        // The full cache, for its admissions only (a missing or corrupt
        // cache has none; the fleet above reports its problem).
        admissions: crate::cache::Cache::load(&settings.cache)
            .map(|c| c.admissions)
            .unwrap_or_default(),
    })
}

/// What a refresh's admissions cost: for each node of `admissions` (those
/// the refresh found), its sentence and the VMs that can no
/// longer start on it or live-migrate to it, judged over the `records`
/// given (`scan`: the new cache; `publish`: every published record with
/// this node's new one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Admitted {
    /// Node name.
    pub node: String,
    /// Whether it had no record before.
    pub new: bool,
    /// What changed.
    pub message: String,
    /// The VMs it no longer takes.
    pub vms: Vec<u32>,
}

/// [`Admitted`] for `admissions`, with records aged at `now`, reading the VM configs
/// and `cpu-models.conf` under `pve`.
///
/// # Errors
/// Unreadable directories, a malformed `.vmlist` or `cpu-models.conf`.
pub fn admitted(
    pve: &crate::pve::paths::PveDir,
    records: &BTreeMap<String, crate::cache::NodeRecord>,
    admissions: &BTreeMap<String, Admission>,
    now: u64,
) -> Result<Vec<Admitted>> {
    let fresh = admissions;
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let (_, found) = pve.scan_nodes()?;
    let vms = read_configs(pve, found.into_iter().collect());
    let custom = custom_models::read(&pve.cpu_models())?;
    let mut fleet = Fleet::default();
    for (name, rec) in records {
        fleet.upsert(FleetNode::from_truth(
            name,
            crate::cache::truth::of_record(rec),
            // Which VMs a node no longer takes does not depend on how
            // fresh the records are: none counts as stale here.
            rec.freshness(now, u64::MAX),
        ));
    }
    let mut a = audit::run(&vms, &custom, &fleet, &BTreeMap::new(), Rules::default());
    let lost = a.admit(fresh);
    Ok(lost
        .into_iter()
        .map(|(n, ids)| {
            let adm = &fresh[&fleet.nodes[n].name];
            Admitted {
                node: adm.node.clone(),
                new: adm.is_new(),
                message: adm.message.clone(),
                vms: ids.into_iter().map(|v| v.0).collect(),
            }
        })
        .collect())
}

/// What `publish` says of this node: the admission its new record makes
/// (as a refresh of the cache would, [`crate::cache::admission::next`])
/// against its own previous published record, judged over every node's
/// published record with this node's new one.
///
/// A node without a previous record counts as new only when other nodes
/// published theirs and it holds no VM: Proxmox VE lets only a node
/// without guests join a cluster (`pvecm add`), so one with guests has
/// merely not published before (pve-cpuguard was just installed). A
/// previous record that cannot be read tells nothing: no admission.
///
/// # Errors
/// Unreadable directories, a malformed `.vmlist` or `cpu-models.conf`.
pub fn admitted_on_publish(
    pve: &crate::pve::paths::PveDir,
    new: &crate::cache::NodeRecord,
    now: u64,
) -> Result<Vec<Admitted>> {
    use crate::cache::published::{self, Rejected};
    let node = new.name.as_str();
    let old = match published::load(pve.root(), node, now, u64::MAX) {
        Ok(p) => Some(p.record),
        Err(Rejected::Missing) => None,
        Err(_) => return Ok(Vec::new()),
    };
    let (nodes, vms) = pve.scan_nodes()?;
    let mut records = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.as_str() != node) {
        if let Ok(p) = published::load(pve.root(), n, now, u64::MAX) {
            records.insert(n.clone(), p.record);
        }
    }
    let has_guests = vms.values().any(|n| n == node);
    let others = !records.is_empty();
    records.insert(node.to_string(), new.clone());
    let Some(adm) = crate::cache::admission::next(
        old.as_ref(),
        new,
        None,
        others && (old.is_some() || !has_guests),
        now,
    ) else {
        return Ok(Vec::new());
    };
    admitted(
        pve,
        &records,
        &BTreeMap::from([(node.to_string(), adm)]),
        now,
    )
}

/// Puts each VM's running record (`crate::pve::running`) of the node its
/// config is on into its entry: one directory listing per node, so VMs
/// without a record cost nothing. A record that cannot be read is left
/// out (the VM is then judged by its configuration, as before records).
fn attach_running_records(settings: &Settings, nodes: &[String], vms: &mut [VmEntry]) {
    let mut by_node: std::collections::HashMap<&str, BTreeSet<VmId>> =
        std::collections::HashMap::new();
    for n in nodes {
        let dir = settings
            .pve
            .root()
            .join("nodes")
            .join(n)
            .join(running::DIR_NAME);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let ids = entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .map(VmId)
            .collect();
        by_node.insert(n.as_str(), ids);
    }
    for vm in vms.iter_mut() {
        if by_node
            .get(vm.node.as_str())
            .is_some_and(|ids| ids.contains(&vm.vmid))
        {
            vm.running = running::read(&settings.pve, &vm.node, vm.vmid)
                .ok()
                .flatten();
        }
    }
}

/// Reads the VM configs, on as many threads as there are CPUs (reading
/// thousands of small files from pmxcfs is system-call bound).
fn read_configs(pve: &crate::pve::paths::PveDir, list: Vec<(VmId, String)>) -> Vec<VmEntry> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8);
    let chunk = list.len().div_ceil(threads).max(256);
    let read = |part: &[(VmId, String)]| -> Vec<VmEntry> {
        part.iter()
            .map(|(vmid, node)| {
                let path = pve.vm_config(node, *vmid);
                let config = vmconf::read(&path).map_err(|e| e.to_string());
                VmEntry {
                    vmid: *vmid,
                    node: node.clone(),
                    config,
                    running: None,
                }
            })
            .collect()
    };
    if list.len() <= chunk {
        return read(&list);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = list
            .chunks(chunk)
            .map(|part| (part, scope.spawn(move || read(part))))
            .collect();
        // A part whose thread died is read again here, never left out: a
        // VM missing from the audit would be a VM nobody is told about.
        handles
            .into_iter()
            .flat_map(|(part, h)| h.join().unwrap_or_else(|_| read(part)))
            .collect()
    })
}

/// The cluster's coverage: guarded VMs, and nodes lacking the hook file
/// a guarded VM on a storage that is not shared needs.
#[must_use]
pub fn coverage(settings: &Settings, a: &Audit<'_>, rules: Rules) -> Coverage {
    let storages = crate::pve::storage::read(settings.pve.root()).ok();
    // Unknown storages count as shared: no knowledge, no alarm.
    let shared = |id: &str| {
        storages
            .as_ref()
            .and_then(|s| s.get(id))
            .is_none_or(|s| s.shared)
    };
    let hooks = coverage::hook_storages_of(&settings.cache);
    coverage::of(a, rules, &hooks, &shared)
}
