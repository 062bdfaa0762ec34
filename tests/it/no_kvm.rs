//! `inspect` on a host without KVM (issue 23: 504 lines, the same 5-line
//! reason for each of 94 CPU types, and nothing on what the CPU could
//! offer): the reason once for the node, the fix, and what the CPU would
//! run with virtualisation enabled — the same answer `inspect` gives on
//! the same host with it enabled.

use serde_json::Value;

use crate::harness::{self, Run};

/// `inspect` on `cpuinfo`, text and JSON.
fn inspect(cpuinfo: &std::path::Path) -> (String, Value) {
    let text = Run::new(["inspect"])
        .env("PVE_CPUGUARD_CPUINFO", cpuinfo)
        .run()
        .code(0)
        .stdout
        .clone();
    let json = Run::new(["inspect", "-o", "json"])
        .env("PVE_CPUGUARD_CPUINFO", cpuinfo)
        .run()
        .code(0)
        .json();
    (text, json)
}

fn starting(types: &Value) -> Vec<&str> {
    types
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["supported"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[test]
fn no_kvm_reason_printed_exactly_once_in_a_short_report() {
    let dir = tempfile::tempdir().unwrap();
    let off = harness::without_kvm("hwloc-xeon-gold-6230-cascadelake", dir.path());
    let (text, _) = inspect(&off);
    let count = |needle: &str| text.matches(needle).count();
    assert_eq!(count("neither vmx nor svm"), 1, "{text}");
    assert_eq!(count("only VMs with `kvm: 0`"), 1, "{text}");
    assert_eq!(
        count("enable virtualisation (VT-x) in the firmware (BIOS/UEFI setup) if this CPU has it"),
        1,
        "{text}"
    );
    // Never per type: no line of the type table.
    assert!(!text.lines().any(|l| l.starts_with("  kvm64 ")), "{text}");
    let lines = text.lines().count();
    assert!(lines < 40, "{lines} lines:\n{text}");
}

/// What it would offer is what the same CPU with VT-x enabled runs: the
/// sample as captured.
#[test]
fn no_kvm_says_what_the_cpu_would_offer_with_virtualisation_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let sample = "hwloc-xeon-gold-6230-cascadelake";
    let (on_text, on) = inspect(&harness::cpuinfo(sample));
    let (off_text, off) = inspect(&harness::without_kvm(sample, dir.path()));

    // JSON: every type refused now, for the one node-wide reason.
    assert_eq!(off["level_floor"], "no-kvm");
    assert!(starting(&off["cpu_types"]).is_empty(), "{off}");
    // With KVM: the level and the types of the host with VT-x on.
    let with = &off["with_kvm"];
    assert_eq!(with["flag"], "vmx");
    assert_eq!(with["level"], on["level"]);
    assert_eq!(with["next_level"], on["next_level"]);
    let would = starting(&with["cpu_types"]);
    assert_eq!(would, starting(&on["cpu_types"]));
    assert!(would.len() > 20, "{would:?}");
    assert_eq!(on["with_kvm"], Value::Null, "{on}");

    // Text: the same numbers, and every type that would start, named.
    let total = on["cpu_types"].as_array().unwrap().len();
    let level = on["level"].as_str().unwrap();
    assert!(
        harness::has(
            &on_text,
            &format!("{} of {total} Proxmox CPU types start here", would.len()),
        ),
        "{on_text}"
    );
    let said = harness::unwrapped(&off_text);
    assert!(
        said.contains(&format!(
            "no KVM: no Proxmox CPU type starts here; with virtualisation enabled: level {level}, \
             {} of {total} types",
            would.len()
        )),
        "{off_text}"
    );
    let list = said
        .split_once(&format!(
            "{} of {total} Proxmox CPU types would start: ",
            would.len()
        ))
        .and_then(|(_, rest)| rest.split_once(" the other "))
        .map(|(list, _)| list.to_string())
        .unwrap_or_else(|| panic!("no list of types in:\n{off_text}"));
    let named: Vec<&str> = list.split(", ").map(|n| n.trim_end_matches('*')).collect();
    assert_eq!(named, would, "{off_text}");
}

#[test]
fn no_amd_v_names_amd_v_and_a_virtual_machine_names_nested_virtualisation() {
    let dir = tempfile::tempdir().unwrap();
    let (amd, j) = inspect(&harness::without_kvm(
        "archspec-linux-ubuntu20.04-zen3",
        dir.path(),
    ));
    assert_eq!(
        amd.matches("enable virtualisation (AMD-V)").count(),
        1,
        "{amd}"
    );
    assert_eq!(j["with_kvm"]["flag"], "svm");
    // A guest of another hypervisor (its flags say `hypervisor`).
    let (vm, j) = inspect(&harness::cpuinfo("hwloc-qemu-guest-qemu64"));
    assert_eq!(
        vm.matches("enable nested virtualisation for this virtual machine on its hypervisor")
            .count(),
        1,
        "{vm}"
    );
    assert_eq!(j["with_kvm"]["in_vm"], true);
    assert_eq!(vm.matches("neither vmx nor svm").count(), 1, "{vm}");
}

/// Every x86 sample, virtualisation off: short, the reason once.
#[test]
fn every_sample_without_kvm_says_the_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    for s in harness::all_samples() {
        let path = harness::without_kvm(&s, dir.path());
        let done = Run::new(["inspect"])
            .env("PVE_CPUGUARD_CPUINFO", &path)
            .run();
        if done.code == 2 {
            // Not an x86 /proc/cpuinfo (aarch64): refused as before.
            done.stderr_has("unsupported");
            continue;
        }
        let text = &done.stdout;
        assert_eq!(
            text.matches("neither vmx nor svm").count(),
            1,
            "{s}:\n{text}"
        );
        assert_eq!(text.matches("No KVM:").count(), 1, "{s}:\n{text}");
        assert!(text.lines().count() < 40, "{s}:\n{text}");
    }
}
