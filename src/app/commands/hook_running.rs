//! The hookscript's part in recording the CPU a running guest has
//! (`crate::pve::running`, issue 22): `post-start` records it, `post-stop`
//! removes it, and a live migration's `pre-start` judges what the source
//! recorded.
//!
//! Recording never changes a start's outcome: `post-start` and `post-stop`
//! cannot refuse anything, every failure is a warning, and the hook's
//! deadline bounds them as it bounds everything else the hook does.
//! qemu-server runs no `post-stop` on a live migration's source
//! (`QemuMigrate.pm`: "skip the post-stop hookscript"), so the source's
//! record stays behind; nothing reads it but the target of a migration
//! from that node, and the VM's next start there writes it anew.

use std::path::Path;

use crate::conf::settings::Settings;
use crate::cpu::launch::VmSpecs;
use crate::pve::paths::VmId;
use crate::pve::running::{self, RunningRecord};

/// What the source of an incoming live migration recorded about the
/// guest, put into `specs`: the exact `-cpu` it runs with, its machine and
/// its cold-start node. `Err` says why nothing could be used (the check
/// then goes on as without a record, with that warning).
pub fn apply_source_record(
    settings: &Settings,
    vmid: VmId,
    source: &str,
    specs: &mut VmSpecs<'_>,
) -> Result<(), String> {
    match running::read(&settings.pve, source, vmid) {
        Ok(Some(rec)) => {
            apply(&rec, specs);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(format!(
            "the source's record of the running guest cannot be used ({e}); judging the VM's configuration instead"
        )),
    }
}

/// Puts a record into `specs`.
pub fn apply(rec: &RunningRecord, specs: &mut VmSpecs<'_>) {
    specs.running.qemu_cpu = Some(rec.cpu.clone());
    if rec.machine.is_some() {
        specs.running.machine.clone_from(&rec.machine);
    }
    specs.cold_start = Some(rec.cold_start_node.clone());
}

/// `post-start`: records the VM's running `-cpu` for the other nodes.
/// After an incoming live migration the cold start stays where the
/// source's record says it was (or, without one, the source: assumed).
/// Returns a warning when nothing could be recorded.
pub fn post_start(settings: &Settings, run_dir: &Path, vmid: VmId) -> Option<String> {
    let Some((cpu, machine)) = running::running_cpu(run_dir, vmid) else {
        // A record of an earlier run must not stand for this one.
        let _ = running::remove(&settings.pve, &settings.node, vmid);
        return Some(format!(
            "no running QEMU found for VM {vmid} (PID file in {}): its CPU is not recorded",
            run_dir.display()
        ));
    };
    let migrated_from = std::env::var("PVE_MIGRATED_FROM")
        .ok()
        .filter(|s| !s.is_empty() && crate::pve::cluster::valid_name(s));
    let now = crate::cache::now();
    let (cold_start_node, cold_started_at, cold_start_assumed) = match migrated_from.as_deref() {
        None => (settings.node.clone(), now, false),
        Some(source) => match running::read(&settings.pve, source, vmid) {
            Ok(Some(rec)) => (
                rec.cold_start_node,
                rec.cold_started_at,
                rec.cold_start_assumed,
            ),
            _ => (source.to_string(), now, true),
        },
    };
    let rec = RunningRecord {
        vmid: vmid.0,
        cpu,
        machine,
        cold_start_node,
        cold_started_at,
        cold_start_assumed,
    };
    if let Err(why) = rec.validate() {
        let _ = running::remove(&settings.pve, &settings.node, vmid);
        return Some(format!("the running QEMU's -cpu cannot be recorded: {why}"));
    }
    running::write(&settings.pve, &settings.node, &rec)
        .err()
        .map(|e| format!("the running guest's CPU could not be recorded: {e}"))
}

/// `post-stop`: the guest no longer runs here.
pub fn post_stop(settings: &Settings, vmid: VmId) -> Option<String> {
    running::remove(&settings.pve, &settings.node, vmid)
        .err()
        .map(|e| format!("the running guest's record could not be removed: {e}"))
}
