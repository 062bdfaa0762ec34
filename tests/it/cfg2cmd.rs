//! Proxmox VE's own `test/cfg2cmd` cases as the table of `cpu::launch`:
//! for every configuration, the `-cpu` qemu-server builds (or the error it
//! dies with), from the configuration alone and the test's node
//! (tests/data/qemu-server-cfg2cmd/README.md).

use std::path::{Path, PathBuf};

use pve_cpuguard::cpu::launch::{self, QemuVersion, StartNode, VmSpec};
use pve_cpuguard::pve::{custom_models, vmconf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qemu-server-cfg2cmd")
}

/// qemu-server's test runner's `cpu-models.conf` (run_config2command_tests.pl).
const CPU_MODELS: &str = "\
# \"qemu64\" is also a default CPU, used here to test that this doesn't matter
cpu-model: qemu64
    reported-model athlon
    flags +aes;+avx;-kvm_pv_unhalt
    hv-vendor-id testvend
    phys-bits 40

cpu-model: alldefault

";

/// A `# KEY: value` directive of a case.
fn directive<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn every_qemu_server_cfg2cmd_case_gets_its_cpu() {
    let custom = custom_models::parse(CPU_MODELS, Path::new("cpu-models.conf")).unwrap();
    let table = std::fs::read_to_string(data().join("expected-cpu.tsv")).unwrap();
    let mut checked = 0;
    let mut errors = 0;
    let mut failures = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let (case, expected) = line.split_once('\t').unwrap();
        let path = data().join(case);
        let text = std::fs::read_to_string(&path).unwrap();
        let vm = vmconf::parse(&text, &path).unwrap();
        let qemu = directive(&text, "QEMU_VERSION")
            .map_or(QemuVersion::parse("11.0.0"), QemuVersion::parse);
        let node = StartNode {
            arch: directive(&text, "HOST_ARCH").unwrap_or("x86_64"),
            vendor: Some(directive(&text, "HOST_CPU_VENDOR").unwrap_or("GenuineIntel")),
            qemu,
            nested_flag: None,
        };
        let launch = vm.launch(&node, &custom);
        match expected.strip_prefix("error: ") {
            // Errors about disks, USB or vIOMMU are not the CPU's: the
            // `-cpu` is still built, only qemu-server stops later.
            Some(why) if !is_cpu_or_machine_error(why) => {}
            Some(why) => {
                errors += 1;
                match &launch.cpu_arg {
                    Err(e) if why.starts_with(e.as_str()) => {}
                    other => {
                        failures.push(format!("{case}: expected error {why:?}, got {other:?}"))
                    }
                }
            }
            None => {
                checked += 1;
                if launch.cpu_arg.as_deref() != Ok(expected) {
                    failures.push(format!(
                        "{case}:\n  expected {expected}\n  got      {:?}",
                        launch.cpu_arg
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        (checked, errors),
        (95, 3),
        "cases with a -cpu, and QEMU errors"
    );
}

fn is_cpu_or_machine_error(why: &str) -> bool {
    why.contains("QEMU") || why.contains("qemu-server") || why.contains("CPU")
}

/// The audit launches configurations that differ only in sockets × cores
/// once (`guard::audit_memo`): on every case, on nodes of both vendors,
/// the count must reach nothing of the launch but the requirement's
/// `vcpus` — not the `-cpu`, not the machine, not the rest of the
/// requirement.
#[test]
fn vcpus_reach_nothing_of_a_launch_but_the_count() {
    let custom = custom_models::parse(CPU_MODELS, Path::new("cpu-models.conf")).unwrap();
    let mut compared = 0;
    for entry in std::fs::read_dir(data()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let spec = vmconf::parse(&text, &path).unwrap().launch_spec();
        for vendor in ["GenuineIntel", "AuthenticAMD"] {
            let node = StartNode {
                arch: "x86_64",
                vendor: Some(vendor),
                qemu: QemuVersion::parse("11.0.0"),
                nested_flag: Some(if vendor == "GenuineIntel" {
                    "vmx"
                } else {
                    "svm"
                }),
            };
            let one = launch::launch(
                &VmSpec {
                    sockets: Some(1),
                    cores: None,
                    ..spec.clone()
                },
                &node,
                &custom,
            );
            for (sockets, cores) in [(Some(2), Some(3)), (Some(64), None), (None, Some(512))] {
                let many_spec = VmSpec {
                    sockets,
                    cores,
                    ..spec.clone()
                };
                let many = launch::launch(&many_spec, &node, &custom);
                let count = launch::vcpus_of(&many_spec);
                assert_eq!(many.requirement.vcpus, count, "{}", path.display());
                let mut same = one.requirement.clone();
                same.vcpus = count;
                assert_eq!(many.requirement, same, "{} on {vendor}", path.display());
                assert_eq!(
                    (&many.cpu_arg, &many.machine, &many.guest, many.kvm),
                    (&one.cpu_arg, &one.machine, &one.guest, one.kvm),
                    "{} on {vendor}",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 500, "only {compared} launches compared");
}
