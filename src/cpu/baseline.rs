//! The cluster baseline: what every node can give a VM (pure).
//!
//! - the strict level: the lowest node level on Proxmox VE's ladder, each
//!   judged with the same verdict a VM of that type gets;
//! - the best named QEMU model every node supports, considered only when
//!   all nodes share one CPU vendor (a named model fixes the guest's vendor,
//!   and a live migration across vendors is unsafe anyway);
//! - the near misses: the next rung (and a better named model) that all
//!   nodes but one or a few support, and what those lack, e.g.
//!   `x86-64-v4 on all nodes but pve3: avx512vl`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cpu::capability::Capability;
use crate::cpu::custom_models::CustomModels;
use crate::cpu::level::{self, LADDER};
use crate::cpu::models::{self, BUILTINS};
use crate::cpu::requirement::{self, GuestCpu};
use crate::cpu::verdict::{self, Outcome, Question};

/// A CPU type that all nodes but some support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    /// The CPU type.
    pub cpu_type: String,
    /// Nodes that lack it, each with the missing flags.
    pub failing: Vec<(String, Vec<String>)>,
}

impl NearMiss {
    /// `x86-64-v4 on all nodes but pve3: avx512vl`.
    #[must_use]
    pub fn message(&self) -> String {
        let parts: Vec<String> = self
            .failing
            .iter()
            .map(|(n, m)| {
                if m.is_empty() {
                    n.clone()
                } else {
                    format!("{n}: {}", m.join(", "))
                }
            })
            .collect();
        format!("{} on all nodes but {}", self.cpu_type, parts.join("; "))
    }

    /// JSON form.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "cpu_type": self.cpu_type,
            "failing": self.failing.iter().map(|(n, m)| json!({"node": n, "missing": m})).collect::<Vec<_>>(),
            "message": self.message(),
        })
    }
}

/// The baseline of a set of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The highest rung the verdict accepts on every node
    /// ([`level::BELOW_FLOOR`] when none; `None` without nodes).
    pub level: Option<&'static str>,
    /// Nodes whose CPU does not even meet `kvm64` fully.
    pub below_floor: Vec<String>,
    /// Nodes by vendor.
    pub vendors: BTreeMap<String, Vec<String>>,
    /// Best named QEMU model supported everywhere, same vendor only.
    pub model: Option<String>,
    /// The next rung up that some node lacks.
    pub level_near_miss: Option<NearMiss>,
    /// A better named model that some (not all) nodes lack.
    pub model_near_miss: Option<NearMiss>,
}

/// Computes the baseline of `nodes` (name, capability).
#[must_use]
pub fn compute(nodes: &[(String, Capability)]) -> Baseline {
    let levels: Vec<(String, level::Level)> = nodes
        .iter()
        .map(|(n, c)| (n.clone(), level::of(c)))
        .collect();
    // The cluster level is what the verdict accepts on every node, so it is
    // never a type some node refuses (see `level::highest_everywhere`).
    let caps: Vec<&Capability> = nodes.iter().map(|(_, c)| c).collect();
    let strict = (!caps.is_empty())
        .then(|| level::highest_everywhere(&caps, |_| {}).unwrap_or(level::BELOW_FLOOR));
    let below_floor = levels
        .iter()
        .filter(|(_, l)| !l.floor_met)
        .map(|(n, _)| n.clone())
        .collect();
    let mut vendors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, c) in nodes {
        vendors.entry(c.vendor.clone()).or_default().push(n.clone());
    }

    let level_near_miss = strict.and_then(|s| {
        let next = match LADDER.iter().position(|r| *r == s) {
            Some(i) => LADDER.get(i + 1)?,
            None => &LADDER[0],
        };
        near_miss(next, nodes)
    });

    let (model, model_near_miss) = if vendors.len() == 1 {
        best_models(
            nodes,
            vendors.keys().next().map(String::as_str).unwrap_or(""),
        )
    } else {
        (None, None)
    };

    Baseline {
        level: strict,
        below_floor,
        vendors,
        model,
        level_near_miss,
        model_near_miss,
    }
}

/// The failing nodes for `cpu_type`, when some but not all fail.
fn near_miss(cpu_type: &str, nodes: &[(String, Capability)]) -> Option<NearMiss> {
    let failing = failing_nodes(cpu_type, nodes);
    (!failing.is_empty() && failing.len() < nodes.len()).then(|| NearMiss {
        cpu_type: cpu_type.to_string(),
        failing,
    })
}

fn failing_nodes(cpu_type: &str, nodes: &[(String, Capability)]) -> Vec<(String, Vec<String>)> {
    let req = requirement::from_cpu_value(cpu_type, &CustomModels::default());
    nodes
        .iter()
        .filter_map(|(n, c)| {
            let v = verdict::judge(&req, c, Question::Start);
            (v.outcome != Outcome::Compatible).then(|| (n.clone(), v.missing_flags()))
        })
        .collect()
}

/// Named QEMU models whose forced vendor is `vendor`, with their feature
/// counts (the Proxmox built-ins and `host`/`max` excluded).
fn named_models(vendor: &str) -> Vec<(String, usize)> {
    let none = CustomModels::default();
    models::proxmox_cpu_types()
        .into_iter()
        .filter(|n| n != "kvm64" && !BUILTINS.iter().any(|b| b.name == n))
        .filter_map(|n| {
            let req = requirement::from_cpu_value(&n, &none);
            match &req.base {
                GuestCpu::Model {
                    vendor: Some(v), ..
                } if v == vendor && req.unknown.is_none() => Some((n, req.features.len())),
                _ => None,
            }
        })
        .collect()
}

/// The best model all nodes support, and a better one all but some do.
fn best_models(nodes: &[(String, Capability)], vendor: &str) -> (Option<String>, Option<NearMiss>) {
    let mut best: Option<(String, usize)> = None;
    let mut near: Option<(NearMiss, usize)> = None;
    for (name, size) in named_models(vendor) {
        let failing = failing_nodes(&name, nodes);
        if failing.is_empty() {
            if best.as_ref().is_none_or(|(_, s)| size > *s) {
                best = Some((name, size));
            }
        } else if failing.len() < nodes.len()
            && near.as_ref().is_none_or(|(m, s)| {
                failing.len() < m.failing.len() || (failing.len() == m.failing.len() && size > *s)
            })
        {
            near = Some((
                NearMiss {
                    cpu_type: name,
                    failing,
                },
                size,
            ));
        }
    }
    let best_size = best.as_ref().map_or(0, |(_, s)| *s);
    (
        best.map(|(n, _)| n),
        near.filter(|(_, s)| *s > best_size).map(|(m, _)| m),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::cpuinfo::CpuInfo;

    /// A KVM host (its module's flag by vendor) with these flags.
    fn cap(vendor: &str, flags: &str) -> Capability {
        let module = if vendor == "AuthenticAMD" {
            "svm"
        } else {
            "vmx"
        };
        Capability::from_cpuinfo(&CpuInfo {
            vendor: vendor.into(),
            model_name: "test".into(),
            flags: flags
                .split_whitespace()
                .chain([module])
                .map(String::from)
                .collect(),
            processors: 1,
            uniform: true,
            logical_cpus: None,
            ..CpuInfo::default()
        })
    }

    const V2AES: &str = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm lahf_lm pni ssse3 cx16 sse4_1 sse4_2 popcnt aes";

    #[test]
    fn near_miss_message_format() {
        let m = NearMiss {
            cpu_type: "x86-64-v4".into(),
            failing: vec![("pve3".into(), vec!["avx512vl".into()])],
        };
        assert_eq!(m.message(), "x86-64-v4 on all nodes but pve3: avx512vl");
    }

    #[test]
    fn strict_level_is_the_lowest_and_near_miss_names_the_laggard() {
        let v3 = format!("{V2AES} avx avx2 bmi1 bmi2 f16c fma abm movbe xsave");
        let nodes = vec![
            ("pve1".to_string(), cap("GenuineIntel", &v3)),
            ("pve2".to_string(), cap("GenuineIntel", V2AES)),
        ];
        let b = compute(&nodes);
        let l1 = level::of(&nodes[0].1).name;
        let l2 = level::of(&nodes[1].1).name;
        assert_eq!(b.level, level::lowest([l1, l2]));
        if l1 != l2 {
            let nm = b.level_near_miss.expect("a near miss when levels differ");
            assert_eq!(nm.failing.len(), 1);
            assert_eq!(nm.failing[0].0, "pve2");
        }
    }

    #[test]
    fn mixed_vendors_get_no_named_model() {
        let nodes = vec![
            ("a".to_string(), cap("GenuineIntel", V2AES)),
            ("b".to_string(), cap("AuthenticAMD", V2AES)),
        ];
        let b = compute(&nodes);
        assert_eq!(b.model, None);
        assert_eq!(b.vendors.len(), 2);
    }

    #[test]
    fn empty_cluster() {
        let b = compute(&[]);
        assert_eq!(b.level, None);
        assert_eq!(b.level_near_miss, None);
    }
}
