//! `pve-cpuguard status`: the cluster view from the cache alone, with ages.

use std::fmt::Write as _;

use serde_json::json;

use crate::app::cli::StatusArgs;
use crate::app::commands::node_list;
use crate::app::output::{self, Format};
use crate::cache::{self, truth, Cache};
use crate::conf::config::Config;
use crate::error::{ExitCode, Result};

/// Runs `status`.
///
/// # Errors
/// A cache file that exists but cannot be read; a corrupt one is reported
/// and treated as empty.
pub fn run(args: &StatusArgs, format: Format) -> Result<ExitCode> {
    let (conf, cache_path) = args.cache.resolve()?;
    let max_age = args.cache.max_age(&conf);
    let (mut cache, problem) = Cache::load_lenient(&cache_path)?;
    // Nothing scanned at all (no cache yet): "run scan" says it, not a
    // list of every node as never scanned.
    let nothing_scanned = cache.nodes.is_empty() && cache.unscanned.is_empty();
    let pve_dir = Config::pick(
        args.pve_dir.clone(),
        conf.pve_dir.as_ref(),
        "/etc/pve".into(),
    );
    node_list::add_unseen_members(&mut cache, &pve_dir);
    let now = cache::now();
    let code = exit_code(&cache, now, max_age);
    if format == Format::Json {
        output::print_json(&json!({
            "cache": cache_path,
            "cache_problem": problem.as_ref().map(ToString::to_string),
            "cluster": cache.cluster,
            "updated_at": cache.updated_at,
            "nodes": cache.nodes.values().map(|r| node_list::record_json(r, now, max_age)).collect::<Vec<_>>(),
            "nodes_without_data": cache.unscanned.values().map(|u| json!({
                "name": u.name, "address": u.address, "error": u.error, "attempted_at": u.attempted_at,
                "freshness": cache::Freshness::never_scanned(Some(&u.error)),
            })).collect::<Vec<_>>(),
            "cluster_cpu_type": node_list::cluster_type_claimed(&cache),
            "stale_nodes": node_list::stale_names(&cache, now, max_age),
            "cache_max_age_seconds": max_age,
            "drift": cache.drift,
            "admissions": cache.admissions.values().map(|a| serde_json::json!({
                "node": a.node,
                "since": a.since,
                "new": a.is_new(),
                "message": a.message,
            })).collect::<Vec<_>>(),
            "coverage": cache.coverage,
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
    if nothing_scanned {
        let _ = writeln!(
            s,
            "No cluster data in {}.\nnote: run `pve-cpuguard scan` (the pve-cpuguard-refresh.timer runs it hourly)",
            cache_path.display()
        );
        output::print_wrapped(&s)?;
        return Ok(code);
    }
    let _ = writeln!(s, "{}", node_list::HEADER);
    let truths: Vec<(&str, truth::Truth)> = cache
        .nodes
        .values()
        .map(|r| (r.name.as_str(), truth::of_record(r)))
        .collect();
    for (r, (_, t)) in cache.nodes.values().zip(&truths) {
        let _ = writeln!(
            s,
            "{} | {}",
            node_list::node_line(&r.name, &r.address, t.level_name()),
            node_list::age_text(r, now, max_age)
        );
    }
    let _ = writeln!(s);
    s.push_str(&node_list::cluster_block(
        node_list::cluster_type(&cache),
        cache.nodes.len(),
        &node_list::never_scanned(&cache),
    ));
    s.push_str(&node_list::truth_block(&truths));
    if !cache.unscanned.is_empty() {
        let _ = writeln!(s, "\nNodes without data (not included above):");
        for u in cache.unscanned.values() {
            let f = cache::Freshness::never_scanned(Some(&u.error));
            let address = if u.address.is_empty() {
                String::new()
            } else {
                format!(" ({})", u.address)
            };
            let _ = writeln!(
                s,
                "  {}{address}: {}",
                u.name,
                node_list::freshness_text(&f, None)
            );
        }
    }
    if !cache.drift.is_empty() {
        let _ = writeln!(s, "\nDrift found by the last scan:");
        for d in &cache.drift {
            let _ = writeln!(s, "  {}", d.message);
        }
    }
    if !cache.admissions.is_empty() {
        let _ = writeln!(
            s,
            "\nAdmission (new or weaker nodes, kept 7 days; `pve-cpuguard audit --finding \
             node-admission` lists the VMs they no longer take):"
        );
        for a in cache.admissions.values() {
            let _ = writeln!(
                s,
                "  {} ({} ago)",
                a.message,
                cache::human_age(now.saturating_sub(a.since))
            );
        }
    }
    if let Some(c) = &cache.coverage {
        let _ = writeln!(s, "\nCoverage at the last scan: {}", coverage_line(c));
    }
    if cache.updated_at > 0 {
        let _ = writeln!(
            s,
            "\nLast scan: {} ago ({})",
            cache::human_age(now.saturating_sub(cache.updated_at)),
            cache_path.display()
        );
    }
    output::print_wrapped(&s)?;
    Ok(code)
}

/// 0 all fresh, 1 some stale (failed refresh or older than
/// `cache_max_age`) or missing, 3 no data.
fn exit_code(cache: &Cache, now: u64, max_age: u64) -> ExitCode {
    if cache.nodes.is_empty() {
        ExitCode::Unknown
    } else if !cache.unscanned.is_empty() || cache.nodes.values().any(|r| r.is_stale(now, max_age))
    {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    }
}

/// The coverage line of [`crate::guard::coverage::Coverage::line`], from
/// the counts the last scan stored.
fn coverage_line(c: &cache::CoverageCount) -> String {
    crate::guard::coverage::Coverage {
        total: c.vms,
        guarded: c.guarded,
        unguarded: c
            .unguarded
            .iter()
            .map(|v| crate::pve::paths::VmId(*v))
            .collect(),
        missing_file: std::collections::BTreeMap::new(),
    }
    .line()
}
