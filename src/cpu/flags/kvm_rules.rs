//! Where /proc/cpuinfo and KVM disagree: for each QEMU feature, the test
//! of a host's /proc/cpuinfo that says whether KVM gives it to a guest
//! ([`HostTest`], one row per rule, each with its kernel or QEMU source).

use std::collections::BTreeSet;

use once_cell::sync::{Lazy, OnceCell};

use crate::cpu::cpudata;
use crate::cpu::cpuinfo::CpuInfo;

/// QEMU features KVM/QEMU give every guest regardless of the host CPU.
pub const KVM_PROVIDED: &[&str] = &[
    "x2apic",
    "tsc-deadline",
    "arat",
    "hypervisor",
    "tsc-adjust",
    "arch-capabilities",
    "mce",
    "mca",
    "mtrr",
    "pat",
    "ht",
    "topoext",
    "overflow-recov",
    "succor",
    "skip-l1dfl-vmentry",
    "pschange-mc-no",
];

/// Host features KVM never passes to a guest, whatever /proc/cpuinfo shows
/// (Linux `arch/x86/kvm/cpuid.c`, `kvm_set_cpu_caps`: leaf 1 leaves out DS,
/// ACPI, TM, PBE, DTES64, MONITOR, DS-CPL, SMX, EST, TM2, xTPR and DCA;
/// Intel PT is only exposed in the non-default host-guest PT mode).
pub const KVM_NOT_PASSED: &[&str] = &[
    "acpi",
    "ds",
    "ds-cpl",
    "dtes64",
    "est",
    "tm",
    "tm2",
    "pbe",
    "smx",
    "xtpr",
    "dca",
    "monitor",
    "intel-pt",
    // Not in KVM's lists at all (`kvm_set_cpu_caps`, Linux 6.1 to 7.1): PSN,
    // IA64, CNXT-ID; AMD's extapic, IBS, SKINIT, WDT, LWP, TCE, NodeId,
    // PerfCtrNb; arch LBR, FRED, PKS, PCOMMIT, CORE_CAPABILITIES and split
    // lock detection (no emulation).
    "pn",
    "ia64",
    "cid",
    "extapic",
    "ibs",
    "skinit",
    "wdt",
    "lwp",
    "tce",
    "nodeid-msr",
    "perfctr-nb",
    "arch-lbr",
    "fred",
    "pks",
    "pcommit",
    "core-capability",
    "split-lock-detect",
];

/// Features QEMU switches off for every named model under KVM
/// (`kvm_default_props` in QEMU `target/i386/kvm/kvm-cpu.c`), so they are
/// never required from the host.
pub const KVM_DROPPED: &[&str] = &["monitor", "svm", "acpi"];

/// How a host proves one QEMU feature from its /proc/cpuinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTest {
    /// Always available under KVM.
    Provided,
    /// Present when /proc/cpuinfo lists every one of these Linux flags.
    All(&'static [&'static str]),
    /// Present when /proc/cpuinfo lists any of these Linux flags.
    Any(&'static [&'static str]),
    /// Present when /proc/cpuinfo lists all of the first or any of the second.
    AllOrAny(&'static [&'static str], &'static [&'static str]),
    /// Present when the host's `bugs` line lacks every one of these bugs
    /// and /proc/cpuinfo lists every flag of `needs` (absent without them);
    /// unverifiable without a `bugs` line. A host with one of the bugs lacks
    /// the feature, unless `maybe_if_affected` (KVM may still report it).
    NotAffected {
        bugs: &'static [&'static str],
        needs: &'static [&'static str],
        maybe_if_affected: bool,
    },
    /// The Linux flag, or architectural on 64-bit (`lm`) hosts.
    FlagOrLongMode(&'static str),
    /// The Linux flag; when it is absent the answer is unknown, not "no".
    FlagOrHidden(&'static str),
    /// The Linux flag of the position-matched table.
    Flag(&'static str),
    /// /proc/cpuinfo cannot show this feature.
    Invisible,
    /// KVM never gives it to a guest.
    Never,
    /// Present when /proc/cpuinfo lists any of `present`; unknown (not
    /// "no") when it lists any of `maybe` (a flag the kernel prints for
    /// several underlying bits, only some of which give the feature).
    AnyOrMaybe {
        present: &'static [&'static str],
        maybe: &'static [&'static str],
    },
    /// Unknown when /proc/cpuinfo lists every one of these (the answer
    /// depends on a bit Linux does not print), absent otherwise.
    MaybeIfAll(&'static [&'static str]),
    /// KVM's Intel (`vmx`) and AMD (`svm`) modules decide differently; a
    /// host with neither runs no KVM guest, so the answer is unknown.
    ByModule {
        vmx: &'static HostTest,
        svm: &'static HostTest,
    },
}

/// The test for a feature KVM gives by its own rules, which differ between
/// its Intel (`kvm_intel`, vmx) and AMD (`kvm_amd`, svm) modules.
const fn by_module(vmx: &'static HostTest, svm: &'static HostTest) -> HostTest {
    HostTest::ByModule { vmx, svm }
}

/// An "immune" bit that KVM reports only for hosts without these `bugs`
/// (and with every flag of `needs`).
const fn not_affected(bugs: &'static [&'static str], needs: &'static [&'static str]) -> HostTest {
    HostTest::NotAffected {
        bugs,
        needs,
        maybe_if_affected: false,
    }
}

// The rules below differ between KVM's two modules; each names the code
// that decides it (Linux `arch/x86/kvm/cpuid.c` `kvm_set_cpu_caps`, `svm/svm.c`
// `svm_set_cpu_caps`, `vmx/vmx.c` `vmx_set_cpu_caps`; 6.1, 6.12 and 6.19
// agree unless said otherwise). What /proc/cpuinfo prints follows
// `arch/x86/kernel/cpu/common.c` `init_speculation_control`: `ibrs`, `ibpb`,
// `stibp` and `ssbd` are synthetic flags set from either vendor's bits;
// the vendor bits themselves (`spec_ctrl`, `amd_ssbd`, ...) are not printed
// since Linux 4.20 (RHEL 7 kernels print `spec_ctrl` and `intel_stibp`).

/// `spec-ctrl` (CPUID.7.EDX[26]) on Intel: the host's bit, which Linux
/// shows as `ibrs` plus `ibpb`.
static SPEC_CTRL_VMX: HostTest = HostTest::AllOrAny(&["ibrs", "ibpb"], &["spec_ctrl"]);
/// `spec-ctrl` on AMD: up to Linux 6.12 KVM sets it from `ibrs` and `ibpb`;
/// since 6.13 only with AMD's IBPB_RET bit too, which Linux does not print
/// but betrays: it sets the `ibpb_no_ret` bug for IBPB without IBPB_RET
/// (`common.c` `cpu_set_bug_bits`). With that bug the answer depends on the
/// kernel version, which /proc/cpuinfo does not give.
static SPEC_CTRL_SVM: HostTest = HostTest::NotAffected {
    bugs: &["ibpb_no_ret"],
    needs: &["ibrs", "ibpb"],
    maybe_if_affected: true,
};
/// `ssbd` (CPUID.7.EDX[31]) and `amd-ssbd` (CPUID.8000_0008.EBX[24]) on
/// Intel: set from SPEC_CTRL_SSBD, which Linux shows as `ssbd`.
static SSBD_VMX: HostTest = HostTest::Any(&["ssbd", "amd_ssbd", "spec_ctrl_ssbd"]);
/// The same on AMD: set from AMD_SSBD, which new kernels do not print; Linux
/// also shows `ssbd` for the LS_CFG method of family 15h-17h CPUs
/// (`amd.c` `bsp_init_amd`), which gives neither bit, so `ssbd` alone
/// cannot tell.
static SSBD_SVM: HostTest = HostTest::AnyOrMaybe {
    present: &["amd_ssbd", "spec_ctrl_ssbd"],
    maybe: &["ssbd"],
};
/// `virt-ssbd` (CPUID.8000_0008.EBX[25]) on Intel: only the host's own bit
/// (a host that is itself a guest of a hypervisor offering it).
static VIRT_SSBD_VMX: HostTest = HostTest::Any(&["virt_ssbd"]);
/// On AMD, `svm_set_cpu_caps` offers it whenever the host has LS_CFG_SSBD or
/// AMD_SSBD, and Linux prints `ssbd` for both.
static VIRT_SSBD_SVM: HostTest = HostTest::Any(&["virt_ssbd", "ssbd", "amd_ssbd"]);
/// `umip` on Intel: `vmx_set_cpu_caps` sets it when VMX can emulate it
/// (`vmx_umip_emulated`: descriptor-table exiting, on every VT-x CPU with
/// unrestricted guest), whatever the host has.
static UMIP_VMX: HostTest = HostTest::Provided;
/// `umip` on AMD: the host's bit.
static UMIP_SVM: HostTest = HostTest::Flag("umip");
static NEVER: HostTest = HostTest::Never;
static PROVIDED: HostTest = HostTest::Provided;
/// `null-sel-clr-base` on AMD: the host's bit, or set when the kernel found
/// no `null_seg` bug (`cpuid.c`; the bug is only computed for AMD/Hygon).
static NO_NULL_SEG: HostTest = HostTest::NotAffected {
    bugs: &["null_seg"],
    needs: &[],
    maybe_if_affected: false,
};
/// `auto-ibrs` on AMD: the host's bit, hidden by Linux; `ibrs_enhanced` is
/// set from it (`common.c`) unless SEV-SNP is on.
static AUTO_IBRS_SVM: HostTest = HostTest::AnyOrMaybe {
    present: &["ibrs_enhanced"],
    maybe: &["sev_snp"],
};

/// The rule for one canonical QEMU feature name.
#[must_use]
pub fn host_test(feature: &str) -> HostTest {
    if KVM_PROVIDED.contains(&feature) {
        return HostTest::Provided;
    }
    if KVM_NOT_PASSED.contains(&feature) {
        return HostTest::Never;
    }
    match feature {
        // Intel CPUID.7.EDX spectre bits and AMD 8000_0008.EBX bits, from the
        // kernel's synthetic flags (KVM sets both vendors' bits from them).
        // RHEL 7-era kernels print `spec_ctrl` and `intel_stibp` instead.
        "spec-ctrl" => return by_module(&SPEC_CTRL_VMX, &SPEC_CTRL_SVM),
        // AMD's IBRS/IBPB bits (CPUID.8000_0008.EBX[14]/[12]) and both
        // vendors' STIBP bits: KVM sets them from the synthetic flags on
        // either vendor.
        "ibrs" => return HostTest::Any(&["ibrs", "spec_ctrl"]),
        "ibpb" => return HostTest::Any(&["ibpb", "spec_ctrl"]),
        "stibp" | "amd-stibp" => return HostTest::Any(&["stibp", "intel_stibp"]),
        "ssbd" | "amd-ssbd" => return by_module(&SSBD_VMX, &SSBD_SVM),
        "virt-ssbd" => return by_module(&VIRT_SSBD_VMX, &VIRT_SSBD_SVM),
        "umip" => return by_module(&UMIP_VMX, &UMIP_SVM),
        // IA32_ARCH_CAPABILITIES bits KVM copies from the host's MSR only
        // (Linux `arch/x86/kvm/x86.c` `kvm_get_arch_capabilities`), which it
        // reads only when the host has `arch_capabilities`. `ibrs_enhanced`
        // also stands for AMD's AutoIBRS (`common.c`), which is no MSR bit.
        "ibrs-all" => return HostTest::All(&["ibrs_enhanced", "arch_capabilities"]),
        "amd-no-ssb" | "ssb-no" => return not_affected(&["spec_store_bypass"], &[]),
        "rdctl-no" => return not_affected(&["cpu_meltdown"], &[]),
        "mds-no" => return not_affected(&["mds"], &[]),
        "taa-no" => return not_affected(&["taa"], &["rtm"]),
        // The kernel sets `mmio_stale_data` for listed CPUs lacking the
        // three bits (`common.c` `arch_cap_mmio_immune`).
        "sbdr-ssdp-no" | "fbsdp-no" | "psdp-no" => {
            return not_affected(&["mmio_stale_data", "mmio_unknown"], &["arch_capabilities"])
        }
        // KVM reports GDS_NO also for an affected host whose microcode
        // mitigation is on (`gds_ucode_mitigated`), which only sysfs shows.
        "gds-no" => {
            return HostTest::NotAffected {
                bugs: &["gds"],
                needs: &[],
                maybe_if_affected: true,
            }
        }
        "rfds-no" => return not_affected(&["rfds"], &[]),
        // The kernel sets `bhi` whatever BHI_NO says (`common.c`
        // `cpu_set_bug_bits`): only the MSR knows.
        "bhi-no" => return HostTest::MaybeIfAll(&["arch_capabilities"]),
        // `eibrs_pbrsb` is set only for eIBRS CPUs lacking PBRSB_NO.
        "pbrsb-no" => {
            return not_affected(&["eibrs_pbrsb"], &["arch_capabilities", "ibrs_enhanced"])
        }
        // `cpuid.c`: PKU only with the host's OSPKE (and TDP).
        "pku" => return HostTest::All(&["pku", "ospke"]),
        // `cpuid.c` case 0x80000007: invariant TSC from `x86_power`, which
        // Linux shows as both `constant_tsc` and `nonstop_tsc`.
        "invtsc" => return HostTest::All(&["constant_tsc", "nonstop_tsc"]),
        // Leaf 0x8000_0021, which KVM exposes only to AMD-style extended
        // leaves (`__do_cpuid_func` case 0x80000000), i.e. never on Intel.
        "lfence-always-serializing" => return by_module(&NEVER, &PROVIDED),
        "null-sel-clr-base" => return by_module(&NEVER, &NO_NULL_SEG),
        "auto-ibrs" => return by_module(&NEVER, &AUTO_IBRS_SVM),
        // KVM's paravirtual leaf never has MMU_OP; MSI extended destination
        // IDs need a split irqchip, which Proxmox VE does not use.
        "kvm-mmu" | "kvm-msi-ext-dest-id" => return HostTest::Never,
        _ => {}
    }
    let idx = cpudata::index();
    let Some(&i) = idx.feature.get(feature) else {
        return HostTest::Invisible;
    };
    let def = &idx.data.features[i];
    // QEMU's paravirtual (KVM, Hyper-V) leaves are implemented by QEMU/KVM.
    if def.cpuid.starts_with("CPUID.4000") {
        return HostTest::Provided;
    }
    match def.linux {
        Some(l) if feature == "sep" || feature == "syscall" => HostTest::FlagOrLongMode(l),
        Some(l) if feature == "la57" => HostTest::FlagOrHidden(l),
        Some(l) => HostTest::Flag(l),
        None => HostTest::Invisible,
    }
}

/// What a host offers, in canonical QEMU names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFeatures {
    /// Features the host proves it can give a guest.
    pub present: BTreeSet<String>,
    /// Features /proc/cpuinfo cannot confirm or deny.
    pub unverifiable: BTreeSet<String>,
}

/// Every feature's rule, each decided on first use, in the order of the
/// data file's feature table (so `cpudata::index().feature` indexes it too).
/// A decision usually needs a few dozen of the ~300.
static TESTS: Lazy<Vec<(&'static str, OnceCell<HostTest>)>> = Lazy::new(|| {
    cpudata::index()
        .data
        .features
        .iter()
        .map(|def| (def.qemu, OnceCell::new()))
        .collect()
});

fn test_of<'a>(entry: &'a (&'static str, OnceCell<HostTest>)) -> &'a HostTest {
    entry.1.get_or_init(|| host_test(entry.0))
}

/// Evaluates every known QEMU feature against a host's /proc/cpuinfo.
#[must_use]
pub fn host_features(info: &CpuInfo) -> HostFeatures {
    let bugs = info.bugs.as_ref();
    host_features_with(
        |f| info.flags.contains(f),
        bugs.map(|b| move |x: &str| b.contains(x)),
    )
}

/// Evaluates every known QEMU feature given lookups into a host's flags
/// and, when the kernel printed one, its `bugs` line (so a cache record can
/// be judged without rebuilding a [`CpuInfo`]).
#[must_use]
pub fn host_features_with(
    has: impl Fn(&str) -> bool,
    host_bug: Option<impl Fn(&str) -> bool>,
) -> HostFeatures {
    let mut present: Vec<String> = Vec::with_capacity(TESTS.len());
    let mut unverifiable: Vec<String> = Vec::new();
    for entry in TESTS.iter() {
        let name = entry.0;
        match evaluate(test_of(entry), &has, host_bug.as_ref()) {
            Some(true) => present.push(name.to_string()),
            Some(false) => {}
            None => unverifiable.push(name.to_string()),
        }
    }
    HostFeatures {
        present: present.into_iter().collect(),
        unverifiable: unverifiable.into_iter().collect(),
    }
}

/// One canonical QEMU feature's answer from the same lookups as
/// [`host_features_with`]: `Some(true)` when it is in `present`, `None` when
/// in `unverifiable`, `Some(false)` otherwise (also for names QEMU does not
/// know). Costs one rule instead of all of them.
#[must_use]
pub fn host_answer(
    feature: &str,
    has: impl Fn(&str) -> bool,
    host_bug: Option<impl Fn(&str) -> bool>,
) -> Option<bool> {
    let Some(&i) = cpudata::index().feature.get(feature) else {
        return Some(false);
    };
    evaluate(test_of(&TESTS[i]), &has, host_bug.as_ref())
}

fn evaluate(
    test: &HostTest,
    has: &impl Fn(&str) -> bool,
    host_bug: Option<&impl Fn(&str) -> bool>,
) -> Option<bool> {
    match test {
        HostTest::Provided => Some(true),
        HostTest::All(flags) => Some(flags.iter().all(|f| has(f))),
        HostTest::Any(flags) => Some(flags.iter().any(|f| has(f))),
        HostTest::AllOrAny(all, any) => {
            Some(all.iter().all(|f| has(f)) || any.iter().any(|f| has(f)))
        }
        HostTest::Never => Some(false),
        HostTest::NotAffected {
            bugs,
            needs,
            maybe_if_affected,
        } => {
            if !needs.iter().all(|f| has(f)) {
                return Some(false);
            }
            let bug = host_bug?;
            if bugs.iter().all(|b| !bug(b)) {
                Some(true)
            } else if *maybe_if_affected {
                None
            } else {
                Some(false)
            }
        }
        HostTest::FlagOrLongMode(l) => Some(has(l) || has("lm")),
        HostTest::FlagOrHidden(l) => has(l).then_some(true),
        HostTest::Flag(l) => Some(has(l)),
        HostTest::Invisible => None,
        HostTest::AnyOrMaybe { present, maybe } => {
            if present.iter().any(|f| has(f)) {
                Some(true)
            } else if maybe.iter().any(|f| has(f)) {
                None
            } else {
                Some(false)
            }
        }
        HostTest::MaybeIfAll(flags) => (!flags.iter().all(|f| has(f))).then_some(false),
        HostTest::ByModule { vmx, svm } => {
            if has("vmx") {
                evaluate(vmx, has, host_bug)
            } else if has("svm") {
                evaluate(svm, has, host_bug)
            } else {
                None
            }
        }
    }
}
