//! What one node's CPU gives a `host`/`max` guest that another's lacks
//! ([`crate::cpu::verdict::host_lacking`]), for every pair of an audit's
//! node classes (whose features `audit_memo::Memo::new` has worked out,
//! so the two answer alike).
//!
//! The audit asks it for nearly every pair (64 different CPUs: 4 096
//! pairs), and as two sorted sets of about 300 names merged per pair it
//! was a twentieth of a 10 000-VM audit. Here each class's features are
//! bits over every name any class gives, so a pair is a few word-wise
//! differences; the names come out in the same (sorted) order, and the
//! answer is the same (the tests compare them on real CPUs).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cpu::capability::Capability;

/// The classes' features as bit sets over one sorted list of names.
pub(crate) struct LackingBits<'c> {
    /// Every feature some class proves it gives, sorted.
    names: Vec<&'c str>,
    /// Class → the names it gives.
    present: Vec<Vec<u64>>,
    /// Class → the names it can neither confirm nor deny.
    unverifiable: Vec<Vec<u64>>,
}

impl<'c> LackingBits<'c> {
    /// The bits of `classes`.
    pub(crate) fn new(classes: &[&'c Capability]) -> Self {
        let names: Vec<&'c str> = classes
            .iter()
            .flat_map(|c| c.features().present.iter().map(String::as_str))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let words = names.len().div_ceil(64);
        let bits = |set: &BTreeSet<String>| {
            let mut b = vec![0u64; words];
            for (i, name) in names.iter().enumerate() {
                if set.contains(*name) {
                    b[i / 64] |= 1 << (i % 64);
                }
            }
            b
        };
        let present = classes
            .iter()
            .map(|c| bits(&c.features().present))
            .collect();
        let unverifiable = classes
            .iter()
            .map(|c| bits(&c.features().unverifiable))
            .collect();
        LackingBits {
            names,
            present,
            unverifiable,
        }
    }

    /// [`crate::cpu::verdict::host_lacking`] of classes `source` and
    /// `target`.
    pub(crate) fn lacking(&self, source: usize, target: usize) -> Arc<[String]> {
        let (s, t, u) = (
            &self.present[source],
            &self.present[target],
            &self.unverifiable[target],
        );
        let mut out = Vec::new();
        for (w, ((s, t), u)) in s.iter().zip(t).zip(u).enumerate() {
            let mut lacking = s & !t & !u;
            while lacking != 0 {
                let bit = lacking.trailing_zeros() as usize;
                out.push(self.names[w * 64 + bit].to_string());
                lacking &= lacking - 1;
            }
        }
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_hosts::kvm_host;

    /// Every real x86 /proc/cpuinfo of `tests/data/cpuinfo`, and two hosts
    /// of levels.
    fn hosts() -> Vec<Capability> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");
        let mut hosts: Vec<Capability> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            // The ARM sample has no x86 view: not a node.
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let info = crate::cpu::cpuinfo::parse(&text, &p).ok()?;
                Some(Capability::from_cpuinfo(&info))
            })
            .collect();
        hosts.push(kvm_host("GenuineIntel", "x86-64-v4"));
        hosts.push(kvm_host("AuthenticAMD", "x86-64-v2"));
        hosts
    }

    #[test]
    fn every_pair_lacks_what_the_verdict_says() {
        let hosts = hosts();
        let classes: Vec<&Capability> = hosts.iter().collect();
        assert!(classes.len() > 20, "too few hosts to compare");
        let bits = LackingBits::new(&classes);
        let mut differing = 0;
        for (s, source) in classes.iter().enumerate() {
            for (t, target) in classes.iter().enumerate() {
                let want = crate::cpu::verdict::host_lacking(source, target);
                assert_eq!(bits.lacking(s, t), want, "{s} -> {t}");
                differing += usize::from(!want.is_empty());
            }
        }
        assert!(
            differing > 0,
            "no pair differs: the comparison proves nothing"
        );
    }
}
