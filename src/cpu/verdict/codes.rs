//! Every refusal code with what it means and what fixes it: the man pages'
//! REFUSAL CODES section and `--output json`'s `reasons` use these codes.
//! The README's *What each refusal means* says the same at length.

use super::Reason;

/// (code, what it means, what fixes it), in the order of [`Reason`].
pub const REFUSAL_CODES: &[(&str, &str, &str)] = &[
    (
        "missing-flags",
        "The target lacks CPU flags the VM's CPU type requires; QEMU starts Proxmox VE's VMs with enforce, so the VM would not start there.",
        "Another node that has them, or a lower CPU type (qm set VMID --cpu TYPE, next cold start).",
    ),
    (
        "vendor-change",
        "A CPU type that shows the host's vendor (host, max, kvm64, x86-64-vN) would move live between Intel and AMD.",
        "Migrate within one vendor, or stop the VM and start it on the other side; vendor_change = warn allows it.",
    ),
    (
        "phys-bits-too-large",
        "Live migration: phys-bits is wider than the target's physical address width.",
        "Stop the VM and start it on the target, or another target.",
    ),
    (
        "phys-bits-host-differs",
        "phys-bits=host, and source and target have different widths.",
        "An explicit phys-bits every node supports.",
    ),
    (
        "host-flags-not-subset",
        "cpu: host or max: the source gives the guest flags the target lacks.",
        "A named CPU type (the baseline), or migrate only between identical CPUs.",
    ),
    (
        "nested-virt-across-vendors",
        "+nested-virt is vmx on Intel and svm on AMD; a guest hypervisor cannot switch.",
        "Stay within one vendor.",
    ),
    (
        "hugepages-without-pdpe1gb",
        "1 GiB huge pages (hugepages: 1024) on a target without pdpe1gb.",
        "2 MiB pages (hugepages: 2), or a target with pdpe1gb.",
    ),
    (
        "no-kvm",
        "The target lists neither vmx nor svm: Proxmox VE starts no KVM guest there.",
        "Enable VT-x or AMD-V in its firmware; VMs with kvm: 0 still run there.",
    ),
    (
        "host-cpu-needs-kvm",
        "cpu: host with kvm: 0: QEMU has no host model under TCG.",
        "A named CPU type, or kvm: 1.",
    ),
    (
        "hyperv-needs-intel-vmx",
        "hv-evmcs (set, or added by qemu-server for Windows 11 and newer) on a node that is not Intel with nested VMX.",
        "Remove the flag, or an Intel node; for the automatic one, stop the VM and start it on the target.",
    ),
    (
        "phys-bits-out-of-range",
        "phys-bits outside 32-52: QEMU refuses on every node.",
        "A phys-bits from 32 to 52.",
    ),
    (
        "phys-bits-on-32-bit-cpu",
        "phys-bits on a 32-bit CPU type (kvm32, athlon, ...): QEMU refuses on every node.",
        "No phys-bits, or a 64-bit CPU type.",
    ),
    (
        "guest-phys-bits-out-of-range",
        "guest-phys-bits below 32 or above the guest's physical address width there.",
        "A smaller guest-phys-bits.",
    ),
    (
        "too-many-vcpus",
        "Sockets x cores is above the node's logical CPUs: qemu-server refuses the start.",
        "Fewer vCPUs, or a larger node.",
    ),
    (
        "qemu-server-refuses-start",
        "qemu-server refuses the start on that node whatever the CPU (its QEMU is older than the VM's machine version).",
        "Upgrade the node.",
    ),
    (
        "machine-newer-than-qemu",
        "Live migration: the running guest's machine version is newer than the target's QEMU.",
        "Upgrade the target node.",
    ),
];

/// The entry of a reason's code.
#[must_use]
pub fn explain(reason: &Reason) -> Option<&'static (&'static str, &'static str, &'static str)> {
    REFUSAL_CODES.iter().find(|(c, _, _)| *c == reason.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reason of every kind. The match below has no wildcard, so a new
    /// reason does not compile until it is listed here — and then this test
    /// fails until it has its line in the table.
    fn one_of_each() -> Vec<Reason> {
        let all = vec![
            Reason::MissingFlags(vec!["avx".into()]),
            Reason::VendorChange {
                source: "GenuineIntel".into(),
                target: "AuthenticAMD".into(),
            },
            Reason::PhysBitsTooLarge {
                requested: 46,
                target: 39,
                source: None,
            },
            Reason::PhysBitsHostDiffers {
                source: 46,
                target: 39,
            },
            Reason::HostFlagsNotSubset(vec!["avx".to_string()].into()),
            Reason::NestedVirtAcrossVendors {
                source: "GenuineIntel".into(),
                target: "AuthenticAMD".into(),
            },
            Reason::HugepagesWithoutPdpe1gb,
            Reason::NoKvm,
            Reason::HostCpuNeedsKvm,
            Reason::HyperVNeedsIntelVmx {
                flag: "hv-evmcs".into(),
            },
            Reason::PhysBitsOutOfRange { requested: 60 },
            Reason::PhysBitsOn32BitCpu {
                cputype: "kvm32".into(),
            },
            Reason::GuestPhysBitsOutOfRange {
                requested: 60,
                limit: 40,
            },
            Reason::TooManyVcpus {
                vcpus: 8,
                processors: 4,
            },
            Reason::QemuServerRefuses("too old".into()),
            Reason::MachineNewerThanQemu {
                machine: "10.1".into(),
                qemu: "9.2".into(),
            },
        ];
        for r in &all {
            match r {
                Reason::MissingFlags(_)
                | Reason::VendorChange { .. }
                | Reason::PhysBitsTooLarge { .. }
                | Reason::PhysBitsHostDiffers { .. }
                | Reason::HostFlagsNotSubset(_)
                | Reason::NestedVirtAcrossVendors { .. }
                | Reason::HugepagesWithoutPdpe1gb
                | Reason::NoKvm
                | Reason::HostCpuNeedsKvm
                | Reason::HyperVNeedsIntelVmx { .. }
                | Reason::PhysBitsOutOfRange { .. }
                | Reason::PhysBitsOn32BitCpu { .. }
                | Reason::GuestPhysBitsOutOfRange { .. }
                | Reason::TooManyVcpus { .. }
                | Reason::QemuServerRefuses(_)
                | Reason::MachineNewerThanQemu { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_reason_has_exactly_one_line_and_every_line_a_reason() {
        let reasons = one_of_each();
        for r in &reasons {
            assert!(explain(r).is_some(), "{} has no line", r.code());
        }
        let codes: Vec<&str> = reasons.iter().map(Reason::code).collect();
        let table: Vec<&str> = REFUSAL_CODES.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(codes, table, "the table follows the reasons, one line each");
    }
}
