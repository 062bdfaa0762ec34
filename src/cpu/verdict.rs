//! The verdict: can this node give this VM its CPU?
//!
//! A pure function of a [`Requirement`], the target's [`Capability`] and,
//! for a live migration, the source's. Every refusal carries typed reasons;
//! a false refusal is as much a bug as a false accept, so anything the data
//! cannot decide is `Unknown` or a note, never a guess.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::cpu::capability::{Capability, KvmModule, View};
use crate::cpu::cpuconf::PhysBits;
use crate::cpu::flags::{self, Enlightenment, VmFlag};
use crate::cpu::qemu_report::Accel;
use crate::cpu::requirement::{GuestCpu, Requirement};

/// What is being decided.
#[derive(Debug, Clone, Copy)]
pub enum Question<'a> {
    /// Can the VM start on the target at all?
    Start,
    /// Can the running VM move live from `source` to the target?
    /// `None` when the source's capability is not known.
    Live {
        /// Source node capability.
        source: Option<&'a Capability>,
    },
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Required features the target lacks (QEMU spelling).
    MissingFlags(Vec<String>),
    /// The guest sees the host's vendor, and it would change.
    VendorChange { source: String, target: String },
    /// Live: `phys-bits=N` larger than the target's width, and the target
    /// narrower than the source the guest runs on (`None`: not known).
    PhysBitsTooLarge {
        requested: u32,
        target: u32,
        source: Option<u32>,
    },
    /// `phys-bits=host` with different widths on source and target.
    PhysBitsHostDiffers { source: u32, target: u32 },
    /// `cpu: host`/`max`: the source offers features the target lacks.
    HostFlagsNotSubset(Vec<String>),
    /// `nested-virt` resolves to vmx on one side and svm on the other.
    NestedVirtAcrossVendors { source: String, target: String },
    /// 1 GiB huge pages without `pdpe1gb` on the target.
    HugepagesWithoutPdpe1gb,
    /// The target has no usable KVM (its /proc/cpuinfo lists neither `vmx`
    /// nor `svm`), and the VM runs under KVM.
    NoKvm,
    /// `cpu: host` with `kvm: 0`: QEMU's `host` model needs KVM.
    HostCpuNeedsKvm,
    /// A Hyper-V enlightenment only Intel's KVM module implements
    /// (`hv-evmcs`), on a node that runs another.
    HyperVNeedsIntelVmx { flag: String },
    /// `phys-bits=N` outside what QEMU accepts for a 64-bit CPU (32-52).
    PhysBitsOutOfRange { requested: u32 },
    /// `phys-bits=N` on a CPU type without long mode.
    PhysBitsOn32BitCpu { cputype: String },
    /// `guest-phys-bits=N` above the guest's physical address width on
    /// this node (or below 32).
    GuestPhysBitsOutOfRange { requested: u32, limit: u32 },
}

impl Reason {
    /// Stable identifier for JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Reason::MissingFlags(_) => "missing-flags",
            Reason::VendorChange { .. } => "vendor-change",
            Reason::PhysBitsTooLarge { .. } => "phys-bits-too-large",
            Reason::PhysBitsHostDiffers { .. } => "phys-bits-host-differs",
            Reason::HostFlagsNotSubset(_) => "host-flags-not-subset",
            Reason::NestedVirtAcrossVendors { .. } => "nested-virt-across-vendors",
            Reason::HugepagesWithoutPdpe1gb => "hugepages-without-pdpe1gb",
            Reason::NoKvm => "no-kvm",
            Reason::HostCpuNeedsKvm => "host-cpu-needs-kvm",
            Reason::HyperVNeedsIntelVmx { .. } => "hyperv-needs-intel-vmx",
            Reason::PhysBitsOutOfRange { .. } => "phys-bits-out-of-range",
            Reason::PhysBitsOn32BitCpu { .. } => "phys-bits-on-32-bit-cpu",
            Reason::GuestPhysBitsOutOfRange { .. } => "guest-phys-bits-out-of-range",
        }
    }

    /// Flags this reason says are missing, if any.
    #[must_use]
    pub fn missing_flags(&self) -> &[String] {
        match self {
            Reason::MissingFlags(f) | Reason::HostFlagsNotSubset(f) => f,
            _ => &[],
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::MissingFlags(flags) => write!(f, "missing flags: {}", flags.join(", ")),
            Reason::VendorChange { source, target } => write!(
                f,
                "vendor change {source} -> {target}: this CPU type shows the host's vendor, which would change under the running guest"
            ),
            Reason::PhysBitsTooLarge {
                requested,
                target,
                source,
            } => {
                write!(
                    f,
                    "phys-bits={requested} is larger than the target's {target} physical address bits"
                )?;
                if let Some(s) = source {
                    write!(f, " (the source has {s})")?;
                }
                f.write_str(": the running guest was told it may use addresses up to that width and may already use some above the target's, which KVM there cannot map; QEMU only warns at a fresh start, so stop the VM and start it on the target instead")
            }
            Reason::PhysBitsHostDiffers { source, target } => write!(
                f,
                "phys-bits=host with different widths: source {source} bits, target {target} bits"
            ),
            Reason::HostFlagsNotSubset(flags) => write!(
                f,
                "the source CPU gives the guest flags the target lacks: {}",
                flags.join(", ")
            ),
            Reason::NestedVirtAcrossVendors { source, target } => write!(
                f,
                "nested-virt across vendors: the guest has {source} on the source, the target only offers {target}"
            ),
            Reason::HugepagesWithoutPdpe1gb => {
                f.write_str("1 GiB hugepages need pdpe1gb, which the target lacks")
            }
            Reason::NoKvm => f.write_str(
                "the node has no usable KVM: its /proc/cpuinfo lists neither vmx nor svm (virtualisation off in the firmware, or a virtual machine without nested virtualisation), so Proxmox VE refuses to start KVM guests there (\"KVM virtualisation configured, but not available\"); only VMs with `kvm: 0` run there",
            ),
            Reason::HostCpuNeedsKvm => f.write_str(
                "cpu type host with `kvm: 0`: QEMU refuses the host model under TCG (\"CPU model 'host' requires KVM or HVF\"), on every node",
            ),
            Reason::PhysBitsOutOfRange { requested } => write!(
                f,
                "phys-bits={requested}: QEMU accepts 32 to 52 for a 64-bit CPU and refuses to start with any other value (\"phys-bits should be between 32 and 52\"), on every node"
            ),
            Reason::PhysBitsOn32BitCpu { cputype } => write!(
                f,
                "{cputype} is a 32-bit CPU type, for which QEMU refuses any phys-bits (\"phys-bits is not user-configurable in 32 bit\"), on every node"
            ),
            Reason::GuestPhysBitsOutOfRange { requested, limit } => write!(
                f,
                "guest-phys-bits={requested}: QEMU accepts 32 up to the guest's physical address width, {limit} bits here, and refuses to start otherwise (\"guest-phys-bits should be between 32 and {limit}\")"
            ),
            Reason::HyperVNeedsIntelVmx { flag } => write!(
                f,
                "{flag} needs Intel VT-x with kvm_intel's nested virtualisation on: only KVM's Intel module implements the enlightened VMCS, and QEMU refuses to start without it (\"Hyper-V enlightened VMCS is not supported by kernel\")"
            ),
        }
    }
}

/// The three possible answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Safe.
    Compatible,
    /// Unsafe, with reasons.
    Incompatible,
    /// Cannot be decided from the data at hand.
    Unknown,
}

impl Outcome {
    /// Stable identifier for JSON and text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Compatible => "compatible",
            Outcome::Incompatible => "incompatible",
            Outcome::Unknown => "unknown",
        }
    }
}

/// A verdict with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The answer.
    pub outcome: Outcome,
    /// Why incompatible (empty otherwise).
    pub reasons: Vec<Reason>,
    /// Why unknown (empty otherwise).
    pub unknown: Vec<String>,
    /// Things worth knowing that do not change the answer.
    pub notes: Vec<String>,
    /// Which view of the target decided: "from /proc/cpuinfo" or
    /// "checked with QEMU 7.2.22 under KVM".
    pub checked_with: String,
    /// The named model's vendor when it is not the host's (the guest then
    /// sees that vendor; also said in `notes`), so that listings can say it
    /// once for all such models.
    pub model_vendor: Option<String>,
}

impl Verdict {
    /// Every missing flag named by any reason, sorted, deduplicated.
    #[must_use]
    pub fn missing_flags(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .reasons
            .iter()
            .flat_map(|r| r.missing_flags().iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// JSON fragment shared by every command that reports a verdict.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "verdict": self.outcome.as_str(),
            "missing_flags": self.missing_flags(),
            "reasons": self.reasons.iter().map(|r| json!({"code": r.code(), "message": r.to_string()})).collect::<Vec<_>>(),
            "unknown": self.unknown,
            "notes": self.notes,
            "checked_with": self.checked_with,
        })
    }
}

/// Decides whether `target` can give the VM described by `req` its CPU.
#[must_use]
pub fn judge(req: &Requirement, target: &Capability, mode: Question<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let mut unknown = Vec::new();
    let mut notes = Vec::new();
    let mut model_vendor: Option<String> = None;
    if let Some(why) = &req.unknown {
        return Verdict {
            outcome: Outcome::Unknown,
            reasons,
            unknown: vec![why.clone()],
            notes,
            checked_with: target.view.describe(),
            model_vendor: None,
        };
    }
    if !target.x86_vendor() {
        return Verdict {
            outcome: Outcome::Unknown,
            reasons,
            unknown: vec![format!(
                "the node's /proc/cpuinfo names no x86 CPU vendor (vendor_id '{}'), so what it can give a guest cannot be judged",
                target.vendor
            )],
            notes,
            checked_with: target.view.describe(),
            model_vendor: None,
        };
    }
    if !req.kvm {
        return judge_tcg(req, target, mode);
    }
    if target.kvm_module().is_none() {
        return Verdict {
            outcome: Outcome::Incompatible,
            reasons: vec![Reason::NoKvm],
            unknown,
            notes,
            checked_with: target.view.describe(),
            model_vendor: None,
        };
    }
    let source = match mode {
        Question::Start => None,
        Question::Live { source } => {
            if source.is_none() && needs_source(req) {
                unknown.push("the source node's CPU is not known (no cache record): the checks that compare source and target could not run".into());
            }
            source
        }
    };

    // Copied only when nested-virt adds to it (this runs for every node).
    let mut required = Cow::Borrowed(&req.features);
    if req.nested_virt {
        match target.nested_flag() {
            Some(flag) => {
                required.to_mut().insert(flag.to_string());
            }
            None => unknown.push(format!(
                "nested-virt on a host of unknown vendor '{}'",
                target.vendor
            )),
        }
    }
    // QEMU's own per-model answer where the target has one, else cpuinfo.
    let check = target.check_features(&req.base, &required);
    if !check.missing.is_empty() {
        if req.base == GuestCpu::Host {
            // qemu-server gives `host` no `enforce` (`get_cpu_options`), and
            // without it QEMU warns about and drops what KVM lacks
            // (`x86_cpu_realizefn`, `x86_cpu_filter_features`).
            notes.push(format!(
                "cpu type host starts without `enforce`: QEMU warns about and leaves out {}, which the node cannot give",
                check.missing.join(", ")
            ));
        } else {
            reasons.push(Reason::MissingFlags(check.missing));
        }
    }
    if !check.unverifiable.is_empty() {
        notes.push(format!(
            "not verifiable from /proc/cpuinfo (QEMU's enforce checks them at start): {}",
            check
                .unverifiable
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    notes.extend(check.notes);

    for hv in &req.hyperv {
        if flags::vm_flag(hv) != Some(VmFlag::HyperV(Enlightenment::IntelVmx)) {
            continue;
        }
        // KVM's eVMCS version is 0 unless kvm_intel offers VMX to guests
        // (`nested=1`, Linux `vmx/hyperv.c` `nested_get_evmcs_version`):
        // QEMU's answer under KVM shows it, /proc/cpuinfo does not.
        let qemu_kvm = matches!(&target.view, View::QemuKvm(q) if q.accel == Accel::Kvm);
        if target.kvm_module() != Some(KvmModule::Vmx) || (qemu_kvm && !target.has("vmx")) {
            reasons.push(Reason::HyperVNeedsIntelVmx { flag: hv.clone() });
        } else if !qemu_kvm {
            notes.push(format!(
                "{hv} also needs kvm_intel's nested virtualisation (`nested=1`, the default), which /proc/cpuinfo does not show"
            ));
        }
    }

    if let GuestCpu::Model {
        vendor: Some(v),
        qemu_model,
    } = &req.base
    {
        if *v != target.vendor {
            model_vendor = Some(v.to_string());
            notes.push(format!(
                "{qemu_model} is a {v} model; this {} host runs it with vendor={v}",
                target.vendor
            ));
        }
    }

    if let Some(src) = source {
        if req.vendor_from_host() && src.vendor != target.vendor {
            reasons.push(Reason::VendorChange {
                source: src.vendor.clone(),
                target: target.vendor.clone(),
            });
        }
        if matches!(req.base, GuestCpu::Host | GuestCpu::Max) {
            let lacking = target.missing(&src.features().present);
            if !lacking.is_empty() {
                reasons.push(Reason::HostFlagsNotSubset(lacking));
            }
            if src.family_model != target.family_model && matches!(req.base, GuestCpu::Host) {
                notes.push(format!(
                    "cpu type host: source '{}' and target '{}' are different CPU models",
                    src.model_name, target.model_name
                ));
            }
        }
        if req.nested_virt {
            if let (Some(s), Some(t)) = (src.nested_flag(), target.nested_flag()) {
                if s != t {
                    reasons.push(Reason::NestedVirtAcrossVendors {
                        source: s.into(),
                        target: t.into(),
                    });
                }
            }
        }
    }

    reasons.extend(phys_bits_qemu_refuses(req));
    reasons.extend(guest_phys_bits_refused(req, target.phys_bits, true));
    match (req.phys_bits, target.phys_bits) {
        (Some(PhysBits::Bits(n)), Some(t)) if n > t => {
            // QEMU only warns ("Host physical bits (T) does not match
            // phys-bits property (N)", `host_cpu_adjust_phys_bits` in
            // target/i386/host-cpu.c) and starts.
            let warning = format!(
                "phys-bits={n} is larger than this node's {t} physical address bits: QEMU starts the VM with a warning, and the guest must not use addresses above {t} bits"
            );
            match mode {
                Question::Start => notes.push(warning),
                // A guest that already ran on a node at least as narrow
                // loses nothing; otherwise its address space would shrink
                // under it.
                Question::Live { .. } => match source.and_then(|s| s.phys_bits) {
                    Some(s) if t >= s => notes.push(warning),
                    s => reasons.push(Reason::PhysBitsTooLarge {
                        requested: n,
                        target: t,
                        source: s,
                    }),
                },
            }
        }
        (Some(PhysBits::Bits(_)), None) => {
            notes.push("the target's physical address width is not known".into())
        }
        (Some(PhysBits::Host), t) => {
            if let Some(src) = source {
                match (src.phys_bits, t) {
                    (Some(s), Some(t)) if s != t => reasons.push(Reason::PhysBitsHostDiffers {
                        source: s,
                        target: t,
                    }),
                    (Some(_), Some(_)) => {}
                    _ => unknown.push(
                        "phys-bits=host, but a node's physical address width is not known".into(),
                    ),
                }
            }
        }
        _ => {}
    }

    if req.hugepages_1g && !target.has(flags::canonical("pdpe1gb").unwrap_or("pdpe1gb")) {
        reasons.push(Reason::HugepagesWithoutPdpe1gb);
    }

    let outcome = if !reasons.is_empty() {
        Outcome::Incompatible
    } else if !unknown.is_empty() {
        Outcome::Unknown
    } else {
        Outcome::Compatible
    };
    Verdict {
        outcome,
        reasons,
        unknown,
        notes,
        checked_with: target.view.describe(),
        model_vendor,
    }
}

/// A VM with `kvm: 0`: QEMU emulates its CPU with TCG. qemu-server gives it
/// no `enforce` (`get_cpu_options`: only `$kvm` guests get it), so QEMU
/// drops with a warning whatever TCG cannot emulate and starts; and only
/// under KVM does QEMU show the host's vendor (`x86_cpu_load_model`:
/// `accel_uses_host_cpuid()`), so the guest's CPU is the same on every node.
fn judge_tcg(req: &Requirement, target: &Capability, mode: Question<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let mut notes = vec![
        "`kvm: 0`: the VM runs under TCG, QEMU's emulator, which needs no host CPU flag (features TCG cannot emulate are left out with a warning)".to_string(),
    ];
    if req.base == GuestCpu::Host {
        reasons.push(Reason::HostCpuNeedsKvm);
    }
    reasons.extend(phys_bits_qemu_refuses(req));
    reasons.extend(guest_phys_bits_refused(req, target.phys_bits, false));
    if matches!(mode, Question::Live { .. }) {
        notes.push(
            "under TCG the guest sees the same CPU, vendor included, on every node".to_string(),
        );
    }
    // Backing guest memory with 1 GiB pages is the host kernel's business,
    // whatever the accelerator.
    if req.hugepages_1g && !target.has(flags::canonical("pdpe1gb").unwrap_or("pdpe1gb")) {
        reasons.push(Reason::HugepagesWithoutPdpe1gb);
    }
    Verdict {
        outcome: if reasons.is_empty() {
            Outcome::Compatible
        } else {
            Outcome::Incompatible
        },
        reasons,
        unknown: Vec::new(),
        notes,
        checked_with: target.view.describe(),
        model_vendor: None,
    }
}

/// What QEMU refuses about `phys-bits=N` whatever the node and accelerator
/// (`x86_cpu_realizefn`, target/i386/cpu.c: 32..=TARGET_PHYS_ADDR_SPACE_BITS,
/// 52 on x86_64, for CPUs with long mode; none at all without). Proxmox VE
/// accepts 8-64 (`CPUConfig.pm` `parse_phys_bits`).
fn phys_bits_qemu_refuses(req: &Requirement) -> Option<Reason> {
    let Some(PhysBits::Bits(n)) = req.phys_bits else {
        return None;
    };
    let model = match &req.base {
        GuestCpu::Host | GuestCpu::Max => None,
        GuestCpu::Model { qemu_model, .. } => Some(qemu_model),
    };
    if let Some(m) = model.filter(|_| !req.features.contains("lm")) {
        Some(Reason::PhysBitsOn32BitCpu {
            cputype: m.trim_end_matches("-v1").to_string(),
        })
    } else if !(32..=52).contains(&n) {
        Some(Reason::PhysBitsOutOfRange { requested: n })
    } else {
        None
    }
}

/// `guest-phys-bits=N` against the guest's physical address width on a
/// node of `host_bits` (`x86_cpu_realizefn`: 32 ≤ N ≤ phys-bits). That width
/// is `phys-bits=N`; under KVM `phys-bits=host`, and `host`/`max` without
/// phys-bits (`host_cpu_max_instance_init` turns `host-phys-bits` on), take
/// the node's; anything else gets QEMU's default of 40. `None` when the
/// width is not known or nothing is refused.
fn guest_phys_bits_refused(req: &Requirement, host_bits: Option<u32>, kvm: bool) -> Option<Reason> {
    let requested = req.guest_phys_bits?;
    let host_width = matches!(req.phys_bits, Some(PhysBits::Host))
        || (req.phys_bits.is_none() && matches!(req.base, GuestCpu::Host | GuestCpu::Max));
    let limit = match req.phys_bits {
        Some(PhysBits::Bits(n)) => n,
        _ if kvm && host_width => host_bits?,
        _ => 40,
    };
    (!(32..=limit).contains(&requested))
        .then_some(Reason::GuestPhysBitsOutOfRange { requested, limit })
}

/// Whether a live decision depends on knowing the source.
fn needs_source(req: &Requirement) -> bool {
    req.vendor_from_host() || req.nested_virt || req.phys_bits == Some(PhysBits::Host)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cpu::capability::View;
    use crate::cpu::custom_models::CustomModels;
    use crate::cpu::flags::HostFeatures;
    use crate::cpu::requirement::from_cpu_value;

    /// A KVM host (`vmx` on Intel, `svm` on AMD) whose present features are
    /// kvm64's plus `extra` (QEMU names).
    fn host(vendor: &str, bits: u32, extra: &str) -> Capability {
        let kvm = if vendor == "GenuineIntel" {
            "vmx"
        } else {
            "svm"
        };
        bare_host(vendor, bits, &format!("{kvm} {extra}"))
    }

    /// As [`host`], without the virtualisation flag unless `extra` has it.
    pub(crate) fn bare_host(vendor: &str, bits: u32, extra: &str) -> Capability {
        let none = CustomModels::default();
        let mut present: BTreeSet<String> = from_cpu_value("x86-64-v3", &none).features;
        present.extend(from_cpu_value("kvm64", &none).features);
        present.extend(
            crate::cpu::flags::KVM_PROVIDED
                .iter()
                .map(|s| (*s).to_string()),
        );
        present.extend(extra.split_whitespace().map(str::to_string));
        Capability::new(
            vendor,
            format!("{vendor} test CPU"),
            Some((6, 85)),
            Some(bits),
            HostFeatures {
                present,
                unverifiable: BTreeSet::from(["fzrm".to_string()]),
            },
            View::Cpuinfo,
        )
    }

    const INTEL: &str = "GenuineIntel";
    const AMD: &str = "AuthenticAMD";

    struct Case {
        name: &'static str,
        cpu: &'static str,
        hugepages_1g: bool,
        source: Option<Capability>,
        live: bool,
        target: Capability,
        outcome: Outcome,
        codes: &'static [&'static str],
        missing: &'static [&'static str],
    }

    fn case(name: &'static str, cpu: &'static str, target: Capability) -> Case {
        Case {
            name,
            cpu,
            hugepages_1g: false,
            source: None,
            live: false,
            target,
            outcome: Outcome::Compatible,
            codes: &[],
            missing: &[],
        }
    }

    impl Case {
        fn live(mut self, source: Capability) -> Self {
            self.live = true;
            self.source = Some(source);
            self
        }
        fn live_unknown_source(mut self) -> Self {
            self.live = true;
            self
        }
        fn hugepages(mut self) -> Self {
            self.hugepages_1g = true;
            self
        }
        fn refused(
            mut self,
            codes: &'static [&'static str],
            missing: &'static [&'static str],
        ) -> Self {
            self.outcome = Outcome::Incompatible;
            self.codes = codes;
            self.missing = missing;
            self
        }
        fn unknown(mut self) -> Self {
            self.outcome = Outcome::Unknown;
            self
        }
    }

    #[test]
    fn verdict_table() {
        let v4 = "avx512f avx512bw avx512cd avx512dq avx512vl";
        let cases = vec![
            case("v3 type on v3 host", "x86-64-v3", host(INTEL, 46, "")),
            case("v4 type on v3 host", "x86-64-v4", host(INTEL, 46, "")).refused(
                &["missing-flags"],
                &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
            ),
            case("v4 type on v4 host", "x86-64-v4", host(INTEL, 46, v4)),
            case(
                "avx512f without avx512vl",
                "x86-64-v4",
                host(INTEL, 46, "avx512f avx512bw avx512cd avx512dq"),
            )
            .refused(&["missing-flags"], &["avx512vl"]),
            case(
                "vm flag +pdpe1gb missing",
                "x86-64-v3,flags=+pdpe1gb",
                host(INTEL, 46, ""),
            )
            .refused(&["missing-flags"], &["pdpe1gb"]),
            case(
                "vm flag -pcid removes a need",
                "x86-64-v3,flags=-pcid",
                host(INTEL, 46, ""),
            ),
            case(
                "kvm64 live Intel -> AMD is a vendor change",
                "kvm64",
                host(AMD, 48, ""),
            )
            .live(host(INTEL, 46, ""))
            .refused(&["vendor-change"], &[]),
            case(
                "x86-64-v2-AES live Intel -> AMD is a vendor change",
                "x86-64-v2-AES",
                host(AMD, 48, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["vendor-change"], &[]),
            case(
                "kvm64 start on another vendor is fine",
                "kvm64",
                host(AMD, 48, ""),
            ),
            case(
                "kvm64 live without source record is unknown",
                "kvm64",
                host(INTEL, 46, ""),
            )
            .live_unknown_source()
            .unknown(),
            case(
                "phys-bits larger than target starts",
                "x86-64-v3,phys-bits=48",
                host(INTEL, 46, ""),
            ),
            case(
                "phys-bits larger than target, live from a wider source",
                "x86-64-v3,phys-bits=48",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["phys-bits-too-large"], &[]),
            case(
                "phys-bits equal to target",
                "x86-64-v3,phys-bits=46",
                host(INTEL, 46, ""),
            ),
            case(
                "phys-bits=host different widths live",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["phys-bits-host-differs"], &[]),
            case(
                "phys-bits=host same width live",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 46, "")),
            case(
                "phys-bits=host on start",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 39, ""),
            ),
            case(
                "host: source flags not on target",
                "host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 46, v4))
            .refused(
                &["host-flags-not-subset"],
                &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
            ),
            case("host: source subset of target", "host", host(INTEL, 46, v4))
                .live(host(INTEL, 46, "")),
            case("max behaves like host", "max", host(INTEL, 46, ""))
                .live(host(INTEL, 46, "avx512f"))
                .refused(&["host-flags-not-subset"], &["avx512f"]),
            // The guest on the Intel source has vmx (nested), which AMD lacks.
            case("host across vendors", "host", host(AMD, 46, ""))
                .live(host(INTEL, 46, ""))
                .refused(&["vendor-change", "host-flags-not-subset"], &["vmx"]),
            case(
                "nested-virt across vendors",
                "x86-64-v3,flags=+nested-virt",
                host(AMD, 48, "svm"),
            )
            .live(host(INTEL, 48, "vmx"))
            .refused(&["vendor-change", "nested-virt-across-vendors"], &[]),
            case(
                "nested-virt on a node without KVM",
                "x86-64-v3,flags=+nested-virt",
                bare_host(INTEL, 46, ""),
            )
            .refused(&["no-kvm"], &[]),
            case(
                "nested-virt on Intel with vmx",
                "x86-64-v3,flags=+nested-virt",
                host(INTEL, 46, "vmx"),
            ),
            case(
                "1 GiB hugepages without pdpe1gb",
                "x86-64-v3",
                host(INTEL, 46, ""),
            )
            .hugepages()
            .refused(&["hugepages-without-pdpe1gb"], &[]),
            case(
                "1 GiB hugepages with pdpe1gb",
                "x86-64-v3",
                host(INTEL, 46, "pdpe1gb"),
            )
            .hugepages(),
            case("unknown model", "NoSuchCPU-v9", host(INTEL, 46, "")).unknown(),
            case(
                "unknown flag",
                "x86-64-v3,flags=+no-such-flag",
                host(INTEL, 46, ""),
            )
            .unknown(),
            case(
                "unverifiable feature is a note, not a refusal",
                "x86-64-v3,flags=+fzrm",
                host(INTEL, 46, ""),
            ),
        ];
        for c in cases {
            let mut req = from_cpu_value(c.cpu, &CustomModels::default());
            req.hugepages_1g = c.hugepages_1g;
            let mode = if c.live {
                Question::Live {
                    source: c.source.as_ref(),
                }
            } else {
                Question::Start
            };
            let v = judge(&req, &c.target, mode);
            assert_eq!(v.outcome, c.outcome, "{}: {v:?}", c.name);
            let codes: Vec<&str> = v.reasons.iter().map(Reason::code).collect();
            assert_eq!(codes, c.codes, "{}", c.name);
            assert_eq!(v.missing_flags(), c.missing, "{}", c.name);
        }
    }

    #[test]
    fn unverifiable_features_are_named_in_a_note() {
        let req = from_cpu_value("x86-64-v3,flags=+fzrm", &CustomModels::default());
        let v = judge(&req, &host(INTEL, 46, ""), Question::Start);
        assert!(v.notes.iter().any(|n| n.contains("fzrm")), "{v:?}");
    }

    #[test]
    fn named_model_keeps_its_vendor_across_hosts() {
        // Proxmox forces vendor= for named models, so Intel->AMD is no vendor change.
        let req = from_cpu_value("x86-64-v2", &CustomModels::default());
        assert!(req.vendor_from_host());
        let req = from_cpu_value("Nehalem", &CustomModels::default());
        assert!(!req.vendor_from_host(), "{req:?}");
    }
}
