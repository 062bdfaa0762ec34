//! Proxmox VE's own `test/cfg2cmd` cases as the table of `cpu::launch`:
//! for every configuration, the `-cpu` qemu-server builds (or the error it
//! dies with), from the configuration alone and the test's node
//! (tests/data/qemu-server-cfg2cmd/README.md).

use std::path::{Path, PathBuf};

use pve_cpuguard::cpu::launch::{QemuVersion, StartNode};
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
