//! `auto_attach`: what `scan` (the refresh service) does to close the
//! gap of VMs created after `attach` — this node's VMs that lack the
//! guard's hookscript get it, exactly as `attach` gives it (the same plan,
//! [`crate::guard::rollout::plan_attach`], the same chaining of a VM's own
//! hookscript, the same journal line per change with the old value).
//!
//! Never a VM of another node (`qm` changes only its own node's VMs),
//! never a VM with a `lock` (a backup, migration or snapshot is running:
//! `qm set` would fail or interfere; the next scan tries again), and
//! nothing at all without a snippets storage.

use std::path::Path;

use crate::app::commands::attach;
use crate::conf::config::AutoAttach;
use crate::conf::settings::Settings;
use crate::guard::audit::is_guard_hookscript;
use crate::guard::rollout::{self, VmState};
use crate::pve::storage;
use crate::pve::vmconf;

/// Attaches the guard to this node's selected VMs that lack it; returns one
/// line per VM changed, skipped or failed (empty when nothing was to do).
#[must_use]
pub fn run(
    settings: &Settings,
    filter: &AutoAttach,
    storage_id: &str,
    hook_file: &Path,
    qm: &Path,
) -> Vec<String> {
    if *filter == AutoAttach::Off {
        return Vec::new();
    }
    let mut lines = Vec::new();
    let (_, found) = match settings.pve.scan_nodes() {
        Ok(f) => f,
        Err(e) => return vec![format!("auto_attach: {e}")],
    };
    let mut vms = Vec::new();
    for (vmid, node) in found.iter().filter(|(_, n)| **n == settings.node) {
        if !filter.selects(vmid.0) {
            continue;
        }
        let conf = match vmconf::read(&settings.pve.vm_config(node, *vmid)) {
            Ok(c) => c,
            Err(e) => {
                lines.push(format!("auto_attach: VM {vmid}: not attached: {e}"));
                continue;
            }
        };
        if conf.hookscript.as_deref().is_some_and(is_guard_hookscript) {
            continue;
        }
        if let Some(lock) = &conf.lock {
            lines.push(format!(
                "auto_attach: VM {vmid}: locked ({lock}): not attached now; the next scan tries again"
            ));
            continue;
        }
        vms.push(VmState {
            vmid: *vmid,
            name: conf.name.clone(),
            node: Some(node.clone()),
            hookscript: conf.hookscript.clone(),
        });
    }
    if vms.is_empty() {
        return lines;
    }
    let storages = match storage::read(settings.pve.root()) {
        Ok(s) => s,
        Err(e) => {
            lines.push(format!("auto_attach: nothing attached: {e}"));
            return lines;
        }
    };
    let store = match storages.snippets_storage(storage_id) {
        Ok(s) => s,
        Err(e) => {
            lines.push(format!(
                "auto_attach: nothing attached to {} VM(s): {e}\nnote: set attach_storage in the configuration file to a storage with snippets content",
                vms.len()
            ));
            return lines;
        }
    };
    if let Err(e) = attach::install_hook_file(hook_file, store, false) {
        lines.push(format!("auto_attach: nothing attached: {e}"));
        return lines;
    }
    let target = rollout::guard_volid(&store.id);
    let plan = rollout::plan_attach(&vms, &settings.node, &target, &storages);
    for d in attach::execute(settings, qm, plan, &vms, false, true) {
        lines.push(format!(
            "auto_attach: {}",
            attach::describe(&d, false, true)
        ));
    }
    lines
}
