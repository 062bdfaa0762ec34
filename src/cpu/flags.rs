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
//! - Kernel-hidden: `sep` and `syscall` are architectural on every CPU that
//!   runs a 64-bit kernel (`lm`), but old 64-bit kernels and 32-bit kernels
//!   do not print them; `la57` is not printed by kernels booted with 4-level
//!   paging, yet KVM offers it from the raw CPUID.

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
    "lfence-always-serializing",
    "skip-l1dfl-vmentry",
    "pschange-mc-no",
];

/// Host features KVM never passes to a guest, whatever /proc/cpuinfo shows
/// (Linux `arch/x86/kvm/cpuid.c`, `kvm_set_cpu_caps`: leaf 1 leaves out DS,
/// ACPI, TM, PBE, DTES64, MONITOR, DS-CPL, SMX, EST, TM2, xTPR and DCA;
/// Intel PT is only exposed in the non-default host-guest PT mode).
pub const KVM_NOT_PASSED: &[&str] = &[
    "acpi", "ds", "ds-cpl", "dtes64", "est", "tm", "tm2", "pbe", "smx", "xtpr", "dca", "monitor",
    "intel-pt",
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
    /// (and, where given, has the Linux flag); unverifiable without a `bugs` line.
    NotAffected {
        bugs: &'static [&'static str],
        needs: Option<&'static str>,
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
}

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
        "spec-ctrl" => return HostTest::AllOrAny(&["ibrs", "ibpb"], &["spec_ctrl"]),
        "ibrs" => return HostTest::Any(&["ibrs", "spec_ctrl"]),
        "ibpb" => return HostTest::Any(&["ibpb", "spec_ctrl"]),
        "stibp" | "amd-stibp" => return HostTest::Any(&["stibp", "intel_stibp"]),
        "ssbd" | "amd-ssbd" => return HostTest::Any(&["ssbd", "amd_ssbd", "spec_ctrl_ssbd"]),
        "virt-ssbd" => return HostTest::Any(&["virt_ssbd", "amd_ssbd"]),
        "ibrs-all" => return HostTest::All(&["ibrs_enhanced"]),
        "amd-no-ssb" | "ssb-no" => {
            return HostTest::NotAffected {
                bugs: &["spec_store_bypass"],
                needs: None,
            }
        }
        "rdctl-no" => {
            return HostTest::NotAffected {
                bugs: &["cpu_meltdown"],
                needs: None,
            }
        }
        "mds-no" => {
            return HostTest::NotAffected {
                bugs: &["mds"],
                needs: None,
            }
        }
        "taa-no" => {
            return HostTest::NotAffected {
                bugs: &["taa"],
                needs: Some("rtm"),
            }
        }
        "sbdr-ssdp-no" | "fbsdp-no" | "psdp-no" => {
            return HostTest::NotAffected {
                bugs: &["mmio_stale_data", "mmio_unknown"],
                needs: None,
            }
        }
        "gds-no" => {
            return HostTest::NotAffected {
                bugs: &["gds"],
                needs: None,
            }
        }
        "rfds-no" => {
            return HostTest::NotAffected {
                bugs: &["rfds"],
                needs: None,
            }
        }
        "bhi-no" => {
            return HostTest::NotAffected {
                bugs: &["bhi"],
                needs: None,
            }
        }
        "pbrsb-no" => {
            return HostTest::NotAffected {
                bugs: &["eibrs_pbrsb"],
                needs: None,
            }
        }
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
        HostTest::NotAffected { bugs, needs } => {
            host_bug.map(|bug| bugs.iter().all(|b| !bug(b)) && needs.is_none_or(has))
        }
        HostTest::FlagOrLongMode(l) => Some(has(l) || has("lm")),
        HostTest::FlagOrHidden(l) => has(l).then_some(true),
        HostTest::Flag(l) => Some(has(l)),
        HostTest::Invisible => None,
    }
}

/// Canonical QEMU name for any spelling (QEMU name, QEMU alias or Linux name).
#[must_use]
pub fn canonical(name: &str) -> Option<&'static str> {
    cpudata::index().canonical(name)
}

/// The /proc/cpuinfo spelling of a canonical QEMU feature, if Linux prints it.
#[must_use]
pub fn linux_name(feature: &str) -> Option<&'static str> {
    let idx = cpudata::index();
    idx.feature
        .get(feature)
        .and_then(|&i| idx.data.features[i].linux)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(flags: &str, bugs: Option<&str>) -> CpuInfo {
        CpuInfo {
            vendor: "GenuineIntel".into(),
            flags: flags.split_whitespace().map(str::to_string).collect(),
            bugs: bugs.map(|b| b.split_whitespace().map(str::to_string).collect()),
            ..CpuInfo::default()
        }
    }

    #[test]
    fn linux_spellings_map_to_qemu_names() {
        assert_eq!(canonical("sse4_1"), Some("sse4.1"));
        assert_eq!(canonical("sse4.2"), Some("sse4.2"));
        assert_eq!(canonical("lahf_lm"), Some("lahf-lm"));
        assert_eq!(canonical("pni"), Some("pni"));
        assert_eq!(canonical("sse3"), Some("pni"));
        assert_eq!(canonical("tsc_deadline_timer"), Some("tsc-deadline"));
        assert_eq!(linux_name("sse4.1"), Some("sse4_1"));
        assert_eq!(linux_name("avx512vbmi2"), Some("avx512_vbmi2"));
        assert_eq!(linux_name("avx512vbmi"), Some("avx512vbmi"));
        assert_eq!(canonical("no-such-flag"), None);
    }

    #[test]
    fn kvm_provided_flags_never_missing() {
        let f = host_features(&info("fpu lm", None));
        for name in [
            "x2apic",
            "tsc-deadline",
            "hypervisor",
            "arat",
            "arch-capabilities",
        ] {
            assert!(f.present.contains(name), "{name}");
        }
    }

    #[test]
    fn kernel_hidden_sep_and_syscall_are_implied_by_long_mode() {
        let f = host_features(&info("fpu lm", None));
        assert!(f.present.contains("sep"));
        assert!(f.present.contains("syscall"));
        let f = host_features(&info("fpu", None));
        assert!(!f.present.contains("sep"));
    }

    #[test]
    fn spectre_bits_follow_the_synthetic_flags() {
        let f = host_features(&info("ibrs ibpb stibp ssbd", None));
        for name in [
            "spec-ctrl",
            "stibp",
            "ssbd",
            "amd-ssbd",
            "amd-stibp",
            "ibpb",
        ] {
            assert!(f.present.contains(name), "{name}");
        }
        let f = host_features(&info("ibrs", None));
        assert!(!f.present.contains("spec-ctrl"));
    }

    #[test]
    fn arch_capability_bits_follow_the_bugs_line() {
        let f = host_features(&info("rtm", Some("spectre_v1")));
        assert!(f.present.contains("mds-no"));
        assert!(f.present.contains("taa-no"));
        let f = host_features(&info("", Some("mds taa")));
        assert!(!f.present.contains("mds-no"));
        assert!(!f.present.contains("taa-no"));
        // TSX off: KVM drops taa-no.
        let f = host_features(&info("", Some("spectre_v1")));
        assert!(!f.present.contains("taa-no"));
        // No bugs line (old kernel): cannot tell.
        let f = host_features(&info("", None));
        assert!(f.unverifiable.contains("mds-no"));
    }

    #[test]
    fn rhel7_spectre_names_count() {
        let f = host_features(&info("spec_ctrl intel_stibp", None));
        for name in ["spec-ctrl", "stibp", "ibpb", "ibrs"] {
            assert!(f.present.contains(name), "{name}");
        }
    }

    #[test]
    fn host_only_features_are_never_offered_to_guests() {
        let f = host_features(&info("ds_cpl est tm2 monitor vmx lm", None));
        for name in ["ds-cpl", "est", "tm2", "monitor"] {
            assert!(!f.present.contains(name), "{name}");
            assert!(!f.unverifiable.contains(name), "{name}");
        }
        assert!(f.present.contains("vmx"), "nested VMX is passed through");
    }

    #[test]
    fn la57_absent_is_unknown_not_missing() {
        let f = host_features(&info("lm", None));
        assert!(f.unverifiable.contains("la57"));
        let f = host_features(&info("lm la57", None));
        assert!(f.present.contains("la57"));
    }
}
