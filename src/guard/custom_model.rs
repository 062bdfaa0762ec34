//! The custom baseline model ([`crate::cpu::custom_baseline`]) judged by
//! the one verdict before anyone sees it: a VM whose only setting is
//! `cpu: custom-NAME`, with the model added to the cluster's custom models,
//! started on every node and live-migrated between every two, each through
//! the same launch, verdict and policy as `check` and `audit`
//! ([`VmSpecs::requirement`], [`verdict::judge`], [`decision::allows`]).

use crate::cpu::capability::Capability;
use crate::cpu::cpuconf::CpuConf;
use crate::cpu::custom_models::CustomModels;
use crate::cpu::launch::{VmSpec, VmSpecs};
use crate::cpu::verdict::{self, Question, Verdict};
use crate::guard::decision::{self, Rules};

/// What the verdict said of the model.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Every node and its start verdict (after the policy's rules).
    pub start: Vec<(String, Verdict)>,
    /// Live migrations the policy refuses: source, target, verdict.
    pub live_refused: Vec<(String, String, Verdict)>,
    /// Whether the policy allows every start and every live migration.
    pub accepted: bool,
    /// Warnings of the policy's rules (a vendor change allowed by
    /// `vendor_change = warn`).
    pub warnings: Vec<String>,
}

impl Judged {
    /// Nodes whose start verdict the policy refuses, with its summary.
    #[must_use]
    pub fn start_refused(&self, rules: Rules) -> Vec<(&str, String)> {
        self.start
            .iter()
            .filter(|(_, v)| !decision::allows(v, rules))
            .map(|(n, v)| (n.as_str(), v.summary()))
            .collect()
    }
}

/// Judges model `name` (`conf`) on `nodes`, among the cluster's other
/// custom models `custom` (a model of the same name there is replaced by
/// this one: it is this one that is judged).
#[must_use]
pub fn judge(
    name: &str,
    conf: &CpuConf,
    custom: &CustomModels,
    nodes: &[(String, Capability)],
    rules: Rules,
) -> Judged {
    let mut models = custom.clone();
    models.models.insert(name.to_string(), conf.clone());
    let spec = VmSpec {
        cpu: Some(format!("custom-{name}")),
        ..VmSpec::default()
    };
    let specs = VmSpecs {
        next_start: spec.clone(),
        running: spec,
        custom: &models,
        cold_start: None,
    };
    let mut warnings = Vec::new();
    let mut decide = |q: Question<'_>, target: &Capability| {
        let v = verdict::judge(&specs.requirement(&q, target), target, q);
        decision::apply_rules(v, rules, &mut warnings)
    };
    let start: Vec<(String, Verdict)> = nodes
        .iter()
        .map(|(n, cap)| (n.clone(), decide(Question::Start, cap)))
        .collect();
    let mut live_refused = Vec::new();
    for (source, scap) in nodes {
        for (target, tcap) in nodes {
            if source == target {
                continue;
            }
            let v = decide(Question::Live { source: Some(scap) }, tcap);
            if !decision::allows(&v, rules) {
                live_refused.push((source.clone(), target.clone(), v));
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    let accepted = live_refused.is_empty() && start.iter().all(|(_, v)| decision::allows(v, rules));
    Judged {
        start,
        live_refused,
        accepted,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::custom_baseline::tests::{over, sample, HASWELL, SANDY, SKYLAKE};
    use crate::cpu::verdict::Outcome;

    /// The model built over some nodes, judged on those and on others:
    /// every node it was built over accepts it, and so does another of
    /// the same CPU; a weaker node refuses it, naming flags it lacks, for
    /// a start and a live migration to it.
    #[test]
    fn accepted_where_built_refused_on_a_weaker_node() {
        let rules = Rules::default();
        let (sky, has, sandy) = (sample(SKYLAKE), sample(HASWELL), sample(SANDY));
        let m = over(&[&sky, &has]);
        let none = CustomModels::default();
        type Row<'a> = (&'a [(&'a str, &'a Capability)], bool, &'a [&'a str]);
        let rows: [Row<'_>; 3] = [
            (&[("a", &sky), ("b", &has)], true, &[]),
            (&[("a", &sky), ("b", &has), ("c", &has)], true, &[]),
            (&[("a", &sky), ("b", &has), ("w", &sandy)], false, &["w"]),
        ];
        for (row, accepted, refusing) in rows {
            let nodes: Vec<(String, Capability)> = row
                .iter()
                .map(|(n, c)| ((*n).to_string(), (*c).clone()))
                .collect();
            let j = judge(&m.name, &m.conf(), &none, &nodes, rules);
            assert_eq!(j.accepted, accepted, "{:?}", j.start);
            let got: Vec<&str> = j.start_refused(rules).iter().map(|(n, _)| *n).collect();
            assert_eq!(got, refusing);
            if let Some((_, v)) = j.start.iter().find(|(n, _)| n == "w") {
                assert_eq!(v.outcome, Outcome::Incompatible);
                assert!(v.missing_flags().contains(&"avx2".to_string()), "{v:?}");
                assert!(j.live_refused.iter().any(|(_, t, _)| t == "w"));
                assert!(!j.live_refused.iter().any(|(_, t, _)| t != "w"));
            }
        }
    }

    #[test]
    fn a_model_of_the_same_name_in_the_file_is_replaced_when_judged() {
        let has = sample(HASWELL);
        let m = over(&[&has]);
        let mut file = CustomModels::default();
        let mut avx512 = CpuConf::default();
        avx512.set("flags", "+avx512f").unwrap();
        file.models.insert("evc".into(), avx512);
        let j = judge(
            &m.name,
            &m.conf(),
            &file,
            &[("a".into(), has)],
            Rules::default(),
        );
        assert!(j.accepted, "{:?}", j.start);
    }
}
