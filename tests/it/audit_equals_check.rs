//! Property (issue 20): for random clusters and random VM configurations —
//! templates, other architectures, `kvm: 0` twins, Windows guests with and
//! without a pinned machine, vCPU counts, `[PENDING]` changes, `args: -cpu`
//! — `audit`'s start and live-migration answers are exactly what `check`'s
//! decision (`guard::decide`, as the hook and `migrate` use it) says, for
//! every VM and node — in the audit itself and in its JSON, references
//! resolved.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::harness::audit_json;

use pve_cpuguard::app::commands::audit::write_json;
use pve_cpuguard::conf::config::{Policy, VendorChange};
use pve_cpuguard::cpu::capability::{Capability, View};
use pve_cpuguard::cpu::flags::HostFeatures;
use pve_cpuguard::cpu::launch::{QemuVersion, VmSpecs};
use pve_cpuguard::cpu::requirement::from_cpu_value;
use pve_cpuguard::cpu::verdict::Outcome;
use pve_cpuguard::guard::audit::{self, Cell, VmEntry};
use pve_cpuguard::guard::coverage::Coverage;
use pve_cpuguard::guard::decision::{self, Movement, Rules, VmLabel};
use pve_cpuguard::guard::fleet::{Fleet, FleetNode};
use pve_cpuguard::pve::custom_models::CustomModels;
use pve_cpuguard::pve::paths::VmId;
use pve_cpuguard::pve::vmconf;

const LEVELS: [&str; 6] = [
    "kvm64",
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
    "Skylake-Server-v4",
    "EPYC-Milan",
];

/// A node: vendor, level, logical CPUs, QEMU minor (10.x or 11.0).
fn node() -> impl Strategy<Value = (bool, usize, u32, bool)> {
    (any::<bool>(), 0..LEVELS.len(), 1u32..64, any::<bool>())
}

fn capability(amd: bool, level: usize, processors: u32, qemu11: bool) -> Capability {
    let none = CustomModels::default();
    let mut present: BTreeSet<String> = from_cpu_value(LEVELS[level], &none).features;
    present.extend(from_cpu_value("kvm64", &none).features);
    present.insert(if amd { "svm" } else { "vmx" }.into());
    let mut c = Capability::new(
        if amd { "AuthenticAMD" } else { "GenuineIntel" },
        format!("cpu {level}"),
        Some((6, u32::try_from(level).unwrap())),
        Some(if amd { 48 } else { 46 }),
        HostFeatures {
            present,
            unverifiable: BTreeSet::new(),
        },
        View::Cpuinfo,
    );
    c.processors = Some(processors);
    c.qemu_version = QemuVersion::parse(if qemu11 { "11.0.1" } else { "10.1.2" });
    c
}

/// One VM config line set.
fn config() -> impl Strategy<Value = String> {
    let cpu = prop::sample::select(vec![
        "",
        "host",
        "max",
        "kvm64",
        "x86-64-v3",
        "x86-64-v4",
        "EPYC-Milan",
        "Skylake-Server-v4,flags=+hv-evmcs",
        "x86-64-v2-AES,flags=+nested-virt",
        "host,phys-bits=host",
        "NoSuchCpu",
    ]);
    let extra = prop::sample::subsequence(
        vec![
            "kvm: 0",
            "template: 1",
            "arch: aarch64",
            "ostype: win11",
            "machine: pc-q35-11.0+pve2",
            "machine: pc-q35-10.1",
            "sockets: 2",
            "cores: 24",
            "hugepages: 1024",
            "args: -cpu kvm64,enforce",
            "[PENDING]\ncpu: x86-64-v4",
        ],
        0..5,
    );
    (cpu, extra).prop_map(|(cpu, extra)| {
        let mut text = if cpu.is_empty() {
            "name: vm\n".to_string()
        } else {
            format!("cpu: {cpu}\n")
        };
        // [PENDING] last: what follows it belongs to it.
        let (pending, main): (Vec<&str>, Vec<&str>) =
            extra.into_iter().partition(|l| l.starts_with('['));
        for l in main.into_iter().chain(pending) {
            text.push_str(l);
            text.push('\n');
        }
        text
    })
}

fn same(cell: Cell<'_>, outcome: Outcome) -> bool {
    matches!(
        (cell, outcome),
        (Cell::Yes, Outcome::Compatible)
            | (Cell::No(_), Outcome::Incompatible)
            | (Cell::Unknown(Some(_)), Outcome::Unknown)
    )
}

/// What a resolved answer of the JSON says of `node`, `None` when it
/// does not name it.
fn json_outcome(answer: &serde_json::Value, node: &str) -> Option<Outcome> {
    if answer["allowed"].as_array()?.iter().any(|n| n == node) {
        return Some(Outcome::Compatible);
    }
    for (side, outcome) in [
        ("refused", Outcome::Incompatible),
        ("unknown", Outcome::Unknown),
    ] {
        if answer[side].as_object()?.contains_key(node) {
            return Some(outcome);
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn audit_answers_what_check_answers(
        nodes in prop::collection::vec(node(), 1..5),
        configs in prop::collection::vec((config(), any::<prop::sample::Index>()), 1..8),
        strict in any::<bool>(),
        warn_vendor in any::<bool>(),
    ) {
        let mut fleet = Fleet::default();
        for (i, (amd, level, processors, qemu11)) in nodes.iter().enumerate() {
            let cap = capability(*amd, *level, *processors, *qemu11);
            fleet.upsert(FleetNode::known(&format!("n{i}"), cap, 1));
        }
        let names: Vec<String> = fleet.nodes.iter().map(|n| n.name.clone()).collect();
        let rules = Rules {
            policy: if strict { Policy::Strict } else { Policy::Default },
            vendor_change: if warn_vendor { VendorChange::Warn } else { VendorChange::Refuse },
        };
        let custom = CustomModels::default();
        let entries: Vec<VmEntry> = configs
            .iter()
            .enumerate()
            .map(|(i, (text, owner))| VmEntry {
                vmid: VmId(100 + u32::try_from(i).unwrap()),
                node: names[owner.index(names.len())].clone(),
                config: vmconf::parse(text, std::path::Path::new("x.conf"))
                    .map_err(|e| e.to_string()),
                running: None,
            })
            .collect();
        let a = audit::run(&entries, &custom, &fleet, &BTreeMap::new(), rules);
        // Its JSON, references resolved, says the same per node.
        let mut doc = Vec::new();
        write_json(&mut doc, &a, &Coverage::default()).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let resolved = audit_json::vms(&doc);
        for ((vm, entry), ((text, _), json)) in
            a.vms.iter().zip(&entries).zip(configs.iter().zip(&resolved))
        {
            prop_assert_eq!(&json["vmid"], vm.vmid.0);
            let conf = entry.config.as_ref().unwrap();
            let specs = VmSpecs {
                next_start: conf.with_pending().launch_spec(),
                running: conf.launch_spec(),
                custom: &custom,
                cold_start: None,
            };
            let label = VmLabel { vmid: vm.vmid.to_string(), name: None };
            for (n, target) in names.iter().enumerate() {
                let cap = fleet.capability(target).unwrap();
                let d = decision::decide(&label, &specs, target, cap, Movement::Start, &fleet, rules);
                prop_assert!(
                    same(a.start_cell(vm, n), d.verdict.outcome),
                    "start of {} on {target}: audit {:?}, check {:?}\n{}",
                    vm.vmid, a.start_cell(vm, n), d.verdict, text
                );
                prop_assert_eq!(
                    json_outcome(&json["start"], target), Some(d.verdict.outcome),
                    "JSON start of {} on {}", vm.vmid, target
                );
                if *target == vm.node {
                    prop_assert_eq!(json_outcome(&json["live_migration"], target), None);
                    continue;
                }
                let d = decision::decide(
                    &label, &specs, target, cap, Movement::Live { source: &vm.node }, &fleet, rules,
                );
                prop_assert!(
                    same(a.live_cell(vm, n), d.verdict.outcome),
                    "live {} -> {target} of {}: audit {:?}, check {:?}\n{}",
                    vm.node, vm.vmid, a.live_cell(vm, n), d.verdict, text
                );
                prop_assert_eq!(
                    json_outcome(&json["live_migration"], target), Some(d.verdict.outcome),
                    "JSON live {} -> {} of {}", vm.node, target, vm.vmid
                );
            }
        }
    }
}
