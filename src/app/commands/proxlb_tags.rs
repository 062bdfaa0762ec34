//! `pve-cpuguard proxlb-tags`: ProxLB tags from the cache (see
//! [`crate::guard::proxlb`] for what they say). Plans every VM, and with
//! `--apply` runs `qm set VMID --tags …` for this node's VMs, directly and
//! bounded ([`crate::app::commands::ha_rules::run_call`]).
//!
//! Which tags are ours is recorded in `<pve_dir>/pve-cpuguard/
//! proxlb-tags.json` (`{"VMID": ["plb_pin_pve1", …]}`), in the cluster file
//! system so that every node's run sees what any node wrote: only those
//! tags are ever removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::app::cli::ProxlbTagsArgs;
use crate::app::commands::ha_rules::{command_line, run_call};
use crate::app::output::{self, Format};
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit_input;
use crate::guard::proxlb::{self, Change, VmTags};
use crate::syslog::{self, Severity};

/// The state file below the Proxmox VE directory.
#[must_use]
pub fn state_file(pve_dir: &Path) -> PathBuf {
    pve_dir.join("pve-cpuguard").join("proxlb-tags.json")
}

fn read_state(path: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::Config(format!(
                "{}: not a proxlb-tags state file: {e}\nnote: it records which ProxLB tags \
                 pve-cpuguard wrote; remove it to start afresh (its tags are then kept as \
                 the administrator's)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::Config(format!(
            "{}: cannot read: {e}\nnote: check the cluster file system (/etc/pve) is mounted",
            path.display()
        ))),
    }
}

/// The `qm set` arguments that write `tags`.
#[must_use]
pub fn argv(vmid: &str, tags: &[String]) -> Vec<String> {
    if tags.is_empty() {
        vec!["set".into(), vmid.into(), "--delete".into(), "tags".into()]
    } else {
        vec!["set".into(), vmid.into(), "--tags".into(), tags.join(";")]
    }
}

/// Runs `proxlb-tags`.
///
/// # Errors
/// Unreadable inputs or state file; writing output.
pub fn run(args: &ProxlbTagsArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let qm = &args.qm.path;
    let apply = args.apply && !args.dry_run;
    let g = audit_input::gather(&settings, || {
        crate::reach::local::cpuinfo(&settings.cpuinfo).ok()
    })?;
    crate::app::output::warn_cache(&g.fleet);
    let audit = g.audit();
    let live = proxlb::live_sets(&audit, g.rules);
    let all: BTreeSet<String> = g.fleet.nodes.iter().map(|n| n.name.clone()).collect();
    let has_data = g.fleet.known().next().is_some();
    let path = state_file(settings.pve.root());
    let state = read_state(&path)?;
    let mut new_state = state.clone();
    let mut changes: Vec<(String, Change)> = Vec::new();
    for e in &g.vms {
        let vmid = e.vmid.to_string();
        let tags = e
            .config
            .as_ref()
            .ok()
            .and_then(|c| c.tags.as_deref())
            .map(proxlb::split)
            .unwrap_or_default();
        let vm = VmTags {
            node: e.node.clone(),
            tags,
            ours: state.get(&vmid).cloned().unwrap_or_default(),
            live: live.get(&e.vmid).cloned().flatten(),
        };
        changes.push((vmid, proxlb::plan_vm(&vm, &all)));
    }
    let mut ran: Vec<(Vec<String>, Option<String>)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut pending = 0;
    for (vmid, c) in &changes {
        if let Some(n) = &c.note {
            notes.push(format!("VM {vmid}: {n}"));
        }
        let Some(tags) = &c.write else {
            if c.want.is_empty() {
                new_state.remove(vmid);
            } else {
                new_state.insert(vmid.clone(), c.want.clone());
            }
            continue;
        };
        if c.node != settings.node {
            // Only its own node can `qm set` it: not counted as pending here.
            notes.push(format!(
                "VM {vmid}: on node {}: run `pve-cpuguard proxlb-tags --apply` there",
                c.node
            ));
            continue;
        }
        if !apply || !has_data {
            pending += 1;
            continue;
        }
        let a = argv(vmid, tags);
        let result = run_call(qm, &a);
        match &result {
            Ok(()) => {
                syslog::log(
                    Severity::Notice,
                    &format!("proxlb-tags: ran {}", command_line(qm, &a)),
                );
                if c.want.is_empty() {
                    new_state.remove(vmid);
                } else {
                    new_state.insert(vmid.clone(), c.want.clone());
                }
            }
            Err(e) => syslog::log(Severity::Warning, &format!("proxlb-tags: {e}")),
        }
        ran.push((a, result.err()));
    }
    if apply && new_state != state {
        let mut bytes = serde_json::to_vec_pretty(&new_state).unwrap_or_default();
        bytes.push(b'\n');
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!(
                "{}: cannot create: {e}\nnote: check the cluster file system (/etc/pve) is writable (quorum)",
                dir.display()
            )))?;
        }
        crate::cache::published::write_atomic(&path, &bytes).map_err(|(p, e)| {
            Error::Config(format!(
                "{}: cannot write: {e}\nnote: check the cluster file system (/etc/pve) is writable (quorum)",
                p.display()
            ))
        })?;
    }
    let failed = ran.iter().any(|(_, e)| e.is_some());
    let calls: Vec<Vec<String>> = changes
        .iter()
        .filter(|(_, c)| c.node == settings.node)
        .filter_map(|(v, c)| c.write.as_ref().map(|t| argv(v, t)))
        .collect();
    if format == Format::Json {
        output::print_json(&json!({
            "vms": changes.iter().map(|(v, c)| json!({
                "vmid": v,
                "node": c.node,
                "ours": c.want,
                "tags": c.write,
                "note": c.note,
            })).collect::<Vec<_>>(),
            "calls": calls.iter().map(|a| {
                let mut v = vec![qm.display().to_string()];
                v.extend(a.iter().cloned());
                v
            }).collect::<Vec<_>>(),
            "applied": apply && has_data,
            "ran": ran.iter().map(|(a, e)| json!({"argv": a, "error": e})).collect::<Vec<_>>(),
            "state_file": path,
            "notes": notes,
        }))?;
    } else {
        let mut s = String::new();
        if args.dry_run {
            s.push_str("dry run: nothing is changed\n");
        }
        for (v, c) in &changes {
            if !c.want.is_empty() {
                let want: Vec<&str> = c.want.iter().map(String::as_str).collect();
                let _ = writeln!(s, "VM {v} ({}): {}", c.node, want.join(";"));
            }
        }
        if calls.is_empty() {
            s.push_str("tags are current on this node: no call needed\n");
        } else if apply && has_data {
            for (a, e) in &ran {
                match e {
                    None => {
                        let _ = writeln!(s, "ran: {}", command_line(qm, a));
                    }
                    Some(e) => {
                        let _ = writeln!(s, "error: {e}");
                    }
                }
            }
        } else {
            let _ = writeln!(
                s,
                "{}:",
                if args.dry_run {
                    "would run"
                } else {
                    "pending (run with --apply)"
                }
            );
            for a in &calls {
                let _ = writeln!(s, "  {}", command_line(qm, a));
            }
        }
        if apply && !has_data {
            s.push_str("refused: the cache holds no node data: run `pve-cpuguard scan` first\n");
        }
        for n in &notes {
            let _ = writeln!(s, "note: {n}");
        }
        output::print(&output::wrap(&s, output::WIDTH))?;
    }
    Ok(if !has_data {
        ExitCode::Unknown
    } else if failed || pending > 0 {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}
