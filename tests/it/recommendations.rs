//! Property: every CPU type the tool recommends "for every node" — the
//! decision's suggestion (hook, migrate, check), the audit's fix, the
//! baseline's cluster level and best named model — is accepted by the
//! verdict itself (`cpu::verdict::judge`) on every node of any cluster,
//! including clusters with nodes below the floor and mixed vendors; and a
//! refusal's `qm set` suggestion would be accepted for that very movement.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use pve_cpuguard::conf::config::{Policy, VendorChange};
use pve_cpuguard::cpu::baseline;
use pve_cpuguard::cpu::capability::{Capability, View};
use pve_cpuguard::cpu::flags::HostFeatures;
use pve_cpuguard::cpu::launch::{VmSpec, VmSpecs};
use pve_cpuguard::cpu::level::{self, BELOW_FLOOR, LADDER};
use pve_cpuguard::cpu::requirement::{from_cpu_value, Requirement};
use pve_cpuguard::cpu::verdict::{judge, Outcome, Question};
use pve_cpuguard::guard::audit::{self, Suggestion, VmEntry};
use pve_cpuguard::guard::decision::{self, Movement, Rules, VmLabel};
use pve_cpuguard::guard::fleet::{Fleet, FleetNode};
use pve_cpuguard::pve::custom_models::CustomModels;
use pve_cpuguard::pve::paths::VmId;

/// Every feature some rung of the ladder asks for.
fn ladder_features() -> Vec<String> {
    let none = CustomModels::default();
    let mut all = BTreeSet::new();
    for rung in LADDER {
        all.extend(from_cpu_value(rung, &none).features);
    }
    all.into_iter().collect()
}

/// The VM `cpu: CPU` (with 1 GiB huge pages or not) as the guard judges it.
fn vm_specs<'a>(cpu: &str, hugepages: bool, custom: &'a CustomModels) -> VmSpecs<'a> {
    let spec = VmSpec {
        cpu: Some(cpu.to_string()),
        hugepages_1g: hugepages,
        ..VmSpec::default()
    };
    VmSpecs {
        next_start: spec.clone(),
        running: spec,
        custom,
        cold_start: None,
    }
}

fn req(cpu: &str, hugepages: bool) -> Requirement {
    let mut r = from_cpu_value(cpu, &CustomModels::default());
    r.hugepages_1g = hugepages;
    r
}

/// A node: vendor, and which ladder features it lacks (indices).
fn node() -> impl Strategy<Value = (bool, BTreeSet<usize>, u32)> {
    let n = ladder_features().len();
    (
        any::<bool>(),
        // Mostly complete nodes, some missing a few features (below the
        // floor when a kvm64 feature goes).
        prop::collection::btree_set(0..n, 0..4),
        prop::sample::select(vec![40u32, 46, 52]),
    )
}

fn fleet_of(nodes: &[(bool, BTreeSet<usize>, u32)]) -> Fleet {
    let features = ladder_features();
    let mut f = Fleet::default();
    for (i, (amd, lacks, bits)) in nodes.iter().enumerate() {
        let present: BTreeSet<String> = features
            .iter()
            .enumerate()
            .filter(|(j, _)| !lacks.contains(j))
            .map(|(_, f)| f.clone())
            .collect();
        let cap = Capability::new(
            if *amd { "AuthenticAMD" } else { "GenuineIntel" },
            format!("cpu {i}"),
            Some((6, u32::try_from(i).unwrap())),
            Some(*bits),
            HostFeatures {
                present,
                unverifiable: BTreeSet::new(),
            },
            View::Cpuinfo,
        );
        f.upsert(FleetNode::known(&format!("n{i}"), cap, 1));
    }
    f
}

fn accepted_on_every_node(f: &Fleet, r: &Requirement) -> Result<(), String> {
    for (name, cap) in f.known() {
        let v = judge(r, cap, Question::Start);
        if v.outcome != Outcome::Compatible {
            return Err(format!("{} refused on {name}: {v:?}", r.cpu));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_recommended_type_is_accepted_on_every_node(
        nodes in prop::collection::vec(node(), 1..6),
        vm_cpu in prop::sample::select(LADDER.to_vec()),
        hugepages in any::<bool>(),
        strict in any::<bool>(),
        warn_vendor in any::<bool>(),
        source_pick in any::<prop::sample::Index>(),
    ) {
        let f = fleet_of(&nodes);
        let rules = Rules {
            policy: if strict { Policy::Strict } else { Policy::Default },
            vendor_change: if warn_vendor { VendorChange::Warn } else { VendorChange::Refuse },
        };
        let none = CustomModels::default();
        let vm = vm_specs(vm_cpu, hugepages, &none);

        // The one recommendation.
        if let Some(t) = decision::recommend(&f, Some(&vm)) {
            prop_assert!(accepted_on_every_node(&f, &req(t, hugepages)).is_ok());
        } else {
            // None: then truly no rung starts everywhere.
            for rung in LADDER {
                prop_assert!(accepted_on_every_node(&f, &req(rung, hugepages)).is_err());
            }
        }

        // The decision's suggestion, for starts and live migrations.
        let names: Vec<String> = f.nodes.iter().map(|n| n.name.clone()).collect();
        let source = &names[source_pick.index(names.len())];
        let label = VmLabel { vmid: "100".into(), name: None };
        for target in &names {
            let cap = f.capability(target).unwrap();
            for movement in [Movement::Start, Movement::Live { source }] {
                if matches!(movement, Movement::Live { .. }) && target == source {
                    continue;
                }
                let d = decision::decide(&label, &vm, target, cap, movement, &f, rules);
                if let Some(e) = &d.everywhere {
                    let t = e.split_whitespace().next().unwrap();
                    let r = req(t, hugepages);
                    prop_assert!(accepted_on_every_node(&f, &r).is_ok(), "{e}");
                    // ...and for this very movement on this target.
                    let mode = match movement {
                        Movement::Live { source } => Question::Live { source: f.capability(source) },
                        _ => Question::Start,
                    };
                    let mut ignore = Vec::new();
                    let v = decision::apply_rules(judge(&r, cap, mode), rules, &mut ignore);
                    prop_assert_eq!(v.outcome, Outcome::Compatible, "{} -> {}: {}", source, target, e);
                    let want = format!("--cpu {t}`");
                    prop_assert!(d.explain().contains(&want), "{}", d.explain());
                } else {
                    prop_assert!(!d.explain().contains("qm set"), "{}", d.explain());
                }
            }
        }

        // The audit's fix.
        let vms: Vec<VmEntry> = names
            .iter()
            .enumerate()
            .map(|(i, n)| VmEntry {
                vmid: VmId(100 + u32::try_from(i).unwrap()),
                node: n.clone(),
                config: pve_cpuguard::pve::vmconf::parse(
                    &format!(
                        "cpu: {vm_cpu}\n{}",
                        if hugepages { "hugepages: 1024\n" } else { "" }
                    ),
                    std::path::Path::new("x.conf"),
                )
                .map_err(|e| e.to_string()),
                running: None,
            })
            .collect();
        let a = audit::run(&vms, &CustomModels::default(), &f, &BTreeMap::new(), rules);
        for v in &a.vms {
            if let Some(Suggestion::Use { cpu, .. }) = &v.suggestion {
                let hp = a.requirement(v).hugepages_1g;
                prop_assert!(accepted_on_every_node(&f, &req(cpu, hp)).is_ok(), "audit: {cpu}");
            }
        }
        if let Some(e) = &a.everywhere {
            let t = e.split_whitespace().next().unwrap();
            prop_assert!(accepted_on_every_node(&f, &req(t, false)).is_ok());
        }

        // The baseline: its level and best named model.
        let caps: Vec<(String, Capability)> =
            f.known().map(|(n, c)| (n.to_string(), c.clone())).collect();
        let b = baseline::compute(&caps);
        match b.level {
            Some(l) if l == BELOW_FLOOR => {
                let refs: Vec<&Capability> = caps.iter().map(|(_, c)| c).collect();
                let none = level::highest_everywhere(&refs, |_| {}).is_none();
                prop_assert!(none, "below-kvm64 while some rung starts everywhere");
                prop_assert!(!b.below_floor.is_empty() || caps.len() > 1);
            }
            Some(l) => prop_assert!(accepted_on_every_node(&f, &req(l, false)).is_ok()),
            None => prop_assert!(caps.is_empty()),
        }
        if let Some(m) = &b.model {
            prop_assert!(accepted_on_every_node(&f, &req(m, false)).is_ok(), "model {m}");
        }
    }
}
