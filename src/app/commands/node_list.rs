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
use crate::cache::{Cache, Freshness, NodeRecord};
use crate::cpu::capability::Capability;
use crate::guard::fleet::FleetNode;
use crate::guard::scope;

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

/// [`cluster_line`], and while some node was never scanned, `unknown`
/// (no baseline is claimed) and a note naming them, with the level of the
/// `scanned` others.
#[must_use]
pub fn cluster_block(level: Option<&str>, scanned: usize, missing: &[&str]) -> String {
    if missing.is_empty() {
        return format!("{}\n", cluster_line(level));
    }
    format!(
        "{}\nnote: {}\n",
        cluster_line(None),
        scope::withheld("no baseline", missing, level, scanned)
    )
}

/// The cluster CPU type JSON gives: `null` while some node was never
/// scanned (`nodes_without_data`).
#[must_use]
pub fn cluster_type_claimed(cache: &Cache) -> Option<&'static str> {
    cluster_type(cache).filter(|_| cache.unscanned.is_empty())
}

/// Adds to `cache.unscanned` every node of the cluster (a directory under
/// `nodes/` of the cluster file system, as `audit` and `check` count them)
/// that the cache has no word of: a node that joined after the last scan
/// is unknown, and must keep every command from claiming a cluster CPU
/// type, not be left out of it ([`crate::guard::fleet::Fleet::add_unseen_members`]
/// is the same rule for commands that judge through the fleet). An
/// unreadable `nodes/` adds nothing (the cache then speaks for itself, as
/// before).
pub fn add_unseen_members(cache: &mut Cache, pve_dir: &std::path::Path) {
    let Ok((names, _)) = crate::pve::paths::PveDir::new(pve_dir).scan_nodes() else {
        return;
    };
    for name in names {
        if cache.nodes.contains_key(&name) || cache.unscanned.contains_key(&name) {
            continue;
        }
        cache.unscanned.insert(
            name.clone(),
            crate::cache::Unscanned {
                name,
                address: String::new(),
                error: String::new(),
                attempted_at: 0,
            },
        );
    }
}

/// Nodes of the cache that were never scanned.
#[must_use]
pub fn never_scanned(cache: &Cache) -> Vec<&str> {
    cache.unscanned.keys().map(String::as_str).collect()
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

/// Which view decided each node: `pve1 kvm, pve2 cpuinfo` on a small
/// cluster; on a big one by view, the commonest last as "the others"
/// (`kvm on pve01; cpuinfo on the 63 others`).
fn views_text(nodes: &[(&str, Truth)]) -> String {
    if nodes.len() <= 8 {
        let views: Vec<String> = nodes
            .iter()
            .map(|(n, t)| format!("{n} {}", t.view()))
            .collect();
        return views.join(", ");
    }
    let mut by_view: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (n, t) in nodes {
        by_view.entry(t.view()).or_default().push(n);
    }
    let mut groups: Vec<(&str, Vec<&str>)> = by_view.into_iter().collect();
    groups.sort_by_key(|(v, names)| (names.len(), *v));
    let Some((common, rest)) = groups.split_last() else {
        return String::new();
    };
    let mut parts: Vec<String> = rest
        .iter()
        .map(|(v, names)| format!("{v} on {}", names.join(", ")))
        .collect();
    parts.push(if rest.is_empty() {
        format!("{} on all {} nodes", common.0, common.1.len())
    } else {
        format!("{} on the {} others", common.0, common.1.len())
    });
    parts.join("; ")
}

/// After the node lines (which stay in ProxCLMC's format byte for byte):
/// which view decided each node's answer, the nodes below the floor, and
/// the notes where /proc/cpuinfo disagrees with QEMU's answer.
#[must_use]
pub fn truth_block(nodes: &[(&str, Truth)]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let mut s = format!("\nView: {}\n", views_text(nodes));
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
    // Wrapped here, for scan and status alike (a big cluster's view list).
    crate::app::output::wrap(&s, crate::app::output::WIDTH)
}

/// A record's age and staleness as every command prints it
/// ([`Freshness::text`], the alarm words in colour): `scanned 5m 3s ago
/// via pmxcfs`, `scanned 2h 1m ago, STALE: older than cache_max_age (2h
/// 0m)`, `never scanned`.
#[must_use]
pub fn freshness_text(f: &Freshness, via: Option<&str>) -> String {
    f.text(via, paint::stale)
}

/// [`freshness_text`] of a node of the fleet; for the node read now, of
/// the record the other nodes decide by: `read now; its record: scanned
/// 3d 0h ago, STALE: …` (`mark`: [`paint::stale`] for text, plain for
/// HTML).
#[must_use]
pub fn fleet_freshness(n: &FleetNode, mark: impl Fn(&str) -> String) -> String {
    let text = n.freshness.text(n.source.as_deref(), mark);
    if n.read_now {
        format!("read now; its record: {text}")
    } else {
        text
    }
}

/// Why a node of the fleet has no usable data, in one line, plain.
#[must_use]
pub fn no_data_why(n: &FleetNode) -> String {
    match &n.freshness {
        Freshness::NeverScanned { .. } => n.freshness.why().unwrap_or_default(),
        _ => "its cached record cannot be read (run `pve-cpuguard scan`)".into(),
    }
}

/// What to do about the nodes' staleness: each distinct hint once, and
/// none that another one already says (`run scan` within `run scan and
/// check the timer`).
#[must_use]
pub fn hints<'a>(nodes: impl IntoIterator<Item = &'a FleetNode>) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = nodes
        .into_iter()
        .filter_map(|n| n.freshness.hint())
        .collect();
    all.sort_unstable();
    all.dedup();
    all.iter()
        .copied()
        .filter(|h| !all.iter().any(|o| o != h && o.contains(h)))
        .collect()
}

/// [`freshness_text`] of a cached record.
#[must_use]
pub fn age_text(rec: &NodeRecord, now: u64, max_age: u64) -> String {
    freshness_text(&rec.freshness(now, max_age), rec.source.as_deref())
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
    let f = rec.freshness(now, max_age);
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
        // `age_seconds` and `stale` repeat `freshness`, for readers of
        // earlier versions.
        "age_seconds": f.age(),
        "source": rec.source,
        "stale": f.is_stale(),
        "freshness": f,
        "last_error": rec.last_error,
        "last_attempt_at": rec.last_attempt_at,
    })
}
