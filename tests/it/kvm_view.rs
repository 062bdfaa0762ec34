//! The verdict follows QEMU's answer under KVM where /proc/cpuinfo says
//! otherwise, and says so. Fixtures: transcripts recorded from a real QEMU
//! 7.2.22 on a machine whose nested KVM cannot give SSE3 (`pni`) although
//! its /proc/cpuinfo lists it (see tests/data/qmp/README.md).

use crate::harness;

use pve_cpuguard::cpu::capability::{Capability, View};
use pve_cpuguard::cpu::cpuinfo;
use pve_cpuguard::cpu::requirement::from_cpu_value;
use pve_cpuguard::cpu::verdict::{judge, Outcome, Question, Verdict};
use pve_cpuguard::pve::custom_models::CustomModels;
use pve_cpuguard::reach::kvm_probe::{self, Accel, QemuReport};
use pve_cpuguard::reach::qmp;

fn recorded(accel: Accel) -> QemuReport {
    let name = format!("qmp/qemu-7.2-pvm-epyc-{}.jsonl", accel.as_str());
    let bytes = std::fs::read(harness::data(&name)).unwrap();
    kvm_probe::interpret(&bytes, b"", accel, "recorded").unwrap()
}

fn info(name: &str) -> cpuinfo::CpuInfo {
    pve_cpuguard::reach::local::cpuinfo(&harness::data(&format!("qmp/{name}.txt"))).unwrap()
}

fn start(cpu: &str, cap: &Capability) -> Verdict {
    judge(
        &from_cpu_value(cpu, &CustomModels::default()),
        cap,
        Question::Start,
    )
}

#[test]
fn nested_kvm_without_sse3_refuses_kvm64_that_cpuinfo_accepts() {
    let info = info("pvm-epyc-cpuinfo");
    // The machine runs KVM through kvm-pvm, without svm in /proc/cpuinfo:
    // judged from /proc/cpuinfo alone it has no KVM (as with Proxmox VE's
    // kernel, which has no such module); QEMU's answer proves it has.
    let by_cpuinfo = start("kvm64", &Capability::from_cpuinfo(&info));
    let codes: Vec<&str> = by_cpuinfo.reasons.iter().map(|r| r.code()).collect();
    assert_eq!(codes, ["no-kvm"], "{by_cpuinfo:?}");
    assert_eq!(by_cpuinfo.checked_with, "from /proc/cpuinfo");
    let mut with_svm = info.clone();
    with_svm.flags.insert("svm");
    let by_cpuinfo = start("kvm64", &Capability::from_cpuinfo(&with_svm));
    assert_eq!(by_cpuinfo.outcome, Outcome::Compatible, "{by_cpuinfo:?}");

    let cap = Capability::from_qemu_report(&recorded(Accel::Kvm), Some(&info));
    assert_eq!(cap.view.as_str(), "qemu-kvm");
    let v = start("kvm64", &cap);
    assert_eq!(v.outcome, Outcome::Incompatible, "{v:?}");
    // Exactly what `qemu-system-x86_64 -cpu kvm64,enforce` refused with.
    assert_eq!(v.missing_flags(), ["pni"]);
    assert_eq!(v.checked_with, "checked with QEMU 7.2.22 under KVM");
    assert!(
        v.notes
            .iter()
            .any(|n| n == "/proc/cpuinfo shows pni but KVM cannot give it to a guest"),
        "{:?}",
        v.notes
    );
    let json = v.to_json();
    assert_eq!(json["checked_with"], "checked with QEMU 7.2.22 under KVM");
    assert_eq!(json["missing_flags"], serde_json::json!(["pni"]));
}

#[test]
fn named_model_missing_flags_are_qemus_unavailable_features() {
    let view = recorded(Accel::Kvm);
    let cap = Capability::from_qemu_report(&view, Some(&info("pvm-epyc-cpuinfo")));
    for (cpu, model) in [
        ("EPYC-Rome", "EPYC-Rome-v1"),
        ("Haswell", "Haswell-v1"),
        ("Westmere", "Westmere-v1"),
    ] {
        let v = start(cpu, &cap);
        assert_eq!(v.outcome, Outcome::Incompatible, "{cpu}");
        // QEMU's list, minus what QEMU drops for every model under KVM
        // (e.g. svm/monitor are not asked of the host).
        let want: Vec<String> = view.models[model]
            .iter()
            .filter(|f| !pve_cpuguard::cpu::flags::KVM_DROPPED.contains(&f.as_str()))
            .cloned()
            .collect();
        assert_eq!(v.missing_flags(), want, "{cpu}");
    }
    // A VM flag on top of a model is checked against what KVM offers.
    let v = start("cputype=kvm64,flags=+pcid;+pdpe1gb", &cap);
    assert_eq!(v.missing_flags(), ["pcid", "pdpe1gb", "pni"]);
    // A flag the VM switches off is not required even if QEMU lists it.
    let v = start("cputype=kvm64,flags=-pni", &cap);
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
}

#[test]
fn kvm_offering_what_cpuinfo_hides_is_explained() {
    // Edited copy: cx16 deleted from /proc/cpuinfo; the real KVM offers it.
    let info = info("pvm-epyc-cpuinfo-no-cx16");
    let mut with_svm = info.clone();
    with_svm.flags.insert("svm");
    let by_cpuinfo = start("kvm64", &Capability::from_cpuinfo(&with_svm));
    assert_eq!(by_cpuinfo.missing_flags(), ["cx16"]);

    let cap = Capability::from_qemu_report(&recorded(Accel::Kvm), Some(&info));
    let v = start("kvm64", &cap);
    assert_eq!(v.missing_flags(), ["pni"], "cx16 follows KVM, not cpuinfo");
    assert!(
        v.notes
            .iter()
            .any(|n| n == "KVM offers cx16 although /proc/cpuinfo does not show it"),
        "{:?}",
        v.notes
    );
}

#[test]
fn without_cpuinfo_the_kvm_view_stands_alone() {
    let cap = Capability::from_qemu_report(&recorded(Accel::Kvm), None);
    assert_eq!(cap.vendor, "AuthenticAMD");
    assert_eq!(cap.model_name, "AMD EPYC");
    assert_eq!(cap.family_model, Some((25, 1)));
    assert_eq!(cap.phys_bits, None);
    let v = start("kvm64", &cap);
    assert_eq!(v.missing_flags(), ["pni"]);
    assert!(v.notes.iter().all(|n| !n.contains("/proc/cpuinfo")));
    // Features KVM provides to every guest are never missing.
    assert!(cap.has("x2apic") && cap.has("kvm-pv-eoi"));
}

#[test]
fn tcg_answers_are_labelled_as_such() {
    let view = recorded(Accel::Tcg);
    let cap = Capability::from_qemu_report(&view, None);
    assert_eq!(cap.view.as_str(), "qemu-tcg");
    let v = start("kvm64", &cap);
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert_eq!(v.checked_with, "checked with QEMU 7.2.22 under TCG");
    assert!(matches!(cap.view, View::QemuKvm(_)));
}

#[test]
fn a_model_the_node_qemu_lacks_falls_back_to_feature_checks() {
    let mut view = recorded(Accel::Kvm);
    assert!(view.models.remove("Westmere-v1").is_some());
    let cap = Capability::from_qemu_report(&view, None);
    let v = start("Westmere", &cap);
    assert!(v.missing_flags().contains(&"pni".to_string()));
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("QEMU 7.2.22 on this node does not define Westmere-v1")),
        "{:?}",
        v.notes
    );
}

#[test]
fn garbage_fixture_is_an_error_not_a_view() {
    let mut bytes = std::fs::read(harness::data("qmp/qemu-7.2-pvm-epyc-kvm.jsonl")).unwrap();
    bytes.extend_from_slice(b"\x1b[31mSegmentation fault\n");
    let e = kvm_probe::parse_transcript(&bytes, Accel::Kvm).unwrap_err();
    assert!(matches!(e, qmp::QmpError::Garbage { line: 8, .. }), "{e}");
}
