//! The verdict's rules: one function each, one row each in [`RULES`].
//!
//! A row says under which accelerator the rule applies, what it needs (the
//! source node of a live migration, say) and whether it decides alone. The
//! runner, [`super::judge`], walks the rows in order; the order is the order
//! of reasons and notes in every command's output.
//!
//! Adding a rule: write `fn rule_name(case: &Case<'_>, found: &mut Findings)`
//! with the QEMU, Proxmox VE or kernel source of its fact in a comment, give
//! it a row, and a case in `verdict_tests.rs` named after it. A rule that
//! reads the live migration's source also says so in [`source_reads`]: the
//! audit's memo judges once for every source alike in what it says.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cpu::capability::{Capability, KvmModule, View};
use crate::cpu::cpuconf::PhysBits;
use crate::cpu::flags::{self, Enlightenment, VmFlag};
use crate::cpu::launch::Guest;
use crate::cpu::qemu_report::Accel;
use crate::cpu::requirement::{GuestCpu, Requirement};

use super::{Question, Reason};

/// One rule of the verdict.
pub struct Rule {
    /// Stable name, for tests and for people reading the table.
    pub name: &'static str,
    /// Under which accelerator the VM's start is what the rule is about.
    pub under: Under,
    /// What the rule needs besides the requirement and the target.
    pub needs: Needs,
    /// Whether what it finds is the whole verdict (no later rule runs).
    pub decides_alone: bool,
    /// The check.
    pub check: fn(&Case<'_>, &mut Findings),
}

/// Which VMs a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Under {
    /// Every VM.
    Either,
    /// VMs under KVM (`kvm: 1`, the default).
    Kvm,
    /// VMs under TCG, QEMU's emulator (`kvm: 0`).
    Tcg,
}

/// What a rule needs to run.
#[derive(Clone, Copy)]
pub enum Needs {
    /// The requirement and the target (and the source, if it has it).
    Target,
    /// For a live migration of a VM `when` holds for, the source's
    /// capability: the rule runs only once it is known, and while it is
    /// not, the verdict is unknown rather than a guess. Not run for starts.
    Source {
        /// Which requirements the source matters for.
        when: fn(&Requirement) -> bool,
    },
}

/// What every rule sees.
pub struct Case<'a> {
    /// The VM's requirement.
    pub req: &'a Requirement,
    /// The node asked about.
    pub target: &'a Capability,
    /// Start or live migration.
    pub question: Question<'a>,
    /// The live migration's source, when known.
    pub source: Option<&'a Capability>,
    /// The features the VM needs of the target: the requirement's, plus
    /// vmx or svm for `nested-virt` (copied only then: this runs for
    /// every node).
    pub required: Cow<'a, BTreeSet<String>>,
    /// What the caller worked out already ([`super::judge_knowing`]).
    pub known: super::Known<'a>,
}

/// What the rules found so far.
#[derive(Debug, Default)]
pub struct Findings {
    /// Why the target is refused.
    pub reasons: Vec<Reason>,
    /// Why the answer cannot be decided.
    pub unknown: Vec<String>,
    /// Worth knowing, not changing the answer.
    pub notes: Vec<String>,
    /// The named model's vendor when it is not the target's.
    pub model_vendor: Option<String>,
}

/// Every rule, in the order its findings are reported.
pub const RULES: &[Rule] = &[
    row("requirement-known", Under::Either, true, requirement_known),
    row("x86-vendor", Under::Either, true, x86_vendor),
    row("qemu-server-start", Under::Either, true, qemu_server_start),
    row("kvm-available", Under::Kvm, true, kvm_available),
    row("vcpus", Under::Either, false, vcpus),
    row("tcg-emulates", Under::Tcg, false, tcg_emulates),
    row("host-cpu-needs-kvm", Under::Tcg, false, host_cpu_needs_kvm),
    row("nested-virt-vendor", Under::Kvm, false, nested_virt_vendor),
    row("features", Under::Kvm, false, features),
    row("hyperv-evmcs", Under::Kvm, false, hyperv_evmcs),
    row("model-vendor", Under::Kvm, false, model_vendor),
    source_row(
        "vendor-change",
        Requirement::vendor_from_host,
        vendor_change,
    ),
    source_row("host-flags-subset", host_or_max, host_flags_subset),
    source_row(
        "nested-virt-across-vendors",
        nested_virt,
        nested_across_vendors,
    ),
    row("phys-bits-range", Under::Either, false, phys_bits_range),
    row("guest-phys-bits", Under::Either, false, guest_phys_bits),
    row("phys-bits-width", Under::Kvm, false, phys_bits_width),
    source_row("phys-bits-host", phys_bits_host, phys_bits_host_differs),
    row("tcg-same-cpu", Under::Tcg, false, tcg_same_cpu_everywhere),
    row("hugepages-1g", Under::Either, false, hugepages_1g),
    row("automatic-flags", Under::Kvm, false, automatic_flags),
];

const fn row(
    name: &'static str,
    under: Under,
    decides_alone: bool,
    check: fn(&Case<'_>, &mut Findings),
) -> Rule {
    Rule {
        name,
        under,
        needs: Needs::Target,
        decides_alone,
        check,
    }
}

/// A KVM rule comparing the live migration's source with the target.
const fn source_row(
    name: &'static str,
    when: fn(&Requirement) -> bool,
    check: fn(&Case<'_>, &mut Findings),
) -> Rule {
    Rule {
        name,
        under: Under::Kvm,
        needs: Needs::Source { when },
        decides_alone: false,
        check,
    }
}

/// What the rules read of a live migration's source for a requirement
/// (memos key on it: two sources alike in these judge alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceReads {
    /// The whole CPU: every feature it gave the guest, and its model
    /// (`host-flags-subset`).
    pub cpu: bool,
    /// Its vendor (`vendor-change`).
    pub vendor: bool,
    /// Its KVM module (`nested-virt-across-vendors`).
    pub kvm_module: bool,
    /// Its physical address width (`phys-bits-host`, and `phys-bits-width`
    /// for a fixed `phys-bits=N`).
    pub phys_bits: bool,
}

/// [`SourceReads`] of `req`: the `when` of each source row, and the one
/// target row that also looks at the source (`phys_bits_width`). Under
/// TCG no rule reads the source.
pub fn source_reads(req: &Requirement) -> SourceReads {
    let kvm = req.kvm;
    SourceReads {
        cpu: kvm && host_or_max(req),
        vendor: kvm && req.vendor_from_host(),
        kvm_module: kvm && nested_virt(req),
        phys_bits: kvm && req.phys_bits.is_some(),
    }
}

/// Of `req`'s vCPUs and 1 GiB huge pages, what the rules read on `target`
/// (`vcpus` and `hugepages-1g`, the only rules reading them): the count
/// only if more than the target's logical CPUs (else 0), the huge pages
/// only if the target lacks pdpe1gb. A requirement with these in their
/// place gets the same verdict there, so memos key on it.
pub fn vcpus_and_hugepages_on(req: &Requirement, target: &Capability) -> (u32, bool) {
    let over = target.processors.is_some_and(|p| req.vcpus > p);
    let hugepages =
        req.hugepages_1g && !target.has(flags::canonical("pdpe1gb").unwrap_or("pdpe1gb"));
    (if over { req.vcpus } else { 0 }, hugepages)
}

fn host_or_max(req: &Requirement) -> bool {
    matches!(req.base, GuestCpu::Host | GuestCpu::Max)
}

fn nested_virt(req: &Requirement) -> bool {
    req.nested_virt
}

fn phys_bits_host(req: &Requirement) -> bool {
    req.phys_bits == Some(PhysBits::Host)
}

/// A requirement that could not be resolved (an unknown CPU type, an
/// `args: -cpu`) cannot be judged on any node.
fn requirement_known(case: &Case<'_>, found: &mut Findings) {
    if let Some(why) = &case.req.unknown {
        found.unknown.push(why.clone());
    }
}

/// Only x86 CPUs can be judged; a node whose cpuinfo names no x86 vendor
/// is unknown, never taken for the lowest level.
fn x86_vendor(case: &Case<'_>, found: &mut Findings) {
    if !case.target.x86_vendor() {
        found.unknown.push(format!(
            "the node's /proc/cpuinfo names no x86 CPU vendor (vendor_id '{}'), so what it can give a guest cannot be judged",
            case.target.vendor
        ));
    }
}

/// What qemu-server's `config_to_command` refuses on the node whatever its
/// CPU: for a start, the error [`crate::cpu::launch`] found building the
/// command line there; for a live migration, a running machine version the
/// target's QEMU is too old for (it must start the same machine).
fn qemu_server_start(case: &Case<'_>, found: &mut Findings) {
    match case.question {
        Question::Start => {
            if let Some(why) = &case.req.start_error {
                found.reasons.push(Reason::QemuServerRefuses(why.clone()));
            }
        }
        Question::Live { .. } => {
            if let (Some(m), Some(q)) = (case.req.machine, case.target.qemu_version) {
                if !q.at_least(m.major, m.minor) && q.micro < 90 {
                    found.reasons.push(Reason::MachineNewerThanQemu {
                        machine: m.to_string(),
                        qemu: q.to_string(),
                    });
                }
            }
        }
    }
}

/// qemu-server starts no VM with more vCPUs than the node has logical
/// CPUs (`config_to_command`: `die "MAX $allowed_vcpus vcpus allowed per
/// VM on this node"` when sockets × cores exceeds `$cpuinfo->{cpus}`);
/// the target of a live migration starts the same QEMU.
fn vcpus(case: &Case<'_>, found: &mut Findings) {
    if let Some(processors) = case.target.processors {
        if case.req.vcpus > processors {
            found.reasons.push(Reason::TooManyVcpus {
                vcpus: case.req.vcpus,
                processors,
            });
        }
    }
}

/// What qemu-server added by itself, said where it matters.
fn automatic_flags(case: &Case<'_>, found: &mut Findings) {
    found.notes.extend(case.req.automatic.iter().cloned());
}

/// A KVM guest needs vmx or svm on the node: Proxmox VE refuses to start it
/// otherwise ("KVM virtualisation configured, but not available").
fn kvm_available(case: &Case<'_>, found: &mut Findings) {
    if case.target.kvm_module().is_none() {
        found.reasons.push(Reason::NoKvm);
    }
}

/// A VM with `kvm: 0`: QEMU emulates its CPU with TCG. qemu-server gives it
/// no `enforce` (`get_cpu_options`: only `$kvm` guests get it), so QEMU
/// drops with a warning whatever TCG cannot emulate and starts.
fn tcg_emulates(case: &Case<'_>, found: &mut Findings) {
    found.notes.push(match &case.req.guest {
        Guest::Template => "a template: Proxmox VE starts it only for backups, minimised to `kvm: 0` (TCG, QEMU's emulator), which needs no host CPU flag".to_string(),
        Guest::Emulated { arch } => format!("an emulated {arch} guest: QEMU's TCG emulates its CPU, which needs no host CPU flag"),
        Guest::X86 => "`kvm: 0`: the VM runs under TCG, QEMU's emulator, which needs no host CPU flag (features TCG cannot emulate are left out with a warning)".to_string(),
    });
}

/// QEMU refuses the `host` model without KVM (`host_cpu_realizefn`).
fn host_cpu_needs_kvm(case: &Case<'_>, found: &mut Findings) {
    if case.req.base == GuestCpu::Host {
        found.reasons.push(Reason::HostCpuNeedsKvm);
    }
}

/// `nested-virt` resolves to vmx or svm by the node's KVM module
/// (qemu-server `CPUConfig.pm`); on a node of unknown vendor it cannot be.
fn nested_virt_vendor(case: &Case<'_>, found: &mut Findings) {
    if case.req.nested_virt && case.target.nested_flag().is_none() {
        found.unknown.push(format!(
            "nested-virt on a host of unknown vendor '{}'",
            case.target.vendor
        ));
    }
}

/// The features the VM needs, against QEMU's own per-model answer where
/// the target has one, else against cpuinfo.
fn features(case: &Case<'_>, found: &mut Findings) {
    let check = match case.known.features {
        Some(known) => known.clone(),
        None => case.target.check_features(&case.req.base, &case.required),
    };
    if !check.missing.is_empty() {
        if case.req.base == GuestCpu::Host {
            // qemu-server gives `host` no `enforce` (`get_cpu_options`), and
            // without it QEMU warns about and drops what KVM lacks
            // (`x86_cpu_realizefn`, `x86_cpu_filter_features`).
            found.notes.push(format!(
                "cpu type host starts without `enforce`: QEMU warns about and leaves out {}, which the node cannot give",
                check.missing.join(", ")
            ));
        } else {
            found.reasons.push(Reason::MissingFlags(check.missing));
        }
    }
    if !check.unverifiable.is_empty() {
        found.notes.push(format!(
            "not verifiable from /proc/cpuinfo (QEMU's enforce checks them at start): {}",
            check
                .unverifiable
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    found.notes.extend(check.notes);
}

/// `hv-evmcs` needs KVM's Intel module with nested VMX: KVM's eVMCS version
/// is 0 unless kvm_intel offers VMX to guests (`nested=1`, Linux
/// `vmx/hyperv.c` `nested_get_evmcs_version`). QEMU's answer under KVM
/// shows it; /proc/cpuinfo does not.
fn hyperv_evmcs(case: &Case<'_>, found: &mut Findings) {
    let target = case.target;
    for hv in &case.req.hyperv {
        if flags::vm_flag(hv) != Some(VmFlag::HyperV(Enlightenment::IntelVmx)) {
            continue;
        }
        let qemu_kvm = matches!(&target.view, View::QemuKvm(q) if q.accel == Accel::Kvm);
        if target.kvm_module() != Some(KvmModule::Vmx) || (qemu_kvm && !target.has("vmx")) {
            found
                .reasons
                .push(Reason::HyperVNeedsIntelVmx { flag: hv.clone() });
        } else if !qemu_kvm {
            found.notes.push(format!(
                "{hv} also needs kvm_intel's nested virtualisation (`nested=1`, the default), which /proc/cpuinfo does not show"
            ));
        }
    }
}

/// A named model of the other vendor runs with that vendor
/// (`x86_cpu_load_model`): worth saying, not a refusal.
fn model_vendor(case: &Case<'_>, found: &mut Findings) {
    if let GuestCpu::Model {
        vendor: Some(v),
        qemu_model,
    } = &case.req.base
    {
        if *v != case.target.vendor {
            found.model_vendor = Some(v.to_string());
            found.notes.push(format!(
                "{qemu_model} is a {v} model; this {} host runs it with vendor={v}",
                case.target.vendor
            ));
        }
    }
}

/// The guest sees the host's vendor (host, max, kvm64, qemu64, x86-64-vN);
/// it must not change under the running guest.
fn vendor_change(case: &Case<'_>, found: &mut Findings) {
    let Some(src) = case.source else { return };
    if src.vendor != case.target.vendor {
        found.reasons.push(Reason::VendorChange {
            source: src.vendor.clone(),
            target: case.target.vendor.clone(),
        });
    }
}

/// `host`/`max`: the running guest keeps every feature the source gave it.
fn host_flags_subset(case: &Case<'_>, found: &mut Findings) {
    let Some(src) = case.source else { return };
    let target = case.target;
    let lacking = case
        .known
        .host_lacking
        .map_or_else(|| super::host_lacking(src, target), Arc::clone);
    if !lacking.is_empty() {
        found.reasons.push(Reason::HostFlagsNotSubset(lacking));
    }
    if src.family_model != target.family_model && case.req.base == GuestCpu::Host {
        found.notes.push(format!(
            "cpu type host: source '{}' and target '{}' are different CPU models",
            src.model_name, target.model_name
        ));
    }
}

/// `nested-virt` gave the guest vmx on an Intel source or svm on an AMD
/// one; it cannot switch while the guest runs.
fn nested_across_vendors(case: &Case<'_>, found: &mut Findings) {
    let Some(src) = case.source else { return };
    if let (Some(s), Some(t)) = (src.nested_flag(), case.target.nested_flag()) {
        if s != t {
            found.reasons.push(Reason::NestedVirtAcrossVendors {
                source: s.into(),
                target: t.into(),
            });
        }
    }
}

/// What QEMU refuses about `phys-bits=N` whatever the node and accelerator
/// (`x86_cpu_realizefn`, target/i386/cpu.c: 32..=TARGET_PHYS_ADDR_SPACE_BITS,
/// 52 on x86_64, for CPUs with long mode; none at all without). Proxmox VE
/// accepts 8-64 (`CPUConfig.pm` `parse_phys_bits`).
fn phys_bits_range(case: &Case<'_>, found: &mut Findings) {
    let req = case.req;
    let Some(PhysBits::Bits(n)) = req.phys_bits else {
        return;
    };
    let model = match &req.base {
        GuestCpu::Host | GuestCpu::Max => None,
        GuestCpu::Model { qemu_model, .. } => Some(qemu_model),
    };
    if let Some(m) = model.filter(|_| !req.features.contains("lm")) {
        found.reasons.push(Reason::PhysBitsOn32BitCpu {
            cputype: m.trim_end_matches("-v1").to_string(),
        });
    } else if !(32..=52).contains(&n) {
        found
            .reasons
            .push(Reason::PhysBitsOutOfRange { requested: n });
    }
}

/// `guest-phys-bits=N` against the guest's physical address width on the
/// target (`x86_cpu_realizefn`: 32 ≤ N ≤ phys-bits). That width is
/// `phys-bits=N`; under KVM `phys-bits=host`, and `host`/`max` without
/// phys-bits (`host_cpu_max_instance_init` turns `host-phys-bits` on), take
/// the node's; anything else gets QEMU's default of 40. Nothing is said
/// when the width is not known.
fn guest_phys_bits(case: &Case<'_>, found: &mut Findings) {
    let req = case.req;
    let Some(requested) = req.guest_phys_bits else {
        return;
    };
    let host_width = matches!(req.phys_bits, Some(PhysBits::Host))
        || (req.phys_bits.is_none() && host_or_max(req));
    let limit = match req.phys_bits {
        Some(PhysBits::Bits(n)) => n,
        _ if req.kvm && host_width => match case.target.phys_bits {
            Some(bits) => bits,
            None => return,
        },
        _ => 40,
    };
    if !(32..=limit).contains(&requested) {
        found
            .reasons
            .push(Reason::GuestPhysBitsOutOfRange { requested, limit });
    }
}

/// `phys-bits=N` wider than the target: QEMU only warns ("Host physical
/// bits (T) does not match phys-bits property (N)",
/// `host_cpu_adjust_phys_bits` in target/i386/host-cpu.c) and starts. A
/// running guest that already ran on a node at least as narrow loses
/// nothing; otherwise its address space would shrink under it.
fn phys_bits_width(case: &Case<'_>, found: &mut Findings) {
    let Some(PhysBits::Bits(n)) = case.req.phys_bits else {
        return;
    };
    let Some(t) = case.target.phys_bits else {
        found
            .notes
            .push("the target's physical address width is not known".into());
        return;
    };
    if n <= t {
        return;
    }
    let warning = format!(
        "phys-bits={n} is larger than this node's {t} physical address bits: QEMU starts the VM with a warning, and the guest must not use addresses above {t} bits"
    );
    match case.question {
        Question::Start => found.notes.push(warning),
        Question::Live { .. } => match case.source.and_then(|s| s.phys_bits) {
            Some(s) if t >= s => found.notes.push(warning),
            s => found.reasons.push(Reason::PhysBitsTooLarge {
                requested: n,
                target: t,
                source: s,
            }),
        },
    }
}

/// `phys-bits=host`: the guest was given the source's width, which must
/// not change under it.
fn phys_bits_host_differs(case: &Case<'_>, found: &mut Findings) {
    let Some(src) = case.source else { return };
    match (src.phys_bits, case.target.phys_bits) {
        (Some(s), Some(t)) if s != t => found.reasons.push(Reason::PhysBitsHostDiffers {
            source: s,
            target: t,
        }),
        (Some(_), Some(_)) => {}
        _ => found
            .unknown
            .push("phys-bits=host, but a node's physical address width is not known".into()),
    }
}

/// Only under KVM does QEMU show the host's vendor (`x86_cpu_load_model`:
/// `accel_uses_host_cpuid()`), so under TCG the guest's CPU is the same on
/// every node.
fn tcg_same_cpu_everywhere(case: &Case<'_>, found: &mut Findings) {
    if matches!(case.question, Question::Live { .. }) {
        found.notes.push(
            "under TCG the guest sees the same CPU, vendor included, on every node".to_string(),
        );
    }
}

/// Backing guest memory with 1 GiB pages is the host kernel's business,
/// whatever the accelerator: it needs pdpe1gb.
fn hugepages_1g(case: &Case<'_>, found: &mut Findings) {
    if case.req.hugepages_1g
        && !case
            .target
            .has(flags::canonical("pdpe1gb").unwrap_or("pdpe1gb"))
    {
        found.reasons.push(Reason::HugepagesWithoutPdpe1gb);
    }
}
