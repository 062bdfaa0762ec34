//! Every real /proc/cpuinfo sample gets the level its flags deserve, checked
//! flag by flag against an independent oracle written from Proxmox VE's own
//! definitions (qemu-server CPUConfig.pm: `qemu64` + flags) in Linux
//! spelling, plus the incidents the issue names.

use crate::harness;

use std::collections::BTreeSet;

use pve_cpuguard::cpu::capability::Capability;
use pve_cpuguard::cpu::verdict::{judge, Outcome, Question};
use pve_cpuguard::cpu::{cpuinfo, level, requirement};
use pve_cpuguard::pve::custom_models::CustomModels;

/// kvm64 as Proxmox starts it (QEMU kvm64 + PVE's `+lahf_lm +sep`), in Linux
/// spelling, without what KVM provides anyway (mce mca mtrr pat) and without
/// `sep`/`syscall`, which long mode implies (old kernels hide them).
const KVM64: &[&str] = &[
    "vme", "fpu", "de", "pse", "tsc", "msr", "pae", "cx8", "apic", "pge", "cmov", "pse36",
    "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "lm", "nx", "lahf_lm",
];
const V2: &[&str] = &["popcnt", "pni", "sse4_1", "sse4_2", "ssse3"];
const V2_AES: &[&str] = &["aes"];
const V3: &[&str] = &[
    "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
];
const V4: &[&str] = &["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];

/// The oracle: each rung's full flag list. The x86-64-vN types build on
/// QEMU `qemu64`, which is kvm64 without `vme`.
fn rungs() -> Vec<(&'static str, BTreeSet<&'static str>)> {
    let mut acc: BTreeSet<&str> = KVM64.iter().copied().collect();
    let mut out = vec![("kvm64", acc.clone())];
    acc.remove("vme");
    for (name, add) in [
        ("x86-64-v2", V2),
        ("x86-64-v2-AES", V2_AES),
        ("x86-64-v3", V3),
        ("x86-64-v4", V4),
    ] {
        acc.extend(add.iter().copied());
        out.push((name, acc.clone()));
    }
    out
}

/// Intersection of every `flags` line, independently of the parser.
fn oracle_flags(text: &str) -> BTreeSet<String> {
    let mut sets = text.lines().filter(|l| l.starts_with("flags")).map(|l| {
        l.split_once(':')
            .unwrap()
            .1
            .split_whitespace()
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
    });
    let first = sets.next().unwrap_or_default();
    sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
}

#[test]
fn every_sample_gets_the_level_its_flags_deserve() {
    let mut checked = 0;
    for path in harness::all_samples().iter().map(|n| harness::cpuinfo(n)) {
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(info) = cpuinfo::parse(&text, &path) else {
            assert!(
                !text.contains("\nflags"),
                "{} failed to parse",
                path.display()
            );
            continue;
        };
        let flags = oracle_flags(&text);
        let got: BTreeSet<String> = info.flags.iter().map(str::to_string).collect();
        assert_eq!(got, flags, "{}: flag intersection", path.display());
        let mut want = None;
        let mut want_missing = None;
        for (name, needed) in rungs() {
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|f| !flags.contains(*f))
                .collect();
            if missing.is_empty() {
                want = Some(name);
            } else {
                want_missing = Some((name, missing));
                break;
            }
        }
        let got = level::of(&Capability::from_cpuinfo(&info));
        if !flags.contains("vmx") && !flags.contains("svm") {
            // No usable KVM: below the floor, whatever the flags.
            assert_eq!(got.floor, level::Floor::NoKvm, "{}", path.display());
            assert!(!got.floor_met && got.next.is_none(), "{}", path.display());
            assert_eq!(got.name, "kvm64", "{}", path.display());
            checked += 1;
            continue;
        }
        assert_eq!(got.name, want.unwrap_or("kvm64"), "{}", path.display());
        assert_eq!(got.floor_met, want.is_some(), "{}", path.display());
        match (want_missing, got.next) {
            (None, None) => {}
            (Some((name, missing)), Some((got_name, got_missing))) => {
                assert_eq!(got_name, name, "{}", path.display());
                let got_linux: BTreeSet<String> = got_missing
                    .iter()
                    .map(|q| {
                        pve_cpuguard::cpu::flags::linux_name(q)
                            .unwrap_or(q)
                            .to_string()
                    })
                    .collect();
                let want_linux: BTreeSet<String> = missing.iter().map(|s| s.to_string()).collect();
                assert_eq!(
                    got_linux,
                    want_linux,
                    "{}: flags missing for {name}",
                    path.display()
                );
            }
            (w, g) => panic!("{}: next rung {w:?} vs {g:?}", path.display()),
        }
        checked += 1;
    }
    assert_eq!(checked, 20, "every x86 sample is checked");
}

fn cap(name: &str) -> Capability {
    Capability::from_cpuinfo(&pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(name)).unwrap())
}

fn cap_edited(name: &str, remove: &[&str]) -> Capability {
    let mut info = pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(name)).unwrap();
    for f in remove {
        assert!(info.flags.remove(f), "{name} has {f}");
    }
    Capability::from_cpuinfo(&info)
}

fn start(cpu: &str, target: &Capability) -> pve_cpuguard::cpu::verdict::Verdict {
    judge(
        &requirement::from_cpu_value(cpu, &CustomModels::default()),
        target,
        Question::Start,
    )
}

#[test]
fn cpu_without_aes_is_x86_64_v2_not_v2_aes() {
    // Xeon X7550 (Nehalem-EX) has SSE4.2 and POPCNT but no AES-NI.
    let c = cap("util-linux-xeon-x7550-nehalem-ex");
    assert_eq!(level::of(&c).name, "x86-64-v2");
    let v = start("x86-64-v2-AES", &c);
    assert_eq!(v.outcome, Outcome::Incompatible);
    assert_eq!(v.missing_flags(), vec!["aes"]);
}

#[test]
fn avx512f_without_avx512vl_stays_x86_64_v3() {
    let c = cap_edited("hwloc-xeon-silver-4108-skylake-sp", &["avx512vl"]);
    let l = level::of(&c);
    assert_eq!(l.name, "x86-64-v3");
    assert_eq!(l.next, Some(("x86-64-v4", vec!["avx512vl".to_string()])));
}

#[test]
fn tsx_removed_by_microcode_haswell_fails_haswell_notsx_passes() {
    // The RHEL 7 Haswell sample (E5-2680 v3) has no hle/rtm: TSX is off.
    let c = cap("archspec-linux-rhel7-haswell");
    let v = start("Haswell", &c);
    assert_eq!(v.outcome, Outcome::Incompatible, "{v:?}");
    assert_eq!(v.missing_flags(), vec!["hle", "rtm"]);
    assert_eq!(start("Haswell-noTSX", &c).outcome, Outcome::Compatible);
    assert_eq!(start("Haswell-noTSX-IBRS", &c).outcome, Outcome::Compatible);
}

#[test]
fn identical_cpu_is_always_compatible_for_live_migration() {
    for path in harness::all_samples().iter().map(|n| harness::cpuinfo(n)) {
        let Ok(info) = pve_cpuguard::reach::local::cpuinfo(&path) else {
            continue;
        };
        let c = Capability::from_cpuinfo(&info);
        if c.kvm_module().is_none() {
            // No KVM there: every KVM guest is refused, with that reason.
            let v = judge(
                &requirement::from_cpu_value("kvm64", &CustomModels::default()),
                &c,
                Question::Live { source: Some(&c) },
            );
            let codes: Vec<&str> = v.reasons.iter().map(|r| r.code()).collect();
            assert_eq!(codes, ["no-kvm"], "{}", path.display());
            continue;
        }
        for cpu in [
            "host",
            "max",
            "kvm64",
            "cputype=host,phys-bits=host",
            "host,flags=+nested-virt",
            level::of(&c).name,
        ] {
            let req = requirement::from_cpu_value(cpu, &CustomModels::default());
            let v = judge(&req, &c, Question::Live { source: Some(&c) });
            let floor_ok = level::of(&c).floor_met || cpu != "kvm64";
            let nested_ok =
                !cpu.contains("nested-virt") || c.nested_flag().is_some_and(|f| c.has(f));
            if cpu.contains("phys-bits=host") && c.phys_bits.is_none() {
                // No `address sizes` line: the widths cannot be compared.
                assert_eq!(v.outcome, Outcome::Unknown, "{}", path.display());
            } else if floor_ok && nested_ok {
                assert_eq!(
                    v.outcome,
                    Outcome::Compatible,
                    "{} with {cpu}: {v:?}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn aarch64_input_is_unsupported_not_lowest_level() {
    let err =
        pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo("archspec-linux-amazon-neoverse_n1"))
            .unwrap_err();
    assert!(err.to_string().contains("unsupported"), "{err}");
    let done = harness::Run::new(["inspect"])
        .env(
            "PVE_CPUGUARD_CPUINFO",
            harness::cpuinfo("archspec-linux-amazon-neoverse_n1"),
        )
        .run()
        .code(2);
    done.stderr_has("ARM (aarch64)");
    assert!(done.stdout.is_empty());
}
