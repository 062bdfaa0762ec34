//! `pve-cpuguard audit`: every VM of the cluster against every node, from
//! the cache — where each VM could start, where it could live-migrate to,
//! and which VMs are at risk (see [`crate::guard::audit`]). No network.

mod finding;
mod html;
mod json;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use crate::app::cli::AuditArgs;
use crate::app::output::Format;
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit::{self, Audit, VmEntry};
use crate::guard::decision::Rules;
use crate::guard::fleet::{self, Fleet, FleetNode};
use crate::pve::custom_models::{self, CustomModels};
use crate::pve::ha::{self, HaVm};
use crate::pve::paths::VmId;
use crate::pve::vmconf;

/// What the audit reads from the cluster file system and the cache.
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
}

/// Reads everything the audit needs; with `read_local_cpu`, this node's
/// own /proc/cpuinfo replaces its cached record (as the guard does).
///
/// # Errors
/// Unreadable directories, a malformed `.vmlist`, `cpu-models.conf` or
/// `resources.cfg`. A VM config that cannot be read is reported on that VM.
pub fn gather(settings: &Settings, read_local_cpu: bool) -> Result<Gathered> {
    let root = settings.pve.root();
    crate::pve::presence::require(root)?;
    let (node_names, found) = settings.pve.scan_nodes()?;
    let mut vms = read_configs(settings, found.into_iter().collect());
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
            });
        }
    }

    // This node read now, through the same definition as every command
    // (its cached QEMU answer counts while its flags are unchanged).
    let is_node = node_names.contains(&settings.node);
    let local = (read_local_cpu && is_node)
        .then(|| crate::reach::local::cpuinfo(&settings.cpuinfo).ok())
        .flatten();
    let mut fleet = match &local {
        Some(info) => fleet::load(settings, info),
        None => fleet::load_cached(settings),
    };
    for n in &node_names {
        if fleet.get(n).is_none() {
            fleet.upsert(FleetNode::unknown(
                n,
                "no cached record (run `pve-cpuguard scan`)".into(),
            ));
        }
    }
    Ok(Gathered {
        vms,
        custom: custom_models::read(&settings.pve.cpu_models())?,
        ha: ha::read(root)?,
        fleet,
        rules: Rules {
            policy: settings.policy,
            vendor_change: settings.vendor_change,
        },
    })
}

/// Reads the VM configs, on as many threads as there are CPUs (reading
/// thousands of small files from pmxcfs is system-call bound).
fn read_configs(settings: &Settings, list: Vec<(VmId, String)>) -> Vec<VmEntry> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8);
    let chunk = list.len().div_ceil(threads).max(256);
    let read = |part: &[(VmId, String)]| -> Vec<VmEntry> {
        part.iter()
            .map(|(vmid, node)| {
                let path = settings.pve.vm_config(node, *vmid);
                let config = vmconf::read(&path).map_err(|e| e.to_string());
                VmEntry {
                    vmid: *vmid,
                    node: node.clone(),
                    config,
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
            .map(|part| scope.spawn(move || read(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Runs `audit`.
///
/// # Errors
/// See [`gather`]; writing output.
pub fn run(args: &AuditArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let g = gather(&settings, true)?;
    let a = audit::run(&g.vms, &g.custom, &g.fleet, &g.ha, g.rules);
    let max_age = settings.cache_max_age.as_secs();
    let cov = coverage_of(&settings, &a, g.rules);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            let mut rows = json::JsonRows::new();
            for v in &a.vms {
                rows.entry(a.row_key(v)).or_insert_with(|| {
                    (
                        json::json_reach(&a, v, true),
                        json::json_reach(&a, v, false),
                    )
                });
            }
            // Compact: a 10 000-VM cluster's report is tens of megabytes
            // pretty-printed; `jq .` pretty-prints it for people.
            let mut report = json::json_report(&a, max_age, &rows);
            report.coverage = Some(json::coverage_json(&cov));
            serde_json::to_writer(&mut out, &report).map_err(|e| Error::Output(e.into()))?;
            out.write_all(b"\n").map_err(Error::Output)?;
        }
        Format::Html => out
            .write_all(html::render(&a, max_age).as_bytes())
            .map_err(Error::Output)?,
        Format::Text => {
            let mut text = text::text_report(&a, max_age);
            // Coverage closes the report: the summary opens it.
            text.push('\n');
            text.push_str(&crate::app::output::wrap(
                &crate::guard::coverage::text(&cov),
                crate::app::output::WIDTH,
            ));
            // Through anstream: colour only on a terminal, never with NO_COLOR.
            crate::app::output::print(&text)?;
        }
    }
    out.flush().map_err(Error::Output)?;
    Ok(if g.fleet.known().next().is_none() {
        eprintln!(
            "pve-cpuguard: no node has CPU data in {}, so no VM can be judged\n\
             note: run `pve-cpuguard scan` (the pve-cpuguard-refresh.timer runs it hourly)",
            settings.cache.display()
        );
        ExitCode::Unknown
    } else if a.vms.iter().any(|v| !v.findings.is_empty()) {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}

/// The cluster's coverage: guarded VMs, and nodes lacking the hook file
/// a guarded VM on a storage that is not shared needs.
fn coverage_of(
    settings: &Settings,
    a: &Audit<'_>,
    rules: Rules,
) -> crate::guard::coverage::Coverage {
    let storages = crate::pve::storage::read(settings.pve.root()).ok();
    // Unknown storages count as shared: no knowledge, no alarm.
    let shared = |id: &str| {
        storages
            .as_ref()
            .and_then(|s| s.get(id))
            .is_none_or(|s| s.shared)
    };
    let hooks = crate::guard::coverage::hook_storages_of(&settings.cache);
    crate::guard::coverage::of(a, rules, &hooks, &shared)
}
