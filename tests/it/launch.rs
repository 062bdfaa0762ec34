//! What QEMU is started with, case by case (issue 20): each test is named
//! after a case where judging the `cpu:` line alone gave a wrong answer.

use std::collections::BTreeSet;
use std::path::Path;

use pve_cpuguard::cpu::capability::{Capability, View};
use pve_cpuguard::cpu::flags::HostFeatures;
use pve_cpuguard::cpu::launch::{
    args_cpu, windows_version, Guest, QemuVersion, StartNode, VmSpecs,
};
use pve_cpuguard::cpu::requirement::from_cpu_value;
use pve_cpuguard::cpu::verdict::{judge, Outcome, Question, Verdict};
use pve_cpuguard::pve::custom_models::CustomModels;
use pve_cpuguard::pve::vmconf;

/// A KVM host of `vendor` with exactly the features of `level` and kvm64.
fn kvm_host(vendor: &str, level: &str) -> Capability {
    let none = CustomModels::default();
    let mut present: BTreeSet<String> = from_cpu_value(level, &none).features;
    present.extend(from_cpu_value("kvm64", &none).features);
    present.insert(
        if vendor == "AuthenticAMD" {
            "svm"
        } else {
            "vmx"
        }
        .into(),
    );
    Capability::new(
        vendor,
        "test",
        None,
        Some(46),
        HostFeatures {
            present,
            unverifiable: BTreeSet::new(),
        },
        View::Cpuinfo,
    )
}

fn vm(text: &str) -> vmconf::VmConfig {
    vmconf::parse(text, Path::new("100.conf")).unwrap()
}

fn node(vendor: &str, level: &str, processors: u32) -> Capability {
    let mut c = kvm_host(vendor, level);
    c.processors = Some(processors);
    c.qemu_version = QemuVersion::parse("11.0.0");
    c
}

fn intel() -> Capability {
    node("GenuineIntel", "x86-64-v4", 64)
}

fn amd() -> Capability {
    node("AuthenticAMD", "x86-64-v3", 64)
}

fn specs(text: &str) -> VmSpecs<'static> {
    static NONE: std::sync::LazyLock<CustomModels> =
        std::sync::LazyLock::new(CustomModels::default);
    let c = vm(text);
    VmSpecs {
        next_start: c.with_pending().launch_spec(),
        running: c.launch_spec(),
        custom: &NONE,
        cold_start: None,
    }
}

fn start(text: &str, target: &Capability) -> Verdict {
    let q = Question::Start;
    judge(&specs(text).requirement(&q, target), target, q)
}

fn live(text: &str, source: &Capability, target: &Capability) -> Verdict {
    let q = Question::Live {
        source: Some(source),
    };
    judge(&specs(text).requirement(&q, target), target, q)
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code()).collect()
}

fn below_kvm64() -> Capability {
    // A node with KVM but without what even x86-64-v2 needs.
    node("GenuineIntel", "kvm64", 8)
}

#[test]
fn template_starts_everywhere_under_tcg() {
    let text = "cpu: x86-64-v4\ntemplate: 1\nsockets: 4\ncores: 32\n";
    let l = vm(text).launch(&StartNode::of(&below_kvm64()), &CustomModels::default());
    assert_eq!(l.guest, Guest::Template);
    assert!(!l.kvm);
    assert_eq!(l.cpu_arg.as_deref(), Ok("qemu64"));
    assert_eq!(l.vcpus, 1, "a template starts minimised");
    let v = start(text, &below_kvm64());
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(v.notes.iter().any(|n| n.contains("template")), "{v:?}");
}

#[test]
fn aarch64_guest_is_emulated_and_needs_nothing_of_the_node() {
    let text = "arch: aarch64\ncpu: cortex-a57\n";
    let l = vm(text).launch(&StartNode::of(&amd()), &CustomModels::default());
    assert_eq!(
        l.guest,
        Guest::Emulated {
            arch: "aarch64".into()
        }
    );
    assert!(!l.kvm);
    assert_eq!(l.requirement.unknown, None);
    let v = start(text, &below_kvm64());
    assert_eq!(v.outcome, Outcome::Compatible, "{v:?}");
    assert!(
        v.notes.iter().any(|n| n.contains("emulated aarch64")),
        "{v:?}"
    );
    // Asked to run it under KVM, no x86 node can.
    let v = start("arch: aarch64\nkvm: 1\n", &amd());
    assert_eq!(codes(&v), ["qemu-server-refuses-start"], "{v:?}");
}

#[test]
fn kvm_0_twin_is_judged_apart_from_its_kvm_sibling() {
    let tcg = "cpu: x86-64-v4\nkvm: 0\n";
    let kvm = "cpu: x86-64-v4\n";
    assert_ne!(vm(tcg).launch_spec(), vm(kvm).launch_spec());
    assert_eq!(start(tcg, &amd()).outcome, Outcome::Compatible);
    assert_eq!(codes(&start(kvm, &amd())), ["missing-flags"]);
}

#[test]
fn vcpus_above_the_nodes_logical_cpus_are_refused() {
    let text = "cpu: x86-64-v3\nsockets: 2\ncores: 16\n";
    let small = node("AuthenticAMD", "x86-64-v3", 16);
    let v = start(text, &small);
    assert_eq!(codes(&v), ["too-many-vcpus"], "{v:?}");
    assert!(v.reasons[0].to_string().contains("MAX 16 vcpus"), "{v:?}");
    assert!(codes(&live(text, &amd(), &small)).contains(&"too-many-vcpus"));
    assert_eq!(start(text, &amd()).outcome, Outcome::Compatible);
    // A node whose size is not known is not refused for it.
    let mut unknown_size = small.clone();
    unknown_size.processors = None;
    assert_eq!(start(text, &unknown_size).outcome, Outcome::Compatible);
}

#[test]
fn win11_started_on_intel_cannot_move_live_to_amd() {
    let text = "cpu: x86-64-v3\nostype: win11\nmachine: pc-q35-11.0+pve2\n";
    let l = vm(text).launch(&StartNode::of(&intel()), &CustomModels::default());
    assert!(l.cpu_arg.as_ref().unwrap().contains(",hv_evmcs,"), "{l:?}");
    assert!(l.requirement.hyperv.contains("hv-evmcs"));
    let v = live(text, &intel(), &amd());
    assert_eq!(
        codes(&v),
        ["hyperv-needs-intel-vmx", "vendor-change"],
        "{v:?}"
    );
    assert!(v
        .notes
        .iter()
        .any(|n| n.contains("added hv_evmcs by itself")));
    // Even when vendor changes are only warned about: it is no vendor change.
    let mut warnings = Vec::new();
    let rules = pve_cpuguard::guard::decision::Rules {
        vendor_change: pve_cpuguard::conf::config::VendorChange::Warn,
        ..Default::default()
    };
    let v = pve_cpuguard::guard::decision::apply_rules(v, rules, &mut warnings);
    assert_eq!(codes(&v), ["hyperv-needs-intel-vmx"], "{v:?}");
    // Started on AMD it gets no hv_evmcs, and moving to Intel is fine.
    assert_eq!(start(text, &amd()).outcome, Outcome::Compatible);
    let on_amd = vm(text).launch(&StartNode::of(&amd()), &CustomModels::default());
    assert!(!on_amd.requirement.hyperv.contains("hv-evmcs"));
    // Before machine 11.0+pve2 qemu-server adds none.
    let old = "cpu: x86-64-v3\nostype: win11\nmachine: pc-q35-10.0+pve1\n";
    assert_eq!(live(old, &intel(), &amd()).outcome, Outcome::Incompatible);
    assert!(!codes(&live(old, &intel(), &amd())).contains(&"hyperv-needs-intel-vmx"));
}

#[test]
fn x_line_is_a_section_only_at_column_0_alone() {
    // `[x] …` is a line qemu-server skips: `cpu: host` after it is the VM's.
    let text = "name: x\n[x] note\ncpu: host\n";
    let r = specs(text).requirement(&Question::Start, &amd());
    assert_eq!(r.cputype, "host");
    let v = live(text, &intel(), &amd());
    assert!(codes(&v).contains(&"vendor-change"), "{v:?}");
}

#[test]
fn indented_key_does_not_override_the_real_one() {
    let text = "cpu: host\n  cpu: kvm64\n";
    let v = live(text, &intel(), &amd());
    assert_eq!(v.outcome, Outcome::Incompatible, "{v:?}");
}

#[test]
fn args_dash_dash_cpu_is_what_qemu_runs() {
    let text = "cpu: kvm64\nargs: --cpu 'x86-64-v4' -smp 2\n";
    let l = vm(text).launch(&StartNode::of(&amd()), &CustomModels::default());
    assert_eq!(l.cpu_arg.as_deref(), Ok("x86-64-v4"));
    // QEMU has no x86-64-v4 model (it is Proxmox's name): the answer is
    // unknown, not kvm64's yes.
    assert_eq!(start(text, &amd()).outcome, Outcome::Unknown);
    let text = "cpu: kvm64\nargs: -cpu Skylake-Server-v4,enforce\n";
    assert_eq!(codes(&start(text, &amd())), ["missing-flags"]);
    let skylake = node("GenuineIntel", "Skylake-Server-v4", 64);
    assert_eq!(start(text, &skylake).outcome, Outcome::Compatible);
}

#[test]
fn pending_cpu_change_is_judged_for_the_next_start_only() {
    let text = "cpu: x86-64-v3\n[PENDING]\ncpu: x86-64-v4\n";
    // The next start uses x86-64-v4, which the AMD node lacks...
    assert_eq!(codes(&start(text, &amd())), ["missing-flags"]);
    // ...while the running guest (x86-64-v3) moves there live.
    let bigger_amd = node("AuthenticAMD", "x86-64-v4", 64);
    assert_eq!(live(text, &bigger_amd, &amd()).outcome, Outcome::Compatible);
}

#[test]
fn machine_newer_than_the_nodes_qemu_is_refused() {
    let mut old = amd();
    old.qemu_version = QemuVersion::parse("9.2.0");
    let text = "cpu: x86-64-v3\nmachine: pc-q35-10.0\n";
    let v = start(text, &old);
    assert_eq!(codes(&v), ["qemu-server-refuses-start"], "{v:?}");
    assert!(codes(&live(text, &amd(), &old)).contains(&"machine-newer-than-qemu"));
    assert_eq!(start(text, &amd()).outcome, Outcome::Compatible);
}

#[test]
fn windows_machine_is_pinned_as_qemu_server_pins_it() {
    let machine = |text: &str| {
        vm(text)
            .launch(&StartNode::of(&intel()), &CustomModels::default())
            .machine
    };
    assert_eq!(machine("ostype: win11\n").as_deref(), Some("5.1+pve0"));
    assert_eq!(
        machine("ostype: win11\nmeta: creation-qemu=9.2.0,ctime=1\n").as_deref(),
        Some("9.2+pve0")
    );
    assert_eq!(machine("ostype: l26\n").as_deref(), Some("11.0+pve2"));
    assert_eq!(
        machine("machine: pc-q35-4.1+pve2.pxe\n").as_deref(),
        Some("4.1+pve2")
    );
}

#[test]
fn a_suggestion_keeps_the_rest_of_the_vm() {
    let s = specs("cpu: host\nsockets: 2\ncores: 16\n").with_cpu("x86-64-v2-AES");
    let small = node("AuthenticAMD", "x86-64-v3", 16);
    let r = s.requirement(&Question::Start, &small);
    assert_eq!(r.vcpus, 32);
    assert_eq!(
        codes(&judge(&r, &small, Question::Start)),
        ["too-many-vcpus"]
    );
}

#[test]
fn args_are_split_like_a_shell() {
    assert_eq!(
        args_cpu(r#"-cpu "host,+a\"b""#).as_deref(),
        Some("host,+a\"b")
    );
    assert_eq!(args_cpu(r"-cpu host\ x").as_deref(), Some("host x"));
    assert_eq!(
        args_cpu("-cpu 'unterminated").as_deref(),
        Some("unterminated")
    );
    assert_eq!(args_cpu("-cpu").as_deref(), Some(""));
    assert_eq!(args_cpu("  "), None);
}

#[test]
fn windows_version_as_qemu_server_reads_ostype() {
    for (ostype, v) in [
        (Some("win11"), 11),
        (Some("win10"), 10),
        (Some("w2k8"), 6),
        (Some("wxp"), 5),
        (Some("l26"), 0),
        (Some("win"), 0),
        (None, 0),
    ] {
        assert_eq!(windows_version(ostype), v, "{ostype:?}");
    }
}

/// The audit's memo launches a configuration by its `launch_key`: for
/// configurations that differ in what the key puts one way (vCPU layout,
/// `ostype`, `bios`, `meta`, templates), the launch is the same whether
/// given the configuration or its key, on nodes of either vendor, old and
/// new QEMU, or unknown.
#[test]
fn a_configuration_launches_as_its_launch_key() {
    use pve_cpuguard::cpu::launch::{launch, launch_key};
    let custom = CustomModels::default();
    let mut old = intel();
    old.qemu_version = QemuVersion::parse("8.1.5");
    let nodes = [intel(), amd(), old];
    let mut starts: Vec<StartNode<'_>> = nodes.iter().map(StartNode::of).collect();
    starts.push(StartNode::UNKNOWN);
    let mut compared = 0;
    for cpu in [
        "",
        "cpu: host\n",
        "cpu: x86-64-v3,flags=+hv-evmcs\n",
        "cpu: kvm64\n",
    ] {
        for ostype in [
            "", "l26", "win11", "win7", "w2k8", "wxp", "solaris", "other",
        ] {
            for extra in [
                "",
                "bios: ovmf\n",
                "bios: seabios\nsockets: 2\ncores: 4\n",
                "sockets: 8\n",
                "cores: 8\n",
                "meta: creation-qemu=9.2.0,ctime=1\n",
                "meta: creation-qemu=8.0.2,ctime=1\nbios: ovmf\n",
                "machine: pc-q35-8.1\n",
                "template: 1\nbios: ovmf\n",
                "hugepages: 1024\n",
            ] {
                let text = format!("{cpu}ostype: {ostype}\n{extra}");
                let text = text.replace("ostype: \n", "");
                let spec = vm(&text).with_pending().launch_spec();
                let key = launch_key(&spec);
                for node in &starts {
                    assert_eq!(
                        format!("{:?}", launch(&spec, node, &custom)),
                        format!("{:?}", launch(&key, node, &custom)),
                        "{text}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 4 * 8 * 10 * 4);
}
