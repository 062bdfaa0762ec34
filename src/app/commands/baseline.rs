//! `pve-cpuguard baseline`: what every node can give a VM, from the cache.

use std::fmt::Write as _;

use serde_json::json;

use crate::app::cli::CacheArgs;
use crate::app::commands::view;
use crate::app::output::{self, Format};
use crate::cache::{self, Cache};
use crate::cpu::baseline;
use crate::error::{ExitCode, Result};

/// Runs `baseline`.
///
/// # Errors
/// A cache file that exists but cannot be read.
pub fn run(args: &CacheArgs, format: Format) -> Result<ExitCode> {
    let (_, cache_path) = args.resolve()?;
    let (cache, problem) = Cache::load_lenient(&cache_path)?;
    let now = cache::now();
    let nodes: Vec<(String, crate::cpu::capability::Capability)> = cache
        .nodes
        .values()
        .map(|r| (r.name.clone(), r.capability()))
        .collect();
    let b = baseline::compute(&nodes);
    let stale = view::stale_names(&cache);
    let missing: Vec<&String> = cache.unscanned.keys().collect();
    let code = if nodes.is_empty() {
        ExitCode::Unknown
    } else if stale.is_empty() && missing.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Refused
    };
    if format == Format::Json {
        output::print_json(&json!({
            "cache": cache_path,
            "cache_problem": problem.as_ref().map(ToString::to_string),
            "nodes": cache.nodes.keys().collect::<Vec<_>>(),
            "level": b.level,
            "below_floor": b.below_floor,
            "vendors": b.vendors,
            "model": b.model,
            "level_near_miss": b.level_near_miss.as_ref().map(baseline::NearMiss::to_json),
            "model_near_miss": b.model_near_miss.as_ref().map(baseline::NearMiss::to_json),
            "stale_nodes": stale,
            "nodes_without_data": missing,
            "oldest_data_age_seconds": cache.nodes.values().map(|r| r.age(now)).max(),
        }))?;
        return Ok(code);
    }
    if let Some(p) = &problem {
        eprintln!("pve-cpuguard: warning: {p}");
    }
    let mut s = String::new();
    if nodes.is_empty() {
        let _ = writeln!(
            s,
            "No cluster data in {}.\nnote: run `pve-cpuguard scan` first",
            cache_path.display()
        );
        output::print(&s)?;
        return Ok(code);
    }
    let _ = writeln!(s, "{}", view::cluster_line(b.level));
    match (&b.model, b.vendors.len()) {
        (Some(m), _) => {
            let vendor = b.vendors.keys().next().map_or("", String::as_str);
            let _ = writeln!(s, "Best named model: {m} (all nodes are {vendor})");
        }
        (None, 1) => {
            let _ = writeln!(
                s,
                "Best named model: none of the named QEMU models fits every node"
            );
        }
        (None, _) => {
            let groups: Vec<String> = b
                .vendors
                .iter()
                .map(|(v, n)| format!("{v}: {}", n.join(", ")))
                .collect();
            let _ = writeln!(
                s,
                "Best named model: none: the nodes have different CPU vendors ({}); a named model fixes one vendor, \
                 and a live migration between vendors is unsafe",
                groups.join("; ")
            );
        }
    }
    for nm in [&b.level_near_miss, &b.model_near_miss]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(s, "Near miss: {}", nm.message());
    }
    if !b.below_floor.is_empty() {
        let _ = writeln!(
            s,
            "warning: {} lack flags of even kvm64 (the lowest Proxmox VE type)",
            b.below_floor.join(", ")
        );
    }
    if !stale.is_empty() {
        let _ = writeln!(
            s,
            "note: uses last-known data for {} (their last refresh failed)",
            stale.join(", ")
        );
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(
            s,
            "note: no data for {}; the baseline may be lower",
            names.join(", ")
        );
    }
    output::print(&s)?;
    Ok(code)
}
