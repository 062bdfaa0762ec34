//! Proxmox VE's own view of each node (pvestatd's expansion of QEMU's
//! `host` model under KVM, read by `scan` through `pvesh`) beside the
//! records: a second opinion on a node that has a record, and the only
//! data for a node that has none.
//!
//! The comparison is on the features pve-cpuguard knows, between the
//! record's deciding view ([`crate::cache::truth`]: QEMU's answer under
//! KVM when recorded, else /proc/cpuinfo through the flag rules) and
//! pvestatd's list. Features every KVM guest gets (the rules' `Provided`)
//! and those /proc/cpuinfo cannot tell are left out.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::cpu::cpudata;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::flags::{self, HostTest};
use crate::cpu::qemu_report::{Accel, QemuReport};

use super::truth;
use super::NodeRecord;

/// The source name of a record built from pvestatd's list.
pub const SOURCE: &str = "pvestatd";

/// Where a node's record and pvestatd disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// The node.
    pub node: String,
    /// Which view of the record was compared: `kvm` or `cpuinfo`.
    pub record_view: &'static str,
    /// Features the record has and pvestatd says the node lacks.
    pub record_only: Vec<String>,
    /// Features pvestatd lists and the record lacks.
    pub pvestatd_only: Vec<String>,
    /// The same, for people (one or two lines).
    pub message: String,
}

/// Compares `rec` with the features pvestatd lists for its node; `None`
/// when they agree.
#[must_use]
pub fn compare(rec: &NodeRecord, listed: &BTreeSet<String>) -> Option<Disagreement> {
    let t = truth::of_record(rec);
    let cap = &t.capability;
    let mut record_only = Vec::new();
    let mut pvestatd_only = Vec::new();
    for f in cpudata::index().feature_names() {
        if flags::host_test(&f) == HostTest::Provided || cap.cannot_tell(&f) {
            continue;
        }
        match (cap.has(&f), listed.contains(&f)) {
            (true, false) => record_only.push(f),
            (false, true) => pvestatd_only.push(f),
            _ => {}
        }
    }
    if record_only.is_empty() && pvestatd_only.is_empty() {
        return None;
    }
    let view = t.view();
    let mut lines = Vec::new();
    if !record_only.is_empty() {
        lines.push(format!(
            "pvestatd says {} lacks {} that its record has",
            rec.name,
            record_only.join(", ")
        ));
    }
    if !pvestatd_only.is_empty() {
        lines.push(format!(
            "pvestatd says {} has {} that its record lacks",
            rec.name,
            pvestatd_only.join(", ")
        ));
    }
    let why = if view == "cpuinfo" {
        "the record holds /proc/cpuinfo only, which KVM need not match; \
         `scan --probe kvm` asks QEMU"
    } else {
        "the record may be stale, or pvestatd's cache predates a microcode or BIOS change \
         (`systemctl restart pvestatd` renews it)"
    };
    Some(Disagreement {
        node: rec.name.clone(),
        record_view: view,
        record_only,
        pvestatd_only,
        message: format!("{}\nnote: {why}", lines.join("; ")),
    })
}

/// The vendor a flag list implies: `vmx` is Intel's virtualisation, `svm`
/// AMD's (pvestatd's list names no vendor); `unknown` otherwise, which
/// leaves the node unjudged rather than guessed.
fn vendor(features: &BTreeSet<String>) -> &'static str {
    if features.contains("vmx") {
        "GenuineIntel"
    } else if features.contains("svm") {
        "AuthenticAMD"
    } else {
        "unknown"
    }
}

/// A record for a node known only from pvestatd's list: QEMU's answer
/// under KVM as pvestatd got it, no /proc/cpuinfo, source
/// [`SOURCE`]; `scanned_at` is `now` (the list carries no date).
#[must_use]
pub fn record(name: &str, address: &str, features: &BTreeSet<String>, now: u64) -> NodeRecord {
    let info = CpuInfo {
        vendor: vendor(features).into(),
        model_name: "unknown (pvestatd's flag list)".into(),
        ..CpuInfo::default()
    };
    let report = QemuReport {
        qemu_version: SOURCE.into(),
        accel: Accel::Kvm,
        host_features: features.clone(),
        ..QemuReport::default()
    };
    let mut rec = NodeRecord::new(name, address, &info, None, now).with_kvm(Some(Ok(report)));
    rec.source = Some(SOURCE.into());
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> BTreeSet<String> {
        words.iter().map(|w| (*w).to_string()).collect()
    }

    #[test]
    fn a_record_from_the_list_decides_by_it_and_says_where_it_came_from() {
        let rec = record("pve3", "10.0.0.3", &set(&["vmx", "avx2", "sse4.2"]), 7);
        assert_eq!(rec.source.as_deref(), Some("pvestatd"));
        assert_eq!(rec.cpu.vendor, "GenuineIntel");
        let t = truth::of_record(&rec);
        assert_eq!(t.view(), "kvm");
        assert!(t.capability.has("avx2"));
        assert!(!t.capability.has("avx512f"));
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(record("x", "a", &set(&["avx"]), 7).cpu.vendor, "unknown");
        assert_eq!(
            record("x", "a", &set(&["svm"]), 7).cpu.vendor,
            "AuthenticAMD"
        );
    }

    #[test]
    fn a_feature_missing_on_either_side_is_a_disagreement() {
        let rec = record("pve2", "a", &set(&["vmx", "avx2", "avx512f"]), 7);
        assert_eq!(compare(&rec, &set(&["vmx", "avx2", "avx512f"])), None);
        let d = compare(&rec, &set(&["vmx", "avx2", "aes"])).unwrap();
        assert_eq!(d.record_only, ["avx512f"]);
        assert_eq!(d.pvestatd_only, ["aes"]);
        assert!(
            d.message
                .starts_with("pvestatd says pve2 lacks avx512f that its record has"),
            "{}",
            d.message
        );
        assert!(d.message.contains("\nnote: the record may be stale"));
    }
}
