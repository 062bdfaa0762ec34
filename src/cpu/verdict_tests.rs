//! Verdicts checked against what Proxmox VE (qemu-server `get_cpu_options`)
//! and QEMU do with the `-cpu` they build: one test per case, named after
//! it. Hosts are real /proc/cpuinfo text, edited where a case needs it.

use std::path::Path;

use crate::cpu::capability::{Capability, KvmModule};
use crate::cpu::cpuinfo;
use crate::cpu::fix::{self, Fix};
use crate::cpu::level::{self, Floor};
use crate::cpu::requirement::{self, Requirement};
use crate::cpu::verdict::{judge, Outcome, Question, Verdict};
use crate::pve::custom_models::CustomModels;
use crate::pve::vmconf;

/// A sample from tests/data/cpuinfo, with `drop` removed from its flags
/// and `add` added.
fn sample(name: &str, drop: &[&str], add: &[&str]) -> Capability {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cpuinfo")
        .join(format!("{name}.txt"));
    let mut info = crate::reach::local::cpuinfo(&path).unwrap();
    for f in drop {
        assert!(info.flags.remove(f), "{name} has {f}");
    }
    for f in add {
        info.flags.insert(f);
    }
    Capability::from_cpuinfo(&info)
}

/// Cascade Lake (Intel, vmx, 46 bits, AVX-512).
fn intel() -> Capability {
    sample("hwloc-xeon-gold-6230-cascadelake", &[], &[])
}

/// Zen 3 (AMD, svm, 48 bits, no AVX-512).
fn amd() -> Capability {
    sample("archspec-linux-ubuntu20.04-zen3", &[], &[])
}

/// Haswell (Intel, vmx, no AVX-512).
fn haswell() -> Capability {
    sample("archspec-linux-rhel7-haswell", &[], &[])
}

fn req(cpu: &str) -> Requirement {
    let r = requirement::from_cpu_value(cpu, &CustomModels::default());
    assert_eq!(r.unknown, None, "{cpu}");
    r
}

/// The requirement of a whole VM config text.
fn vm(conf: &str) -> Requirement {
    let vm = vmconf::parse(conf, Path::new("100.conf")).unwrap();
    vm.launch(
        &crate::cpu::launch::StartNode::UNKNOWN,
        &CustomModels::default(),
    )
    .requirement
}

fn start(r: &Requirement, target: &Capability) -> Verdict {
    judge(r, target, Question::Start)
}

fn live(r: &Requirement, source: &Capability, target: &Capability) -> Verdict {
    judge(
        r,
        target,
        Question::Live {
            source: Some(source),
        },
    )
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code()).collect()
}

fn has_note(v: &Verdict, text: &str) -> bool {
    v.notes.iter().any(|n| n.contains(text))
}

// 1. VM flags Proxmox VE allows (qemu-server CPUFlags.pm).

#[test]
fn every_vm_flag_proxmox_allows_gets_an_answer_not_unknown() {
    for flag in crate::cpu::flags::PROXMOX_VM_FLAGS {
        for sign in ['+', '-'] {
            let r = req(&format!("x86-64-v2-AES,flags={sign}{flag}"));
            for (host, cap) in [("intel", intel()), ("amd", amd())] {
                let v = start(&r, &cap);
                assert_ne!(v.outcome, Outcome::Unknown, "{sign}{flag} on {host}: {v:?}");
            }
        }
    }
}

#[test]
fn hv_tlbflush_needs_no_host_bit_on_either_vendor() {
    let r = req("x86-64-v3,flags=+hv-tlbflush");
    assert!(r.hyperv.contains("hv-tlbflush"), "{r:?}");
    assert!(r.features.iter().all(|f| !f.starts_with("hv")));
    assert_eq!(start(&r, &amd()).outcome, Outcome::Compatible);
    assert_eq!(start(&r, &intel()).outcome, Outcome::Compatible);
    // Proxmox's own cfg2cmd case `cpu-level.conf` removes it on `host`.
    let r = req("host,level=30,flags=+md-clear;+pdpe1gb;-hv-tlbflush");
    assert_eq!(start(&r, &intel()).outcome, Outcome::Compatible);
}

#[test]
fn hv_evmcs_on_amd_is_refused_whatever_the_cpu_type() {
    let r = req("x86-64-v3,flags=+hv-evmcs");
    let v = start(&r, &amd());
    assert_eq!(codes(&v), ["hyperv-needs-intel-vmx"], "{v:?}");
    assert!(v.reasons[0].to_string().contains("Intel"));
    assert!(matches!(fix::fix(&v), Fix::NoCpuType(_)));
    assert_eq!(start(&r, &intel()).outcome, Outcome::Compatible);
    // Live from Intel to AMD: refused for the enlightenment too.
    let v = live(&req("Cascadelake-Server,flags=+hv-evmcs"), &intel(), &amd());
    assert!(codes(&v).contains(&"hyperv-needs-intel-vmx"), "{v:?}");
}

#[test]
fn hv_evmcs_needs_nested_vmx_where_qemu_answered() {
    use crate::reach::kvm_probe::{Accel, QemuReport};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cpuinfo/hwloc-xeon-gold-6230-cascadelake.txt");
    let info = crate::reach::local::cpuinfo(&path).unwrap();
    let mut present = Capability::from_cpuinfo(&info).features().present.clone();
    let view = |present: &std::collections::BTreeSet<String>| QemuReport {
        qemu_version: "10.0.2".into(),
        qemu_package: String::new(),
        accel: Accel::Kvm,
        host: Default::default(),
        host_features: present.clone(),
        models: Default::default(),
        binary: None,
    };
    let r = req("Cascadelake-Server-noTSX,flags=+hv-evmcs");
    let nested = Capability::from_qemu_report(&view(&present), Some(&info));
    assert_eq!(start(&r, &nested).outcome, Outcome::Compatible);
    // kvm_intel nested=0: QEMU's host expansion has no vmx.
    present.remove("vmx");
    let flat = Capability::from_qemu_report(&view(&present), Some(&info));
    assert_eq!(codes(&start(&r, &flat)), ["hyperv-needs-intel-vmx"]);
    // From /proc/cpuinfo the module parameter is not visible: a note.
    assert!(has_note(&start(&r, &intel()), "nested=1"));
}

#[test]
fn hv_evmcs_in_a_runningcpu_is_judged_like_the_vm_flag() {
    // qemu-server 9.2 adds hv_evmcs for Windows 11 on Intel hosts
    // (cfg2cmd `win11-host-11.0+pve2.conf`).
    let r = requirement::from_qemu_cpu_arg(
        "host,-cet-ibt,-cet-ss,hv_evmcs,hv_ipi,hv_relaxed,hv_reset,hv_runtime,hv_spinlocks=0x1fff,hv_stimer,hv_synic,hv_time,hv_vapic,hv_vpindex,+kvm_pv_eoi,+kvm_pv_unhalt",
    );
    assert!(r.hyperv.contains("hv-evmcs"), "{r:?}");
    assert_eq!(codes(&start(&r, &amd())), ["hyperv-needs-intel-vmx"]);
}

// 2. Flags KVM synthesises (see flags/kvm_rules.rs for the rule table).

#[test]
fn virt_ssbd_on_amd_with_ssbd_is_offered() {
    // Proxmox's cfg2cmd `custom-cpu-model.conf` asks for +virt-ssbd.
    let r = req("EPYC,flags=+virt-ssbd");
    let zen3 = amd();
    assert!(zen3.has("virt-ssbd"));
    assert_eq!(start(&r, &zen3).outcome, Outcome::Compatible);
    // The same on an Intel host: KVM has no virt-ssbd to give.
    let r = req("x86-64-v3,flags=+virt-ssbd");
    assert_eq!(start(&r, &haswell()).missing_flags(), ["virt-ssbd"]);
}

// 3. kvm: 0 (TCG).

#[test]
fn kvm_0_reaches_the_requirement_with_qemu64_by_default() {
    let r = vm("kvm: 0\nname: t\n");
    assert!(!r.kvm);
    assert_eq!(r.cputype, "qemu64");
    assert!(vm("kvm: 1\n").kvm);
    assert!(vm("name: t\n").kvm);
    assert_eq!(vm("name: t\n").cputype, "kvm64");
}

#[test]
fn kvm_0_guest_starts_where_its_cpu_type_lacks_flags() {
    let r = vm("kvm: 0\ncpu: x86-64-v4\n");
    let v = start(&r, &haswell());
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(has_note(&v, "TCG"), "{v:?}");
    // The same config under KVM is refused there.
    assert_eq!(
        start(&vm("cpu: x86-64-v4\n"), &haswell()).outcome,
        Outcome::Incompatible
    );
}

#[test]
fn kvm_0_guest_moves_live_between_vendors() {
    let r = vm("kvm: 0\ncpu: x86-64-v2-AES\n");
    let v = live(&r, &intel(), &amd());
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(has_note(&v, "vendor included"), "{v:?}");
}

#[test]
fn kvm_0_cpu_host_is_refused_on_every_node() {
    let r = vm("kvm: 0\ncpu: host\n");
    for cap in [intel(), amd()] {
        let v = start(&r, &cap);
        assert_eq!(codes(&v), ["host-cpu-needs-kvm"], "{v:?}");
        assert_eq!(fix::fix(&v), Fix::CpuType);
    }
}

#[test]
fn kvm_0_guest_starts_on_a_node_without_vmx_or_svm() {
    let r = vm("kvm: 0\n");
    let v = start(&r, &sample("hwloc-qemu-guest-qemu64", &[], &[]));
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
}

// 4. phys-bits above the host's width.

#[test]
fn phys_bits_above_host_starts_with_warning() {
    let r = req("x86-64-v3,phys-bits=48");
    let v = start(&r, &haswell());
    assert_eq!(haswell().phys_bits, Some(46));
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(has_note(&v, "QEMU starts the VM with a warning"), "{v:?}");
}

#[test]
fn phys_bits_above_target_live_from_a_wider_source_is_refused() {
    let r = req("x86-64-v2-AES,phys-bits=48");
    let sapphire = sample("archspec-linux-unknown-sapphirerapids", &[], &[]);
    let v = live(&r, &sapphire, &intel());
    assert_eq!(codes(&v), ["phys-bits-too-large"], "{v:?}");
    let text = v.reasons[0].to_string();
    assert!(text.contains("(the source has 52)"), "{text}");
    assert!(text.contains("running guest"), "{text}");
    // Unknown source: kept refused, it may be wider.
    let v = judge(&r, &intel(), Question::Live { source: None });
    assert_eq!(codes(&v), ["phys-bits-too-large"], "{v:?}");
}

#[test]
fn phys_bits_above_target_live_from_an_equally_narrow_source_is_allowed() {
    let r = req("x86-64-v2-AES,phys-bits=48");
    let v = live(&r, &haswell(), &intel());
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(has_note(&v, "with a warning"));
}

#[test]
fn phys_bits_qemu_refuses_are_refused_on_every_node() {
    for (cpu, code) in [
        ("x86-64-v3,phys-bits=31", "phys-bits-out-of-range"),
        ("host,phys-bits=53", "phys-bits-out-of-range"),
        ("kvm32,phys-bits=36", "phys-bits-on-32-bit-cpu"),
    ] {
        for cap in [intel(), amd()] {
            assert_eq!(codes(&start(&req(cpu), &cap)), [code], "{cpu}");
        }
        // The same under TCG: QEMU checks it for every accelerator.
        let mut r = req(cpu);
        r.kvm = false;
        assert!(codes(&start(&r, &amd())).contains(&code), "{cpu} under TCG");
    }
    let v = start(&req("kvm32,phys-bits=36"), &intel());
    assert!(
        v.reasons[0]
            .to_string()
            .starts_with("kvm32 is a 32-bit CPU type"),
        "{v:?}"
    );
    for fine in ["x86-64-v3,phys-bits=32", "x86-64-v3,phys-bits=46", "kvm32"] {
        assert_eq!(
            start(&req(fine), &intel()).outcome,
            Outcome::Compatible,
            "{fine}"
        );
    }
}

#[test]
fn guest_phys_bits_above_the_node_width_is_refused_there() {
    // Proxmox's cfg2cmd case `host,guest-phys-bits=39`: fine on any node.
    assert_eq!(
        start(&req("host,guest-phys-bits=39"), &haswell()).outcome,
        Outcome::Compatible
    );
    // `host` takes the node's width: 48 fits the 48-bit Zen 3, not the 46-bit Haswell.
    let r = req("host,guest-phys-bits=48");
    assert_eq!(start(&r, &amd()).outcome, Outcome::Compatible);
    let v = start(&r, &haswell());
    assert_eq!(codes(&v), ["guest-phys-bits-out-of-range"], "{v:?}");
    assert!(v.reasons[0].to_string().contains("46 bits here"), "{v:?}");
    // A named model without phys-bits gets QEMU's 40 on every node.
    let r = req("x86-64-v2-AES,guest-phys-bits=42");
    assert_eq!(codes(&start(&r, &amd())), ["guest-phys-bits-out-of-range"]);
    assert_eq!(
        start(
            &req("x86-64-v2-AES,phys-bits=44,guest-phys-bits=42"),
            &amd()
        )
        .outcome,
        Outcome::Compatible
    );
    // runningcpu spelling.
    let r = requirement::from_qemu_cpu_arg("host,+kvm_pv_eoi,+kvm_pv_unhalt,guest-phys-bits=48");
    assert_eq!(r.guest_phys_bits, Some(48));
}

// 5. Nodes without vmx/svm run no KVM guest.

#[test]
fn node_without_vmx_or_svm_refuses_every_kvm_guest() {
    let no_kvm = sample("hwloc-xeon-gold-6230-cascadelake", &["vmx"], &[]);
    assert_eq!(no_kvm.kvm_module(), None);
    for cpu in ["kvm64", "x86-64-v2", "host", "max", "Cascadelake-Server"] {
        let v = start(&req(cpu), &no_kvm);
        assert_eq!(codes(&v), ["no-kvm"], "{cpu}: {v:?}");
        let v = live(&req(cpu), &intel(), &no_kvm);
        assert_eq!(codes(&v), ["no-kvm"], "{cpu} live: {v:?}");
    }
    let v = start(&req("kvm64"), &no_kvm);
    assert!(v.reasons[0].to_string().contains("neither vmx nor svm"));
    assert!(matches!(fix::fix(&v), Fix::NoCpuType(_)));
}

#[test]
fn node_without_vmx_or_svm_is_below_the_floor() {
    let no_kvm = sample("archspec-linux-ubuntu20.04-zen3", &["svm"], &[]);
    let l = level::of(&no_kvm);
    assert_eq!(l.floor, Floor::NoKvm);
    assert!(!l.floor_met);
    assert_eq!(l.next, None);
    assert_eq!(level::below_floor(&no_kvm), Some(Floor::NoKvm));
    assert_eq!(level::below_floor(&amd()), None);
    assert_eq!(level::of(&amd()).floor, Floor::Met);
    assert_eq!(level::floor(&amd()), Floor::Met);
    assert_eq!(Floor::NoKvm.code(), "no-kvm");
}

#[test]
fn node_without_vmx_or_svm_whose_qemu_answered_under_kvm_runs_guests() {
    use crate::reach::kvm_probe::{Accel, QemuReport};
    let mut info = crate::reach::local::cpuinfo(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/cpuinfo/archspec-linux-ubuntu20.04-zen3.txt"),
    )
    .unwrap();
    info.flags.remove("svm");
    let cpuinfo_view = Capability::from_cpuinfo(&info);
    let view = QemuReport {
        qemu_version: "10.0.2".into(),
        qemu_package: String::new(),
        accel: Accel::Kvm,
        host: Default::default(),
        host_features: cpuinfo_view.features().present.clone(),
        models: Default::default(),
        binary: None,
    };
    let cap = Capability::from_qemu_report(&view, Some(&info));
    // QEMU's answer under KVM proves KVM works; the vendor picks the module.
    assert_eq!(cap.kvm_module(), Some(KvmModule::Svm));
    assert_eq!(start(&req("kvm64"), &cap).outcome, Outcome::Compatible);
    assert_eq!(level::of(&cap).floor, Floor::Met);
}

// 7. A /proc/cpuinfo without an x86 vendor is unknown, not a level.

#[test]
fn cpuinfo_without_an_x86_vendor_is_unknown_not_a_level() {
    let text = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 lm vmx\n";
    let info = cpuinfo::parse(text, Path::new("cpuinfo")).unwrap();
    let cap = Capability::from_cpuinfo(&info);
    let v = start(&req("kvm64"), &cap);
    assert_eq!(v.outcome, Outcome::Unknown, "{v:?}");
    assert!(v.unknown[0].contains("no x86 CPU vendor"), "{v:?}");
    let l = level::of(&cap);
    assert_eq!(l.floor, Floor::UnknownVendor("unknown".into()));
    assert!(!l.floor_met);
}

// `host` gets no `enforce`: missing VM flags are left out, not fatal.

#[test]
fn host_cpu_with_a_vm_flag_the_node_lacks_starts_with_a_note() {
    let no_pdpe1gb = sample("archspec-linux-rhel7-haswell", &["pdpe1gb"], &[]);
    let v = start(&req("host,flags=+pdpe1gb"), &no_pdpe1gb);
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(has_note(&v, "without `enforce`"), "{v:?}");
    // A named model gets `enforce`: refused.
    let v = start(&req("Haswell-noTSX,flags=+pdpe1gb"), &no_pdpe1gb);
    assert_eq!(v.missing_flags(), ["pdpe1gb"]);
}

// Models newer than the embedded QEMU release, taken from libvirt's cpu_map.

#[test]
fn granite_rapids_v4_from_libvirt_is_judged_like_any_qemu_model() {
    let r = req("GraniteRapids-v4");
    // Cascade Lake has neither AMX nor CET indirect branch tracking.
    let v = start(&r, &intel());
    assert_eq!(v.outcome, Outcome::Incompatible, "{v:?}");
    let missing = v.missing_flags();
    for f in ["amx-tile", "cet-ibt"] {
        assert!(missing.iter().any(|m| m == f), "{f} not in {missing:?}");
    }
    // Its CET flags are what it adds to v3: on v3 they are not asked for.
    let v3 = start(&req("GraniteRapids-v3"), &intel());
    assert!(!v3.missing_flags().iter().any(|m| m == "cet-ibt"), "{v3:?}");
}

// What the audit's memo keys live verdicts on (`source_reads`).

/// Two sources alike in what `source_reads` says the rules read of them
/// give equal live verdicts on every target: the audit judges once for
/// all of them. Each requirement differs in what it reads, so a read left
/// out of `source_reads` makes two unequal verdicts share a key here.
#[test]
fn a_live_verdict_reads_of_the_source_only_what_source_reads_says() {
    let mut narrow = intel();
    narrow.phys_bits = Some(39);
    let sources = [
        intel(),
        narrow,
        haswell(),
        amd(),
        sample("hwloc-xeon-e5345-clovertown", &[], &[]),
    ];
    let mut compared = 0;
    for cpu in [
        "kvm64",
        "x86-64-v2-AES",
        "EPYC-v1",
        "x86-64-v2-AES,phys-bits=host",
        "kvm64,phys-bits=40",
        "x86-64-v2-AES,flags=+nested-virt",
    ] {
        let r = req(cpu);
        let reads = crate::cpu::verdict::source_reads(&r);
        assert!(!reads.cpu, "{cpu}");
        let key = |s: &Capability| {
            (
                reads.vendor.then(|| s.vendor.clone()),
                reads.kvm_module.then(|| s.nested_flag()),
                reads.phys_bits.then_some(s.phys_bits),
            )
        };
        for (i, a) in sources.iter().enumerate() {
            for b in &sources[i + 1..] {
                if key(a) != key(b) {
                    continue;
                }
                for t in &sources {
                    let live = |s| judge(&r, t, Question::Live { source: Some(s) });
                    assert_eq!(
                        live(a),
                        live(b),
                        "{cpu}: {} / {}",
                        a.model_name,
                        b.model_name
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 50, "only {compared} pairs alike");
}

/// For `host` and `max` the audit keys a live verdict on the source's CPU
/// (`Capability::same_cpu`) and KVM module: two nodes of one CPU that
/// differ in size and QEMU give equal live verdicts on every target.
#[test]
fn a_host_guest_moving_live_reads_of_the_source_its_cpu_not_its_size() {
    let mut big = intel();
    big.processors = Some(256);
    big.qemu_version = crate::cpu::launch::QemuVersion::parse("11.0.1");
    let mut small = intel();
    small.processors = Some(8);
    small.qemu_version = crate::cpu::launch::QemuVersion::parse("9.2.0");
    assert!(big.same_cpu(&small) && big.nested_flag() == small.nested_flag());
    for cpu in [
        "host",
        "max",
        "host,phys-bits=host",
        "host,flags=+nested-virt",
    ] {
        let r = req(cpu);
        assert!(crate::cpu::verdict::source_reads(&r).cpu, "{cpu}");
        for t in [
            intel(),
            haswell(),
            amd(),
            sample("hwloc-xeon-e5345-clovertown", &[], &[]),
        ] {
            let live = |s| judge(&r, &t, Question::Live { source: Some(s) });
            assert_eq!(live(&big), live(&small), "{cpu} on {}", t.model_name);
        }
    }
}

/// The audit judges a requirement on a node as `vcpus_and_hugepages_on`
/// reads it there: with that vCPU count and those huge pages in place, the
/// verdict is the same, for a start and a live migration, on nodes with
/// and without pdpe1gb and room for the vCPUs or not.
#[test]
fn a_requirement_as_read_on_a_node_gets_its_verdict_there() {
    let mut small = haswell();
    small.processors = Some(8);
    let mut big = intel();
    big.processors = Some(128);
    let no_pdpe1gb = sample("archspec-linux-rhel7-haswell", &["pdpe1gb"], &[]);
    let mut changed = 0;
    for cpu in ["x86-64-v3", "host", "kvm64,phys-bits=40"] {
        for (vcpus, hugepages) in [(0, false), (4, true), (16, true), (64, false)] {
            let mut r = req(cpu);
            r.vcpus = vcpus;
            r.hugepages_1g = hugepages;
            for t in [&small, &big, &no_pdpe1gb] {
                let (v, h) = crate::cpu::verdict::vcpus_and_hugepages_on(&r, t);
                let read = Requirement {
                    vcpus: v,
                    hugepages_1g: h,
                    ..r.clone()
                };
                changed += usize::from(v != vcpus || h != hugepages);
                for q in [Question::Start, Question::Live { source: Some(&big) }] {
                    assert_eq!(
                        judge(&read, t, q),
                        judge(&r, t, q),
                        "{cpu} {vcpus} {hugepages}"
                    );
                }
            }
        }
    }
    assert!(changed > 10, "{changed}");
}
