//! What `migrate` and `check` need about one VM: its config, requirement,
//! owner node, and the fleet as the cache knows it.

use std::path::Path;

use crate::conf::settings::Settings;
use crate::cpu::custom_models::CustomModels;
use crate::cpu::launch::{VmSpec, VmSpecs};
use crate::error::{Error, Result};
use crate::guard::decision::{Rules, VmLabel};
use crate::guard::fleet::{self, Fleet, FleetNode};
use crate::pve::paths::VmId;
use crate::pve::{custom_models, vmconf};

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
    let local = crate::reach::local::cpuinfo(&settings.cpuinfo)?;
    let mut fleet = fleet::load(settings, &local);
    // A node of the cluster without a cached record is an unknown answer,
    // not a node that does not exist (the same as `audit`).
    for n in settings.pve.scan_nodes()?.0 {
        if fleet.get(&n).is_none() {
            fleet.upsert(FleetNode::unknown(
                &n,
                "no cached record (run `pve-cpuguard scan`)".into(),
            ));
        }
    }
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
