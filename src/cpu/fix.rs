//! Whether another CPU type can turn a refusal into an accept.
//!
//! Some refusals are about the CPU type (missing flags: a lower type
//! starts), others are not: a vendor change under a running guest, a node
//! without KVM, an enlightenment only Intel's KVM has. Suggesting
//! `qm set VMID --cpu TYPE` for those only earns another refusal, so every
//! suggestion asks [`fix`] first; callers then name the nodes that accept.

use crate::cpu::verdict::{Outcome, Reason, Verdict};

/// What changing the CPU type can do about a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// The verdict is no refusal.
    NotNeeded,
    /// Every reason is about the CPU type; another type may be accepted
    /// (judge it before suggesting it).
    CpuType,
    /// At least one reason stays whatever the CPU type; the text says why.
    NoCpuType(String),
}

impl Fix {
    /// Stable identifier for JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Fix::NotNeeded => "not-needed",
            Fix::CpuType => "cpu-type",
            Fix::NoCpuType(_) => "no-cpu-type",
        }
    }
}

/// Whether a CPU type can fix `v`.
#[must_use]
pub fn fix(v: &Verdict) -> Fix {
    if v.outcome != Outcome::Incompatible {
        return Fix::NotNeeded;
    }
    match v.reasons.iter().find_map(no_type_fixes) {
        Some(why) => Fix::NoCpuType(why),
        None => Fix::CpuType,
    }
}

/// Whether a CPU type can fix `v` (shorthand for [`fix`]).
#[must_use]
pub fn can_fix(v: &Verdict) -> bool {
    fix(v) == Fix::CpuType
}

/// Why no CPU type fixes `reason`, or `None` when one may.
fn no_type_fixes(reason: &Reason) -> Option<String> {
    match reason {
        // A lower or fixed model, or one that is not `host`, is judged anew.
        Reason::MissingFlags(_)
        | Reason::HostFlagsNotSubset(_)
        | Reason::HostCpuNeedsKvm
        | Reason::PhysBitsOn32BitCpu { .. } => None,
        Reason::GuestPhysBitsOutOfRange { requested, limit } => Some(format!(
            "guest-phys-bits={requested} is refused with a width of {limit} bits whatever the CPU type; lower guest-phys-bits"
        )),
        Reason::PhysBitsOutOfRange { requested } => Some(format!(
            "phys-bits={requested} is refused whatever the CPU type; set phys-bits between 32 and 52"
        )),
        Reason::VendorChange { source, target } => Some(format!(
            "the running guest sees the {source} vendor, and a new CPU type only applies at its next start; move it live to a node with the same vendor, or shut it down and start it on the {target} node"
        )),
        Reason::NestedVirtAcrossVendors { .. } => Some(
            "the running guest uses the source's virtualisation extension, which no CPU type changes; move it to a node of the same vendor, or restart it on the target".into(),
        ),
        Reason::PhysBitsTooLarge { .. } | Reason::PhysBitsHostDiffers { .. } => Some(
            "the guest's physical address width is set by phys-bits, not by the CPU type; move it to a node as wide, or restart it on the target".into(),
        ),
        Reason::HugepagesWithoutPdpe1gb => Some(
            "1 GiB hugepages need pdpe1gb on the node whatever the CPU type; use 2 MiB hugepages or a node with pdpe1gb".into(),
        ),
        Reason::NoKvm => Some(
            "the node has no usable KVM; no CPU type runs a KVM guest there (enable virtualisation in its firmware, or use another node)".into(),
        ),
        Reason::HyperVNeedsIntelVmx { flag } => Some(format!(
            "{flag} needs an Intel node whatever the CPU type; remove the flag or use an Intel node (a Windows 11+ guest started on an Intel node gets it from qemu-server by itself: shut it down and start it on the target instead)"
        )),
        Reason::TooManyVcpus { processors, .. } => Some(format!(
            "the VM's vCPU count is above the node's {processors} logical CPUs whatever the CPU type; lower sockets × cores or use a larger node"
        )),
        Reason::QemuServerRefuses(_) | Reason::MachineNewerThanQemu { .. } => Some(
            "the node's QEMU cannot run the VM's machine version whatever the CPU type; upgrade the node (pve-qemu-kvm, qemu-server) or pin an older machine version".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reasons: Vec<Reason>) -> Verdict {
        Verdict {
            outcome: Outcome::Incompatible,
            reasons,
            unknown: vec![],
            notes: vec![],
            checked_with: String::new(),
            model_vendor: None,
        }
    }

    #[test]
    fn which_refusals_a_cpu_type_can_fix() {
        let rows: Vec<(&str, Vec<Reason>, &str)> = vec![
            (
                "missing flags",
                vec![Reason::MissingFlags(vec!["avx512f".into()])],
                "cpu-type",
            ),
            (
                "host cpu under tcg",
                vec![Reason::HostCpuNeedsKvm],
                "cpu-type",
            ),
            (
                "vendor_change_suggests_no_cpu_type",
                vec![Reason::VendorChange {
                    source: "GenuineIntel".into(),
                    target: "AuthenticAMD".into(),
                }],
                "no-cpu-type",
            ),
            (
                "vendor change beside missing flags",
                vec![
                    Reason::MissingFlags(vec!["avx2".into()]),
                    Reason::VendorChange {
                        source: "GenuineIntel".into(),
                        target: "AuthenticAMD".into(),
                    },
                ],
                "no-cpu-type",
            ),
            ("no kvm", vec![Reason::NoKvm], "no-cpu-type"),
            (
                "hv-evmcs on amd",
                vec![Reason::HyperVNeedsIntelVmx {
                    flag: "hv-evmcs".into(),
                }],
                "no-cpu-type",
            ),
            (
                "hugepages",
                vec![Reason::HugepagesWithoutPdpe1gb],
                "no-cpu-type",
            ),
        ];
        for (name, reasons, code) in rows {
            let v = refused(reasons);
            assert_eq!(fix(&v).code(), code, "{name}");
            assert_eq!(can_fix(&v), code == "cpu-type", "{name}");
        }
        let mut ok = refused(vec![]);
        ok.outcome = Outcome::Compatible;
        assert_eq!(fix(&ok), Fix::NotNeeded);
    }
}
