//! `inspect` on a host without KVM (/proc/cpuinfo lists neither vmx nor
//! svm): no KVM guest starts there, whatever its CPU type, so the reason is
//! said once for the node, never per type (issue 23: the same five lines
//! 94 times), followed by what the CPU would offer with virtualisation
//! enabled: its level and the types that would start, judged by the same
//! verdict on the same /proc/cpuinfo with the vendor's flag added.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::inspect::judge_all;
use crate::cache::truth::level_name;
use crate::cpu::capability::Capability;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::level::{self, Level};
use crate::cpu::verdict::{Outcome, Verdict};

/// This host as it would be with virtualisation enabled.
pub(super) struct WithKvm {
    /// The flag the firmware would show: `vmx` or `svm`.
    flag: &'static str,
    /// Whether the host is itself a virtual machine (`hypervisor`): then
    /// its hypervisor, not a firmware, enables it (nested virtualisation).
    in_vm: bool,
    level: Level,
    types: Vec<(String, Verdict)>,
}

impl WithKvm {
    /// When `info` is an x86 host without KVM, the same CPU with the
    /// vendor's virtualisation flag, judged as every host is.
    pub(super) fn of(info: &CpuInfo) -> Option<Self> {
        let cap = Capability::from_cpuinfo(info);
        if level::floor(&cap) != level::Floor::NoKvm {
            return None;
        }
        // By vendor: what `kvm_intel` or `kvm_amd` would need.
        let flag = cap.nested_flag()?;
        let mut enabled = info.clone();
        enabled.flags.insert(flag);
        let cap = Capability::from_cpuinfo(&enabled);
        Some(WithKvm {
            flag,
            in_vm: info.flags.contains("hypervisor"),
            level: level::of(&cap),
            types: judge_all(&cap),
        })
    }

    fn starting(&self) -> impl Iterator<Item = &(String, Verdict)> {
        self.types
            .iter()
            .filter(|(_, v)| v.outcome == Outcome::Compatible)
    }

    /// The second line of the summary.
    pub(super) fn summary_line(&self) -> String {
        format!(
            "no KVM: no Proxmox CPU type starts here; with virtualisation enabled: level {}, \
             {} of {} types",
            level_name(&self.level),
            self.starting().count(),
            self.types.len()
        )
    }

    /// What to do, then what the CPU would offer: the node-wide reason
    /// is the `Level:` line above it, once.
    pub(super) fn write(&self, s: &mut String, host_vendor: &str) {
        let (what, fix) = if self.in_vm {
            (
                "nested virtualisation",
                "for this virtual machine on its hypervisor (its /proc/cpuinfo says `hypervisor`), \
                 then restart it",
            )
        } else if self.flag == "svm" {
            // /proc/cpuinfo cannot tell a CPU without the extension from
            // one whose firmware turned it off.
            (
                "virtualisation (AMD-V)",
                "in the firmware (BIOS/UEFI setup) if this CPU has it, then reboot",
            )
        } else {
            (
                "virtualisation (VT-x)",
                "in the firmware (BIOS/UEFI setup) if this CPU has it, then reboot",
            )
        };
        let _ = writeln!(
            s,
            "No KVM:     enable {what} {fix}; until then only VMs with `kvm: 0` start here"
        );
        let mut foreign = BTreeSet::new();
        let names: Vec<String> = self
            .starting()
            .map(|(name, v)| match v.model_vendor.as_deref() {
                Some(vendor) => {
                    foreign.insert(vendor.to_string());
                    format!("{name}*")
                }
                None => name.clone(),
            })
            .collect();
        let total = self.types.len();
        let mut head = format!(
            "With KVM:   level {} (with {} in /proc/cpuinfo)",
            level_name(&self.level),
            self.flag
        );
        if let Some((next, missing)) = self.level.next.as_ref().filter(|(_, m)| !m.is_empty()) {
            let _ = write!(head, "; next level {next} needs {}", missing.join(", "));
        }
        let _ = writeln!(s, "{head}");
        let _ = writeln!(
            s,
            "            {} of {total} Proxmox CPU types would start: {}",
            names.len(),
            names.join(", ")
        );
        if names.len() < total {
            let _ = writeln!(
                s,
                "            the other {} lack CPU flags even then (`inspect -o json`: with_kvm)",
                total - names.len()
            );
        }
        for vendor in &foreign {
            let _ = writeln!(
                s,
                "* a {vendor} model: the guest sees vendor={vendor} on this {host_vendor} host"
            );
        }
    }

    /// JSON `with_kvm`.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "flag": self.flag,
            "in_vm": self.in_vm,
            "level": level_name(&self.level),
            "level_floor_met": self.level.floor_met,
            "next_level": self.level.next.as_ref().map(|(n, m)| json!({"name": n, "missing": m})),
            "cpu_types": self.types.iter().map(|(name, v)| super::inspect::type_json(name, v)).collect::<Vec<_>>(),
        })
    }
}
