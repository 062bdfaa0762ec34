//! What `migrate` and `check` need about one VM: its config, requirement,
//! owner node, and the fleet as the cache knows it.

use std::path::Path;

use crate::conf::settings::Settings;
use crate::cpu::custom_models::CustomModels;
use crate::cpu::launch::{VmSpec, VmSpecs};
use crate::error::{Error, Result};
use crate::guard::decision::{Rules, VmLabel};
use crate::guard::fleet::{self, Fleet};
use crate::pve::paths::VmId;
use crate::pve::{custom_models, running, vmconf};

/// One VM and its surroundings.
pub struct VmContext {
    /// The VM.
    pub vmid: VmId,
    /// For messages.
    pub label: VmLabel,
    /// Node that owns the config (where it runs or would start).
    pub owner: String,
    /// The `cpu:` value as configured (`kvm64` when absent), for messages.
    pub cpu: String,
    /// What its next cold start uses (`[PENDING]` applied).
    pub next_start: VmSpec,
    /// What it runs with (the main section).
    pub running: VmSpec,
    /// Whether `[PENDING]` changes what the next start gives the guest.
    pub pending_changes_cpu: bool,
    /// The cluster's custom CPU models.
    pub custom: CustomModels,
    /// Where the running guest was cold-started, when recorded.
    pub cold_start: Option<String>,
    /// What is known of the running guest's CPU, for messages.
    pub running_note: Option<String>,
    /// Every node.
    pub fleet: Fleet,
    /// Policy rules.
    pub rules: Rules,
}

/// Loads the context.
///
/// # Errors
/// An unknown VM, unreadable configs, or an unreadable local cpuinfo.
pub fn load(settings: &Settings, vmid: VmId) -> Result<VmContext> {
    let Some((owner, path)) = settings.pve.locate(vmid, &settings.node, None)? else {
        return Err(Error::Config(format!(
            "VM {vmid} does not exist: no node has {} (looked in .vmlist and every node's qemu-server directory)\nnote: `qm list` on each node shows its VMs; is --pve-dir / PVE_CPUGUARD_PVE_DIR right? It is {}",
            settings.pve.vm_config("<node>", vmid).display(),
            settings.pve.root().display()
        )));
    };
    let vm = vmconf::read(&path)?;
    vm.check_cpu(&path)?;
    let custom = custom_models::read(&settings.pve.cpu_models())?;
    crate::app::output::warn_custom_models(&custom);
    let local = crate::reach::local::cpuinfo(&settings.cpuinfo)?;
    let mut fleet = fleet::load(settings, &local);
    crate::app::output::warn_cache(&fleet);
    fleet.add_unseen_members(&settings.pve.scan_nodes()?.0);
    Ok(VmContext {
        vmid,
        label: VmLabel {
            vmid: vmid.to_string(),
            name: vm.name.clone(),
        },
        owner,
        cpu: vm.with_pending().cpu.unwrap_or_else(|| "kvm64".into()),
        next_start: vm.with_pending().launch_spec(),
        running: vm.launch_spec(),
        pending_changes_cpu: vm.has_cpu_relevant_pending(),
        custom,
        cold_start: None,
        running_note: None,
        fleet,
        rules: Rules {
            policy: settings.policy,
            vendor_change: settings.vendor_change,
        },
    })
}

impl VmContext {
    /// The VM as the guard judges it.
    #[must_use]
    pub fn specs(&self) -> VmSpecs<'_> {
        VmSpecs {
            next_start: self.next_start.clone(),
            running: self.running.clone(),
            custom: &self.custom,
            cold_start: self.cold_start.clone(),
        }
    }

    /// Takes in the CPU the running guest really has (issue 22): on the
    /// node it runs on, its QEMU's command line (`/proc/PID/cmdline`, as
    /// qemu-server reads it) and this node's record of its cold start;
    /// elsewhere, the record its node keeps in /etc/pve.
    pub fn read_running(&mut self, settings: &Settings, run_dir: &Path) {
        let record = running::read(&settings.pve, &self.owner, self.vmid);
        if self.owner == settings.node {
            let Some((cpu, machine)) = running::running_cpu(run_dir, self.vmid) else {
                return;
            };
            // This node's record tells where the same QEMU was cold-started.
            self.cold_start = record
                .ok()
                .flatten()
                .filter(|r| r.cpu == cpu)
                .map(|r| r.cold_start_node);
            self.running_note = Some(format!("runs with -cpu {cpu} (read from its QEMU process)"));
            self.running.qemu_cpu = Some(cpu);
            if machine.is_some() {
                self.running.machine = machine;
            }
            return;
        }
        match record {
            Ok(Some(rec)) => {
                self.running_note = Some(format!(
                    "runs with -cpu {} (recorded by {}; cold-started on {})",
                    rec.cpu, self.owner, rec.cold_start_node
                ));
                self.running.qemu_cpu = Some(rec.cpu);
                if rec.machine.is_some() {
                    self.running.machine = rec.machine;
                }
                self.cold_start = Some(rec.cold_start_node);
            }
            Ok(None) => {}
            Err(e) => self.running_note = Some(format!("its running CPU is not known: {e}")),
        }
    }
}

/// Whether the VM runs on this node (its PID file names a live process).
#[must_use]
pub fn running(run_dir: &Path, vmid: VmId) -> bool {
    crate::fsutil::read_to_string_raw(run_dir.join(format!("{vmid}.pid")))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}
