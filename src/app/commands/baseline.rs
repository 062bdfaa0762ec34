//! `pve-cpuguard baseline`: what every node can give a VM, from the cache;
//! with `--custom-model NAME`, also the custom CPU model of the cluster
//! ([`super::baseline_custom`]).

use std::fmt::Write as _;

use serde_json::json;

use crate::app::cli::BaselineArgs;
use crate::app::commands::{baseline_custom, node_list};
use crate::app::output::{self, Format};
use crate::cache::{self, truth, Cache};
use crate::conf::config::Config;
use crate::cpu::baseline;
use crate::error::{ExitCode, Result};
use crate::guard::scope;

/// Runs `baseline`.
///
/// # Errors
/// A cache file that exists but cannot be read; for a custom model, see
/// [`baseline_custom::run`].
pub fn run(args: &BaselineArgs, format: Format) -> Result<ExitCode> {
    let (conf, cache_path) = args.cache.resolve()?;
    let max_age = args.cache.max_age(&conf);
    let (mut cache, problem) = Cache::load_lenient(&cache_path)?;
    let pve_dir = Config::pick(
        args.pve_dir.clone(),
        conf.pve_dir.as_ref(),
        "/etc/pve".into(),
    );
    node_list::add_unseen_members(&mut cache, &pve_dir);
    let now = cache::now();
    let nodes: Vec<(String, crate::cpu::capability::Capability)> = cache
        .nodes
        .values()
        .map(|r| (r.name.clone(), r.capability()))
        .collect();
    let b = baseline::compute(&nodes);
    let stale = node_list::stale_names(&cache, now, max_age);
    let missing: Vec<&String> = cache.unscanned.keys().collect();
    let code = if nodes.is_empty() {
        ExitCode::Unknown
    } else if stale.is_empty() && missing.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Refused
    };
    let custom = match &args.custom_model {
        Some(_) => {
            let missing: Vec<String> = missing.iter().map(|s| (*s).clone()).collect();
            Some(baseline_custom::run(
                args,
                &baseline_custom::Cluster {
                    nodes: &nodes,
                    baseline: &b,
                    stale: &stale,
                    missing: &missing,
                },
            )?)
        }
        None => None,
    };
    // The cache's own verdict first (no data, stale data), then the model's.
    let code = match (&custom, code) {
        (Some(part), ExitCode::Ok) => part.code,
        _ => code,
    };
    if format == Format::Json {
        output::print_json(&json!({
            "cache": cache_path,
            "cache_problem": problem.as_ref().map(ToString::to_string),
            "nodes": cache.nodes.keys().collect::<Vec<_>>(),
            "node_levels": cache.nodes.values().map(|r| {
                let t = truth::of_record(r);
                json!({"name": r.name, "level": t.level_name(), "view": t.view(), "notes": t.notes,
                    "freshness": r.freshness(now, max_age)})
            }).collect::<Vec<_>>(),
            "cache_max_age_seconds": max_age,
            // No baseline is claimed while some node was never scanned
            // (`nodes_without_data`).
            "level": b.level.filter(|_| missing.is_empty()),
            "below_floor": b.below_floor,
            "vendors": b.vendors,
            "model": b.model.as_ref().filter(|_| missing.is_empty()),
            "level_near_miss": b.level_near_miss.as_ref().filter(|_| missing.is_empty()).map(baseline::NearMiss::to_json),
            "model_near_miss": b.model_near_miss.as_ref().filter(|_| missing.is_empty()).map(baseline::NearMiss::to_json),
            "stale_nodes": stale,
            "nodes_without_data": missing,
            "oldest_data_age_seconds": cache.nodes.values()
                .filter_map(|r| r.freshness(now, max_age).age()).max(),
            "custom_model": custom.as_ref().map(|p| &p.json),
        }))?;
        return Ok(code);
    }
    if let Some(p) = &problem {
        eprintln!(
            "{}",
            crate::app::output::for_stderr(&format!("pve-cpuguard: warning: {p}"))
        );
    }
    let mut s = String::new();
    if nodes.is_empty() {
        let _ = writeln!(
            s,
            "No cluster data in {}.\nnote: run `pve-cpuguard scan` first",
            cache_path.display()
        );
        output::print_wrapped(&s)?;
        if let Some(part) = &custom {
            output::print(&part.text)?;
        }
        return Ok(code);
    }
    s.push_str(&node_list::cluster_block(
        b.level,
        cache.nodes.len(),
        &node_list::never_scanned(&cache),
    ));
    for r in cache.nodes.values() {
        let t = truth::of_record(r);
        let f = r.freshness(now, max_age);
        let age = if f.is_stale() {
            format!("; {}", node_list::age_text(r, now, max_age))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {}: {} (view: {}{age})",
            r.name,
            t.level_name(),
            t.view()
        );
        for n in &t.notes {
            let _ = writeln!(s, "    note: {n}");
        }
    }
    for u in cache.unscanned.values() {
        let f = cache::Freshness::never_scanned(Some(&u.error));
        let _ = writeln!(s, "  {}: {}", u.name, node_list::freshness_text(&f, None));
    }
    let unscanned = node_list::never_scanned(&cache);
    match (&b.model, b.vendors.len()) {
        (Some(m), _) if !unscanned.is_empty() => {
            let _ = writeln!(
                s,
                "Best named model: {}",
                scope::withheld("unknown", &unscanned, Some(m), nodes.len())
            );
        }
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
    // A near miss says "on all nodes but …": not while some node is
    // unknown (its CPU might miss more).
    for nm in [&b.level_near_miss, &b.model_near_miss]
        .into_iter()
        .flatten()
        .filter(|_| unscanned.is_empty())
    {
        let _ = writeln!(s, "Near miss: {}", nm.message());
    }
    if !b.below_floor.is_empty() {
        let _ = writeln!(
            s,
            "warning: {} cannot start even kvm64 (the lowest Proxmox VE type); no CPU type starts on every node",
            b.below_floor.join(", ")
        );
    }
    if !stale.is_empty() {
        let _ = writeln!(
            s,
            "warning: uses last-known data for {} (stale, as said above); run `pve-cpuguard scan`",
            stale.join(", "),
        );
    }
    output::print_wrapped(&s)?;
    // Wrapped already where it is prose; the section and the command keep
    // their lines.
    if let Some(part) = &custom {
        output::print(&part.text)?;
    }
    Ok(code)
}
