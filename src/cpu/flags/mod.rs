//! Flag names and how a host's /proc/cpuinfo translates into the features
//! KVM can give a guest.
//!
//! The canonical spelling inside pve-cpuguard is QEMU's (that is what VM
//! configs, custom models and QEMU's model table use). /proc/cpuinfo names are
//! converted once, here, through the position-matched table in
//! `src/cpu/data/cpu-data.json` (a QEMU feature and a Linux flag are the same
//! thing when they sit at the same CPUID leaf, register and bit).
//!
//! On top of the table, a few rules describe where /proc/cpuinfo and KVM
//! disagree. Each is a fact with its source:
//! - Linux `arch/x86/kvm/cpuid.c` (`kvm_set_cpu_caps`): KVM emulates x2apic,
//!   tsc-deadline, arat, hypervisor, tsc-adjust and ARCH_CAPABILITIES whatever
//!   the host has, and maps the kernel's synthetic Spectre flags
//!   (`ibrs ibpb stibp ssbd`) to both the Intel and the AMD CPUID bits.
//! - Linux `arch/x86/kvm/x86.c` (`kvm_get_arch_capabilities`): the
//!   ARCH_CAPABILITIES "not affected" bits KVM reports follow the host's
//!   `bugs` line; `taa-no` is dropped when the host has no `rtm`.
//! - QEMU `target/i386/cpu.c` / `kvm/kvm-cpu.c`: QEMU itself provides
//!   mce/mca/mtrr/pat/ht/topoext and the paravirtual leaves 0x4000_00xx.
//! - KVM's Intel and AMD modules decide some bits differently
//!   (`vmx_set_cpu_caps`, `svm_set_cpu_caps`): `virt-ssbd`, `ssbd`,
//!   `amd-ssbd`, `spec-ctrl`, `umip` and the AMD-only leaf 0x8000_0021 are
//!   judged per module ([`HostTest::ByModule`]: `vmx` or `svm` in
//!   /proc/cpuinfo says which).
//! - Bits KVM copies from the host's ARCH_CAPABILITIES MSR only need the
//!   host's `arch_capabilities` flag; where the kernel's `bugs` line cannot
//!   settle them (`bhi-no`, `gds-no` with `gds`), the answer is unknown.
//! - Kernel-hidden: `sep` and `syscall` are architectural on every CPU that
//!   runs a 64-bit kernel (`lm`), but old 64-bit kernels and 32-bit kernels
//!   do not print them; `la57` is not printed by kernels booted with 4-level
//!   paging, yet KVM offers it from the raw CPUID.

mod kvm_rules;
mod names;
mod vm_flags;

pub use kvm_rules::*;
pub use names::*;
pub use vm_flags::*;

#[cfg(test)]
mod tests;
