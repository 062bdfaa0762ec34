use super::kvm_rules::*;
use super::*;
use crate::cpu::cpuinfo::CpuInfo;

fn info(flags: &str, bugs: Option<&str>) -> CpuInfo {
    CpuInfo {
        vendor: "GenuineIntel".into(),
        flags: crate::cpu::word_list::WordList::parse(flags),
        bugs: bugs.map(crate::cpu::word_list::WordList::parse),
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

/// Present, absent, or `None` when /proc/cpuinfo cannot tell.
fn answer(f: &HostFeatures, feature: &str) -> Option<bool> {
    if f.present.contains(feature) {
        Some(true)
    } else if f.unverifiable.contains(feature) {
        None
    } else {
        Some(false)
    }
}

fn assert_present(f: &HostFeatures, names: &[&str]) {
    for name in names {
        assert!(
            f.present.contains(*name),
            "{name} missing from {:?}",
            f.present
        );
    }
}

fn assert_absent(f: &HostFeatures, names: &[&str]) {
    for name in names {
        assert!(!f.present.contains(*name), "{name} in {:?}", f.present);
    }
}

#[test]
fn kvm_provided_flags_never_missing() {
    let f = host_features(&info("fpu lm", None));
    assert_present(
        &f,
        &[
            "x2apic",
            "tsc-deadline",
            "hypervisor",
            "arat",
            "arch-capabilities",
        ],
    );
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
    let f = host_features(&info("vmx ibrs ibpb stibp ssbd", None));
    assert_present(
        &f,
        &[
            "spec-ctrl",
            "stibp",
            "ssbd",
            "amd-ssbd",
            "amd-stibp",
            "ibpb",
        ],
    );
    let f = host_features(&info("vmx ibrs", None));
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
    let f = host_features(&info("vmx spec_ctrl intel_stibp", None));
    assert_present(&f, &["spec-ctrl", "stibp", "ibpb", "ibrs"]);
}

#[test]
fn host_only_features_are_never_offered_to_guests() {
    let f = host_features(&info("ds_cpl est tm2 monitor vmx lm", None));
    let never = ["ds-cpl", "est", "tm2", "monitor"];
    assert_absent(&f, &never);
    for name in never {
        assert!(!f.unverifiable.contains(name), "{name}");
    }
    assert!(f.present.contains("vmx"), "nested VMX is passed through");
}

/// One row per rule class of KVM's two modules: (name, cpuinfo flags,
/// feature, expected answer).
/// The one-feature answer, which must agree with the whole set.
fn host_answer_of(flags: &str, bugs: Option<&str>, feature: &str) -> Option<bool> {
    let i = info(flags, bugs);
    let b = i.bugs.clone();
    host_answer(
        feature,
        |f| i.flags.contains(f),
        b.as_ref().map(|b| move |x: &str| b.contains(x)),
    )
}

#[test]
fn kvm_module_rules() {
    let rows: &[(&str, &str, &str, Option<bool>)] = &[
        // svm.c svm_set_cpu_caps: LS_CFG_SSBD or AMD_SSBD, both shown as ssbd.
        (
            "virt_ssbd_on_amd_with_ssbd",
            "svm ssbd",
            "virt-ssbd",
            Some(true),
        ),
        (
            "virt_ssbd_on_amd_with_amd_ssbd",
            "svm amd_ssbd",
            "virt-ssbd",
            Some(true),
        ),
        (
            "virt_ssbd_on_amd_without_ssbd",
            "svm ibpb",
            "virt-ssbd",
            Some(false),
        ),
        (
            "virt_ssbd_on_intel_with_ssbd",
            "vmx ssbd",
            "virt-ssbd",
            Some(false),
        ),
        (
            "virt_ssbd_on_intel_guest_with_virt_ssbd",
            "vmx virt_ssbd",
            "virt-ssbd",
            Some(true),
        ),
        // cpuid.c: AMD_SSBD from SPEC_CTRL_SSBD (Intel's, shown as ssbd).
        (
            "amd_ssbd_on_intel_with_ssbd",
            "vmx ssbd",
            "amd-ssbd",
            Some(true),
        ),
        ("ssbd_on_intel_with_ssbd", "vmx ssbd", "ssbd", Some(true)),
        // AMD: ssbd may be the LS_CFG method (Zen 1), which gives neither.
        (
            "amd_ssbd_on_amd_with_only_ssbd_is_unknown",
            "svm ssbd",
            "amd-ssbd",
            None,
        ),
        (
            "amd_ssbd_on_old_kernel_printing_amd_ssbd",
            "svm ssbd amd_ssbd",
            "amd-ssbd",
            Some(true),
        ),
        (
            "amd_ssbd_on_amd_without_ssbd",
            "svm",
            "amd-ssbd",
            Some(false),
        ),
        // cpuid.c: SPEC_CTRL on AMD needs AMD_IBPB_RET since Linux 6.13.
        (
            "spec_ctrl_on_intel_with_ibrs_ibpb",
            "vmx ibrs ibpb",
            "spec-ctrl",
            Some(true),
        ),
        (
            "spec_ctrl_on_amd_with_ibpb_ret",
            "svm ibrs ibpb",
            "spec-ctrl",
            Some(true),
        ),
        (
            "spec_ctrl_on_amd_without_ibrs",
            "svm ibpb",
            "spec-ctrl",
            Some(false),
        ),
        // cpuid.c: AMD's ibpb/ibrs/stibp bits from the synthetic flags, any vendor.
        (
            "ibpb_on_intel_from_synthetic_flag",
            "vmx ibpb",
            "ibpb",
            Some(true),
        ),
        (
            "amd_stibp_on_intel_from_stibp",
            "vmx stibp",
            "amd-stibp",
            Some(true),
        ),
        ("stibp_on_amd_from_stibp", "svm stibp", "stibp", Some(true)),
        // vmx.c vmx_set_cpu_caps: UMIP emulated on Intel.
        ("umip_on_intel_without_umip", "vmx", "umip", Some(true)),
        ("umip_on_amd_without_umip", "svm", "umip", Some(false)),
        ("umip_on_amd_with_umip", "svm umip", "umip", Some(true)),
        // No KVM module: the module-dependent rules cannot answer.
        ("virt_ssbd_on_a_host_without_kvm", "ssbd", "virt-ssbd", None),
    ];
    for (name, flags, feature, expected) in rows {
        assert_eq!(
            host_answer_of(flags, Some(""), feature),
            *expected,
            "{name}"
        );
        let f = host_features(&info(flags, Some("")));
        assert_eq!(answer(&f, feature), *expected, "{name}");
    }
}

/// (name, cpuinfo flags, bugs line, feature, expected answer).
type MsrRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<bool>,
);

/// IA32_ARCH_CAPABILITIES and other bits KVM takes from the host's MSR
/// or bugs (x86.c `kvm_get_arch_capabilities`): (name, flags, bugs,
/// feature, expected).
#[test]
fn msr_and_bug_rules() {
    let rows: &[MsrRow] = &[
        (
            "ibrs_all_on_intel_with_eibrs",
            "vmx arch_capabilities ibrs_enhanced",
            Some(""),
            "ibrs-all",
            Some(true),
        ),
        (
            "ibrs_all_on_amd_autoibrs_is_absent",
            "svm ibrs_enhanced",
            Some(""),
            "ibrs-all",
            Some(false),
        ),
        (
            "pbrsb_no_on_eibrs_intel_without_the_bug",
            "vmx arch_capabilities ibrs_enhanced",
            Some(""),
            "pbrsb-no",
            Some(true),
        ),
        (
            "pbrsb_no_on_amd_is_absent",
            "svm",
            Some(""),
            "pbrsb-no",
            Some(false),
        ),
        (
            "gds_no_with_gds_bug_is_unknown",
            "vmx arch_capabilities",
            Some("gds"),
            "gds-no",
            None,
        ),
        (
            "gds_no_without_gds_bug",
            "vmx arch_capabilities",
            Some("spectre_v1"),
            "gds-no",
            Some(true),
        ),
        (
            "bhi_no_with_arch_capabilities_is_unknown",
            "vmx arch_capabilities",
            Some("bhi"),
            "bhi-no",
            None,
        ),
        (
            "bhi_no_without_arch_capabilities_is_absent",
            "svm",
            Some(""),
            "bhi-no",
            Some(false),
        ),
        (
            "mmio_bits_on_amd_are_absent",
            "svm",
            Some(""),
            "fbsdp-no",
            Some(false),
        ),
        (
            "mmio_bits_on_immune_intel",
            "vmx arch_capabilities",
            Some(""),
            "fbsdp-no",
            Some(true),
        ),
        (
            "taa_no_without_rtm_is_absent_even_without_bugs",
            "vmx",
            None,
            "taa-no",
            Some(false),
        ),
        ("pku_needs_ospke", "vmx pku", Some(""), "pku", Some(false)),
        (
            "pku_with_ospke",
            "vmx pku ospke",
            Some(""),
            "pku",
            Some(true),
        ),
        (
            "invtsc_from_constant_and_nonstop_tsc",
            "vmx constant_tsc nonstop_tsc",
            Some(""),
            "invtsc",
            Some(true),
        ),
        (
            "lfence_serializing_never_on_intel",
            "vmx",
            Some(""),
            "lfence-always-serializing",
            Some(false),
        ),
        (
            "lfence_serializing_on_amd",
            "svm",
            Some(""),
            "lfence-always-serializing",
            Some(true),
        ),
        (
            "null_sel_clr_base_on_amd_without_null_seg",
            "svm",
            Some(""),
            "null-sel-clr-base",
            Some(true),
        ),
        (
            "null_sel_clr_base_on_amd_with_null_seg",
            "svm",
            Some("null_seg"),
            "null-sel-clr-base",
            Some(false),
        ),
        (
            "auto_ibrs_on_amd_with_ibrs_enhanced",
            "svm ibrs_enhanced",
            Some(""),
            "auto-ibrs",
            Some(true),
        ),
        (
            "never_offered_core_capability",
            "vmx",
            Some(""),
            "core-capability",
            Some(false),
        ),
        (
            "never_offered_kvm_mmu",
            "vmx",
            Some(""),
            "kvm-mmu",
            Some(false),
        ),
        (
            "spec_ctrl_on_amd_without_ibpb_ret_depends_on_the_kernel",
            "svm ibrs ibpb",
            Some("ibpb_no_ret"),
            "spec-ctrl",
            None,
        ),
        (
            "spec_ctrl_on_amd_without_bugs_line_is_unknown",
            "svm ibrs ibpb",
            None,
            "spec-ctrl",
            None,
        ),
    ];
    for (name, flags, bugs, feature, expected) in rows {
        let f = host_features(&info(flags, *bugs));
        assert_eq!(answer(&f, feature), *expected, "{name}");
    }
}

#[test]
fn every_flag_proxmox_allows_in_a_vm_is_known() {
    for name in PROXMOX_VM_FLAGS {
        assert!(vm_flag(name).is_some(), "{name}");
    }
    assert_eq!(
        vm_flag("hv-tlbflush"),
        Some(VmFlag::HyperV(Enlightenment::Any))
    );
    assert_eq!(
        vm_flag("hv_evmcs"),
        Some(VmFlag::HyperV(Enlightenment::IntelVmx))
    );
    assert_eq!(vm_flag("sse4_2"), Some(VmFlag::Feature("sse4.2")));
    assert_eq!(vm_flag("hv-no-such"), None);
    assert_eq!(vm_flag("no-such-flag"), None);
}

#[test]
fn la57_absent_is_unknown_not_missing() {
    let f = host_features(&info("lm", None));
    assert!(f.unverifiable.contains("la57"));
    let f = host_features(&info("lm la57", None));
    assert!(f.present.contains("la57"));
}
