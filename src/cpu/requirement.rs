//! What a VM needs from the node it runs on: [`Requirement`].
//!
//! Resolves a VM's `cpu:` option (plus custom models and the VM config keys
//! that matter: `arch`, `hugepages`, `args`, `runningcpu`) into canonical
//! QEMU features and host-dependent properties. Pure: no I/O.

use std::collections::BTreeSet;

use crate::cpu::cpuconf::{self, FlagChange, PhysBits};
use crate::cpu::custom_models::CustomModels;
use crate::cpu::flags::{self, VmFlag};
use crate::cpu::launch::{Guest, MachineVersion};
use crate::cpu::models::{self, ResolvedType};

/// The base of a requirement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GuestCpu {
    /// `host`: the guest sees the node's CPU (no `enforce`).
    Host,
    /// `max`: all the accelerator can offer (enforced, but never fails).
    Max,
    /// A fixed model.
    Model {
        /// QEMU model used.
        qemu_model: String,
        /// Vendor Proxmox forces; `None` = the host's (kvm64, qemu64, x86-64-vN).
        vendor: Option<String>,
    },
}

/// Everything a VM's CPU configuration demands of a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The `cpu:` value as configured (or `kvm64` when absent).
    pub cpu: String,
    /// The resolved CPU type name.
    pub cputype: String,
    /// The `runningcpu:` of a suspended VM, for messages.
    pub running_cpu: Option<String>,
    /// What CPU the guest gets: the node's, everything, or a fixed model.
    pub base: GuestCpu,
    /// Required canonical QEMU features (beyond the host's own for host/max).
    pub features: BTreeSet<String>,
    /// `phys-bits`.
    pub phys_bits: Option<PhysBits>,
    /// `guest-phys-bits`.
    pub guest_phys_bits: Option<u32>,
    /// `+nested-virt`: vmx or svm from the starting host.
    pub nested_virt: bool,
    /// Guest memory on 1 GiB huge pages.
    pub hugepages_1g: bool,
    /// Hyper-V enlightenments the VM asks for in `flags=` (`hv-tlbflush`,
    /// `hv-evmcs`, …), spelled `hv-NAME`: no host CPUID bit, see
    /// [`flags::Enlightenment`] for what they need.
    pub hyperv: BTreeSet<String>,
    /// Runs under KVM (`kvm: 1`, Proxmox's default); `false` is TCG, QEMU's
    /// emulator, which needs nothing of the host CPU.
    pub kvm: bool,
    /// Why the requirement cannot be determined, if it cannot.
    pub unknown: Option<String>,
    /// vCPUs (sockets × cores): qemu-server refuses more than the node's
    /// logical CPUs. 0 when not said (a `cpu:` value alone).
    pub vcpus: u32,
    /// What kind of guest: templates and emulated architectures need
    /// nothing of the node's CPU.
    pub guest: Guest,
    /// Why qemu-server refuses to start the VM on the node the requirement
    /// was built for, whatever its CPU (its QEMU is too old for the
    /// machine version, say).
    pub start_error: Option<String>,
    /// Notes on flags qemu-server adds by itself.
    pub automatic: Vec<String>,
    /// The machine version the guest gets (or runs with), when known: a
    /// node's QEMU older than it cannot run the guest.
    pub machine: Option<MachineVersion>,
}

/// Flags qemu-server adds by itself (`get_pve_cpu_flags`,
/// `get_hyperv_enlightenments`) that matter to the verdict, worked out by
/// [`crate::cpu::launch`] for one start node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoFlags {
    /// CPUID features added (`true`) or taken away, applied before the
    /// custom model's and the VM's flags (which may undo them).
    pub features: Vec<(String, bool)>,
    /// Hyper-V enlightenments, spelled `hv-NAME`.
    pub hyperv: Vec<String>,
    /// Why what qemu-server adds cannot be known (the start node's vendor
    /// decides it and is not known).
    pub unknown: Option<String>,
    /// What the verdict should say about the flags added.
    pub notes: Vec<String>,
}

impl Requirement {
    fn unknown(cpu: &str, reason: String) -> Self {
        Requirement {
            cpu: cpu.to_string(),
            cputype: cpu.to_string(),
            running_cpu: None,
            base: GuestCpu::Max,
            features: BTreeSet::new(),
            phys_bits: None,
            guest_phys_bits: None,
            nested_virt: false,
            hugepages_1g: false,
            hyperv: BTreeSet::new(),
            kvm: true,
            unknown: Some(reason),
            vcpus: 0,
            guest: Guest::X86,
            start_error: None,
            automatic: Vec::new(),
            machine: None,
        }
    }

    /// Whether the guest's CPU vendor is the host's (so a vendor change is visible).
    #[must_use]
    pub fn vendor_from_host(&self) -> bool {
        matches!(
            self.base,
            GuestCpu::Host | GuestCpu::Max | GuestCpu::Model { vendor: None, .. }
        )
    }
}

/// Resolves a `cpu:` value alone (as `why-not` receives it), without the
/// flags qemu-server adds for a particular VM and node.
#[must_use]
pub fn from_cpu_value(value: &str, custom: &CustomModels) -> Requirement {
    resolve_value(value, custom, &AutoFlags::default())
}

/// Resolves a `cpu:` value with the flags qemu-server adds by itself
/// layered under the custom model's and the VM's own
/// ([`crate::cpu::launch::launch`] is the one caller that knows them).
#[must_use]
pub fn from_cpu_value_with(value: &str, custom: &CustomModels, auto: &AutoFlags) -> Requirement {
    resolve_value(value, custom, auto)
}

/// Resolves a QEMU `-cpu` argument as qemu-server writes it into
/// `runningcpu` (e.g. `qemu64,+aes,enforce,+kvm_pv_eoi,vendor=GenuineIntel`):
/// a QEMU model, `+f`/`-f`/`f=on|off`/bare `f` features and options.
#[must_use]
pub fn from_qemu_cpu_arg(arg: &str) -> Requirement {
    let mut parts = arg.split(',').map(str::trim);
    let model = parts.next().unwrap_or_default();
    // Proxmox's abstract types are not QEMU models: QEMU refuses them.
    if models::BUILTINS.iter().any(|b| b.name == model) {
        return Requirement::unknown(
            arg,
            format!("'{model}' is Proxmox VE's name for qemu64 with flags, not a QEMU CPU model; QEMU refuses `-cpu {model}`"),
        );
    }
    let (mut base, mut features) = match models::resolve(model) {
        Ok(ResolvedType::Host) => (GuestCpu::Host, BTreeSet::new()),
        Ok(ResolvedType::Max) => (GuestCpu::Max, BTreeSet::new()),
        Ok(ResolvedType::Model {
            qemu_model,
            features,
            ..
        }) => (
            GuestCpu::Model {
                qemu_model,
                vendor: None,
            },
            features,
        ),
        Err(e) => return Requirement::unknown(arg, e.0),
    };
    let mut phys_bits = None;
    let mut guest_phys_bits = None;
    let mut hyperv = BTreeSet::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let (name, on) = match part.split_once('=') {
            Some(("vendor", v)) => {
                if let GuestCpu::Model { vendor, .. } = &mut base {
                    *vendor = Some(v.to_string());
                }
                continue;
            }
            Some(("phys-bits", v)) => {
                phys_bits = v.parse().ok().map(PhysBits::Bits);
                continue;
            }
            Some(("guest-phys-bits", v)) => {
                guest_phys_bits = v.parse().ok();
                continue;
            }
            Some(("host-phys-bits", v)) => {
                if matches!(v, "on" | "true") {
                    phys_bits = Some(PhysBits::Host);
                }
                continue;
            }
            Some((f, v)) if matches!(v, "on" | "off" | "true" | "false") => {
                (f, matches!(v, "on" | "true"))
            }
            // Valued options: hv_spinlocks=0x1fff, level=30, kvm=off, ...
            Some(_) => continue,
            None => match (part.strip_prefix('+'), part.strip_prefix('-')) {
                (Some(f), _) => (f, true),
                (_, Some(f)) => (f, false),
                _ if part == "enforce" || part == "check" => continue,
                _ => (part, true),
            },
        };
        match flags::vm_flag(name) {
            Some(VmFlag::Feature(f)) => apply(&mut features, f, on),
            Some(VmFlag::HyperV(_)) => apply(&mut hyperv, &hyperv_name(name), on),
            // The running QEMU accepted this `-cpu`, so a name the table
            // does not know is a newer QEMU's (qemu-server 9.2 writes
            // `-cet-ibt,-cet-ss` for QEMU 11); taking one away asks nothing.
            None if !on => {}
            // Not a QEMU property: qemu-server resolves it before QEMU runs.
            Some(VmFlag::NestedVirt) | None => {
                return Requirement::unknown(
                    arg,
                    format!("unknown CPU flag '{name}' in runningcpu '{arg}'"),
                )
            }
        }
    }
    Requirement {
        cpu: arg.to_string(),
        cputype: model.to_string(),
        running_cpu: Some(arg.to_string()),
        base,
        features,
        phys_bits,
        guest_phys_bits,
        nested_virt: false,
        hugepages_1g: false,
        hyperv,
        kvm: true,
        unknown: None,
        vcpus: 0,
        guest: Guest::X86,
        start_error: None,
        automatic: Vec::new(),
        machine: None,
    }
}

fn apply(set: &mut BTreeSet<String>, name: &str, on: bool) {
    if on {
        set.insert(name.to_string());
    } else {
        set.remove(name);
    }
}

/// `hv_evmcs` / `hv-evmcs` → `hv-evmcs`.
fn hyperv_name(name: &str) -> String {
    name.replace('_', "-")
}

fn resolve_value(value: &str, custom: &CustomModels, auto: &AutoFlags) -> Requirement {
    if let Some(why) = &auto.unknown {
        return Requirement::unknown(value, why.clone());
    }
    let conf = match cpuconf::parse(value) {
        Ok(c) => c,
        Err(e) => return Requirement::unknown(value, format!("cannot parse cpu '{value}': {e}")),
    };
    let cputype = conf.cputype().to_string();
    let mut phys_bits = None;
    let mut guest_phys_bits = None;
    let mut nested_virt = false;
    let mut changes: Vec<FlagChange> = Vec::new();
    let base_name = if cputype.starts_with("custom-") {
        let Some(model) = custom.get(&cputype) else {
            let why = match custom.unreadable(&cputype) {
                Some(e) => format!("custom CPU model '{cputype}' cannot be read: {e}"),
                None => format!("custom CPU model '{cputype}' is not defined in cpu-models.conf"),
            };
            return Requirement::unknown(value, why);
        };
        phys_bits = model.phys_bits;
        guest_phys_bits = model.guest_phys_bits;
        changes.extend(model.flags.iter().cloned());
        model
            .reported_model
            .clone()
            .unwrap_or_else(|| "kvm64".into())
    } else {
        cputype.clone()
    };
    let (base, mut features) = match models::resolve(&base_name) {
        Ok(ResolvedType::Host) => (GuestCpu::Host, BTreeSet::new()),
        Ok(ResolvedType::Max) => (GuestCpu::Max, BTreeSet::new()),
        Ok(ResolvedType::Model {
            qemu_model,
            vendor,
            features,
        }) => (GuestCpu::Model { qemu_model, vendor }, features),
        Err(e) => return Requirement::unknown(value, e.0),
    };
    for (name, add) in &auto.features {
        if let Some(VmFlag::Feature(f)) = flags::vm_flag(name) {
            apply(&mut features, f, *add);
        }
    }
    changes.extend(conf.flags.iter().cloned());
    let mut hyperv: BTreeSet<String> = auto.hyperv.iter().cloned().collect();
    for change in &changes {
        match flags::vm_flag(&change.name) {
            Some(VmFlag::NestedVirt) => nested_virt = change.add,
            Some(VmFlag::Feature(f)) => apply(&mut features, f, change.add),
            Some(VmFlag::HyperV(_)) => apply(&mut hyperv, &hyperv_name(&change.name), change.add),
            None => {
                return Requirement::unknown(
                    value,
                    format!("unknown CPU flag '{}' in '{value}'", change.name),
                )
            }
        }
    }
    // qemu-server `get_cpu_options`: the custom model's value, then the VM's.
    if conf.phys_bits.is_some() {
        phys_bits = conf.phys_bits;
    }
    if conf.guest_phys_bits.is_some() {
        guest_phys_bits = conf.guest_phys_bits;
    }
    Requirement {
        cpu: value.to_string(),
        cputype,
        running_cpu: None,
        base,
        features,
        phys_bits,
        guest_phys_bits,
        nested_virt,
        hugepages_1g: false,
        hyperv,
        kvm: true,
        unknown: None,
        vcpus: 0,
        guest: Guest::X86,
        start_error: None,
        automatic: auto.notes.clone(),
        machine: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runningcpu_as_qemu_server_writes_it() {
        // qemu-server's -cpu for `cpu: x86-64-v2-AES` (qemu-server test/cfg2cmd, CPUConfig.pm `get_cpu_options`).
        let r = from_qemu_cpu_arg(
            "qemu64,+aes,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+pni,+popcnt,+sse4.1,+sse4.2,+ssse3",
        );
        assert_eq!(r.unknown, None);
        let v2aes = from_cpu_value("x86-64-v2-AES", &CustomModels::default());
        assert!(
            v2aes.features.is_subset(&r.features),
            "{:?}",
            v2aes.features.difference(&r.features).collect::<Vec<_>>()
        );
        assert!(r.vendor_from_host());
        let r = from_qemu_cpu_arg("Icelake-Server,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,vendor=GenuineIntel,-hle,rtm=off,hv_spinlocks=0x1fff,hv_vapic");
        assert_eq!(r.unknown, None);
        assert!(!r.vendor_from_host());
        assert!(!r.features.contains("hle") && !r.features.contains("rtm"));
        let r = from_qemu_cpu_arg("host,+kvm_pv_eoi,host-phys-bits=true");
        assert_eq!(
            (r.base, r.phys_bits),
            (GuestCpu::Host, Some(PhysBits::Host))
        );
        assert!(from_qemu_cpu_arg("NoSuchModel,enforce").unknown.is_some());
    }

    #[test]
    fn a_hibernated_vm_resumes_with_its_runningcpu() {
        let vm = crate::pve::vmconf::parse(
            "cpu: x86-64-v4\nrunningcpu: kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep\nvmstate: local:100/vm-100-state-suspend.raw\n",
            std::path::Path::new("100.conf"),
        )
        .unwrap();
        let unknown = crate::cpu::launch::StartNode::UNKNOWN;
        let r = vm.launch(&unknown, &CustomModels::default()).requirement;
        assert!(!r.features.contains("avx512f"), "resumes as kvm64");
        assert!(r.cpu.contains("resuming with runningcpu"));
        // Without vmstate (a snapshot's runningcpu stays in its section) the cpu: counts.
        let vm = crate::pve::vmconf::parse(
            "cpu: x86-64-v4\nrunningcpu: kvm64\n",
            std::path::Path::new("x"),
        )
        .unwrap();
        assert!(vm
            .launch(&unknown, &CustomModels::default())
            .requirement
            .features
            .contains("avx512f"));
    }
}
