//! What each entry of a VM's `flags=` list asks of a node.

use super::names::canonical;

/// What one entry of a VM's `flags=` list asks of the node.
///
/// qemu-server `CPUFlags.pm` (`@supported_cpu_flags`) allows `nested-virt,
/// md-clear, pcid, spec-ctrl, ssbd, ibpb, virt-ssbd, amd-ssbd, amd-no-ssb,
/// pdpe1gb, hv-tlbflush, hv-evmcs, aes` in a VM's `cpu:`; custom models may
/// name any QEMU feature. Only some of them are CPUID bits of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmFlag {
    /// A guest CPUID feature (canonical QEMU name), judged with [`host_test`].
    Feature(&'static str),
    /// Proxmox's `nested-virt`: `vmx` or `svm`, whichever the starting
    /// host's /proc/cpuinfo lists (qemu-server `CPUFlags.pm`).
    NestedVirt,
    /// A Hyper-V enlightenment: QEMU and KVM implement it in software
    /// (QEMU `target/i386/kvm/kvm.c`, `kvm_hyperv_properties`), so it needs
    /// no host CPUID bit, only what [`Enlightenment`] says.
    HyperV(Enlightenment),
}

/// What a Hyper-V enlightenment needs of the host's KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enlightenment {
    /// Provided by KVM on Intel and AMD alike.
    Any,
    /// `hv-evmcs`: QEMU enables `KVM_CAP_HYPERV_ENLIGHTENED_VMCS`, which only
    /// the Intel VMX module implements (Linux `arch/x86/kvm/x86.c`,
    /// `kvm_vcpu_ioctl_enable_cap`: `nested_ops->enable_evmcs`, set in
    /// `vmx/nested.c` `vmx_nested_ops`, absent from SVM's); QEMU refuses to
    /// start elsewhere ("Hyper-V enlightened VMCS is not supported by kernel").
    IntelVmx,
}

/// QEMU's Hyper-V enlightenment switches (`kvm_hyperv_properties` and the
/// `hv-*` properties of `x86_cpu_properties`, QEMU `target/i386/cpu.c`),
/// without the `hv-` prefix.
const HYPERV: &[&str] = &[
    "relaxed",
    "vapic",
    "time",
    "crash",
    "reset",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "stimer-direct",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "tlbflush-ext",
    "tlbflush-direct",
    "evmcs",
    "ipi",
    "avic",
    "apicv",
    "emsr-bitmap",
    "xmm-input",
    "syndbg",
    "passthrough",
    "enforce-cpuid",
];

/// The flags Proxmox VE lets a VM set with `cpu: ...,flags=` (custom models
/// may name any QEMU feature): qemu-server `CPUFlags.pm`, the VM-level list
/// (PVE 9.2).
pub const PROXMOX_VM_FLAGS: &[&str] = &[
    "nested-virt",
    "md-clear",
    "pcid",
    "spec-ctrl",
    "ssbd",
    "ibpb",
    "virt-ssbd",
    "amd-ssbd",
    "amd-no-ssb",
    "pdpe1gb",
    "hv-tlbflush",
    "hv-evmcs",
    "aes",
];

/// Classifies one `flags=` name (any spelling QEMU accepts); `None` for a
/// name QEMU does not know.
#[must_use]
pub fn vm_flag(name: &str) -> Option<VmFlag> {
    if name == "nested-virt" {
        return Some(VmFlag::NestedVirt);
    }
    if let Some(hv) = name
        .strip_prefix("hv-")
        .or_else(|| name.strip_prefix("hv_"))
    {
        let hv = hv.replace('_', "-");
        return HYPERV
            .contains(&hv.as_str())
            .then_some(VmFlag::HyperV(if hv == "evmcs" {
                Enlightenment::IntelVmx
            } else {
                Enlightenment::Any
            }));
    }
    canonical(name).map(VmFlag::Feature)
}
