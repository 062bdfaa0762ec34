//! The node list shared by `scan`, `status` and `baseline`: node lines
//! in ProxCLMC's format, the cluster CPU type, and JSON for records.
//!
//! ProxCLMC 1.2.0 prints (observed): `Detected nodes:`, one
//! `name | address | level` line per node, an empty line, then
//! `Cluster CPU type: <level>`. Those lines are kept byte for byte so that
//! scripts written for it keep working.

use serde_json::{json, Value};

use crate::app::paint;
use crate::cache::truth::{self, Truth};
use crate::cache::{self, Cache, NodeRecord};
use crate::cpu::capability::Capability;

/// The header line.
pub const HEADER: &str = "Detected nodes:";

/// `name | address | level`.
#[must_use]
pub fn node_line(name: &str, address: &str, level: &str) -> String {
    format!("{name} | {address} | {level}")
}

/// `Cluster CPU type: <level>`.
#[must_use]
pub fn cluster_line(level: Option<&str>) -> String {
    format!("Cluster CPU type: {}", level.unwrap_or("unknown"))
}

/// A record's level, recomputed from its facts with this version's rules
/// through the one definition every command uses ([`truth::of_record`];
/// the stored `level` is what the scanning version computed).
#[must_use]
pub fn level_of(rec: &NodeRecord) -> &'static str {
    truth::of_record(rec).level_name()
}

/// The cluster level over every record in the cache (fresh or stale):
/// the highest rung the verdict accepts on every node.
#[must_use]
pub fn cluster_type(cache: &Cache) -> Option<&'static str> {
    let caps: Vec<Capability> = cache.nodes.values().map(NodeRecord::capability).collect();
    truth::cluster_level(&caps.iter().collect::<Vec<_>>())
}

/// Names of stale records ([`NodeRecord::is_stale`]).
#[must_use]
pub fn stale_names(cache: &Cache, now: u64, max_age: u64) -> Vec<String> {
    cache
        .nodes
        .values()
        .filter(|r| r.is_stale(now, max_age))
        .map(|r| r.name.clone())
        .collect()
}

/// After the node lines (which stay in ProxCLMC's format byte for byte):
/// which view decided each node's answer, the nodes below the floor, and
/// the notes where /proc/cpuinfo disagrees with QEMU's answer.
#[must_use]
pub fn truth_block(nodes: &[(&str, Truth)]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let views: Vec<String> = nodes
        .iter()
        .map(|(n, t)| format!("{n} {}", t.view()))
        .collect();
    let mut s = format!("\nView: {}\n", views.join(", "));
    for (n, t) in nodes {
        if !t.level.floor_met {
            s.push_str(&format!(
                "{} {n}: not even kvm64 (the lowest Proxmox VE type) starts here\n",
                paint::warning("warning:")
            ));
        }
        for note in &t.notes {
            s.push_str(&format!("note: {n}: {note}\n"));
        }
    }
    s
}

/// `scanned 5m 3s ago` or `scanned 2h ago, STALE: error (last attempt 1m ago)`.
#[must_use]
pub fn age_text(rec: &NodeRecord, now: u64, max_age: u64) -> String {
    let mut s = if rec.scanned_at > now.saturating_add(cache::CLOCK_SKEW) {
        // Not "0s ago": a date from the future means a skewed clock.
        format!(
            "DATED {} IN THE FUTURE (clock skew?)",
            cache::human_age(rec.scanned_at - now)
        )
    } else {
        format!("scanned {} ago", cache::human_age(rec.age(now)))
    };
    if let Some(src) = &rec.source {
        s.push_str(&format!(" via {src}"));
    }
    if rec.age(now) > max_age {
        s.push_str(&format!(
            ", {}: older than cache_max_age ({})",
            paint::stale("STALE"),
            cache::human_age(max_age)
        ));
    }
    if let Some(e) = &rec.last_error {
        s.push_str(&format!(
            ", {}: last refresh failed: {}",
            paint::stale("STALE"),
            first_line(e)
        ));
        if let Some(at) = rec.last_attempt_at {
            s.push_str(&format!(
                " ({} ago)",
                cache::human_age(now.saturating_sub(at))
            ));
        }
    }
    s
}

/// The first line of a possibly multi-line message.
#[must_use]
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A record as JSON (stable field names).
#[must_use]
pub fn record_json(rec: &NodeRecord, now: u64, max_age: u64) -> Value {
    let t = truth::of_record(rec);
    json!({
        "name": rec.name,
        "address": rec.address,
        "level": t.level_name(),
        "below_floor": !t.level.floor_met,
        "view": t.view(),
        "notes": t.notes,
        "probe_error": rec.kvm_error,
        "vendor": rec.cpu.vendor,
        "model_name": rec.cpu.model_name,
        "family": rec.cpu.family,
        "model": rec.cpu.model,
        "stepping": rec.cpu.stepping,
        "microcode": rec.cpu.microcode,
        "phys_bits": rec.cpu.phys_bits,
        "kernel": rec.kernel,
        "scanned_at": rec.scanned_at,
        "age_seconds": rec.age(now),
        "source": rec.source,
        "stale": rec.is_stale(now, max_age),
        "last_error": rec.last_error,
        "last_attempt_at": rec.last_attempt_at,
    })
}
