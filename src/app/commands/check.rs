//! `pve-cpuguard check <vmid> [--target NODE…]`: the verdict against every
//! node, without migrating. The JSON is shaped like Proxmox's own
//! `GET /nodes/{node}/qemu/{vmid}/migrate` answer (`allowed_nodes`,
//! `not_allowed_nodes`), plus `unknown_nodes`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::app::cli::{CheckArgs, CheckMode};
use crate::app::commands::{node_list, vm_context};
use crate::app::output::{self, Format};
use crate::app::paint;
use crate::conf::settings::Settings;
use crate::cpu::verdict::Outcome;
use crate::error::{Error, ExitCode, Result};
use crate::guard::decision::{self as guard, Movement};
use crate::guard::fleet::FleetNode;
use crate::guard::scope;
use crate::pve::paths::VmId;

/// Runs `check`.
///
/// # Errors
/// Bad arguments or an unknown VM.
pub fn run(args: &CheckArgs, format: Format) -> Result<ExitCode> {
    let vmid: VmId = args.vmid.parse().map_err(Error::Usage)?;
    let settings = Settings::resolve(&args.common)?;
    let mut ctx = vm_context::load(&settings, vmid)?;
    let remote = args.mode == CheckMode::Remote || args.source_record.is_some();
    let live = match args.mode {
        _ if remote => false,
        CheckMode::Live => true,
        CheckMode::Start | CheckMode::Remote => false,
        CheckMode::Auto => ctx.owner == settings.node && vm_context::running(&args.run_dir, vmid),
    };
    let record = match &args.source_record {
        Some(path) => {
            let max_age = settings.cache_max_age.as_secs();
            let p = crate::cache::published::load_file(path, crate::cache::now(), max_age)
                .map_err(|e| {
                    Error::Usage(format!(
                        "--source-record: {}\nnote: give the file nodes/NODE/pve-cpuguard.json \
                         of the source cluster's node, as `pve-cpuguard publish` wrote it",
                        e.describe(path)
                    ))
                })?;
            Some((p.node.clone(), p.record.into_capability()))
        }
        None => None,
    };
    if live {
        ctx.read_running(&settings, &args.run_dir);
    }
    let targets: Vec<String> = if args.targets.is_empty() {
        // A VM arriving from another cluster may land on any node.
        ctx.fleet
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| remote || *n != ctx.owner)
            .collect()
    } else {
        args.targets.clone()
    };

    let mut allowed = Vec::new();
    let mut refused: BTreeMap<String, Value> = BTreeMap::new();
    let mut unknown: BTreeMap<String, Value> = BTreeMap::new();
    let specs = ctx.specs();
    let everywhere = guard::everywhere_for(&ctx.fleet, Some(&specs));
    let missing = ctx.fleet.without_data();
    let max_age = settings.cache_max_age.as_secs();
    let mut decisions: BTreeMap<String, Value> = BTreeMap::new();
    for t in &targets {
        let Some(cap) = ctx.fleet.capability(t) else {
            let why = ctx.fleet.get(t).map_or_else(
                || "not a node of this cluster, and no cached record of it".into(),
                node_list::no_data_why,
            );
            unknown.insert(t.clone(), json!({"reasons": [why]}));
            continue;
        };
        let movement = if remote {
            Movement::Remote {
                record: record.as_ref().map(|(n, c)| (n.as_str(), c)),
            }
        } else if live {
            Movement::Live { source: &ctx.owner }
        } else {
            Movement::Start
        };
        let d = guard::decide(&ctx.label, &specs, t, cap, movement, &ctx.fleet, ctx.rules);
        let view = ctx.fleet.get(t).and_then(|n| n.view());
        let node = ctx.fleet.get(t);
        decisions.insert(
            t.clone(),
            json!({
                "allow": d.allow,
                "verdict": d.verdict.outcome.as_str(),
                "view": view,
                "level": ctx.fleet.get(t).and_then(|n| n.level()),
                "notes": d.verdict.notes,
                "warnings": d.warnings,
                // `stale` repeats `freshness`, for readers of earlier
                // versions.
                "stale": node.is_some_and(FleetNode::is_stale),
                "freshness": node.map(|n| &n.freshness),
            }),
        );
        // The policy decides unknown answers here exactly as in the hook
        // (`guard::decide`): under `policy strict` they are refusals.
        match d.verdict.outcome {
            Outcome::Compatible => allowed.push(t.clone()),
            Outcome::Unknown if !d.allow => {
                let mut why = d.verdict.unknown.clone();
                why.push("policy strict: what cannot be proven safe is refused".into());
                refused.insert(t.clone(), json!({"reasons": why, "codes": ["unknown"]}));
            }
            Outcome::Incompatible => {
                refused.insert(
                    t.clone(),
                    json!({
                        "reasons": d.verdict.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "codes": d.verdict.reasons.iter().map(|r| r.code()).collect::<Vec<_>>(),
                        "missing_flags": d.verdict.missing_flags(),
                    }),
                );
            }
            Outcome::Unknown => {
                unknown.insert(t.clone(), json!({"reasons": d.verdict.unknown}));
            }
        }
    }

    if format == Format::Json {
        output::print_json(&json!({
            "vmid": vmid.0,
            "cpu": ctx.cpu,
            "pending_cpu_change": ctx.pending_changes_cpu,
            "running_cpu": ctx.running.qemu_cpu,
            "cold_start_node": ctx.cold_start,
            "node": ctx.owner,
            "mode": if remote { "remote" } else if live { "live" } else { "start" },
            "source_record_node": record.as_ref().map(|(n, _)| n),
            "allowed_nodes": allowed,
            "not_allowed_nodes": refused,
            "unknown_nodes": unknown,
            // A CPU type (or null), never a sentence; whether the nodes
            // mix vendors is `vendors`. None is claimed while some node
            // has no data (`unknown_nodes` names them).
            "works_everywhere": guard::recommend(&ctx.fleet, Some(&specs))
                .filter(|_| missing.is_empty()),
            "vendors": ctx.fleet.vendors(),
            "decisions": decisions,
            "cache_max_age_seconds": max_age,
            "below_floor": ctx.fleet.below_floor(),
        }))?;
    } else {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "VM {vmid} (CPU '{}') on {} — {} rules",
            ctx.cpu,
            ctx.owner,
            match (&record, remote, live) {
                (Some((n, _)), _, _) => format!("remote-migration (source {n}, from its record)"),
                (None, true, _) => "remote-migration (source node unknown)".into(),
                (None, false, true) => "live-migration".into(),
                _ => "start".into(),
            }
        );
        if let Some(note) = &ctx.running_note {
            let _ = writeln!(s, "  {note}");
        }
        // The view, and the record's age and staleness in the words of
        // `status` when it is not fresh.
        let view = |t: &str| {
            let n = ctx.fleet.get(t);
            let v = n.and_then(|n| n.view()).unwrap_or("none");
            match n {
                Some(n) if n.freshness.is_stale() && n.capability().is_some() => {
                    format!("{v}; {}", node_list::fleet_freshness(n, paint::stale))
                }
                _ => v.to_string(),
            }
        };
        for t in &allowed {
            let _ = writeln!(s, "  {t}: allowed (view: {})", view(t));
        }
        for (t, v) in &refused {
            let _ = writeln!(
                s,
                "  {t}: {} (view: {}): {}",
                paint::refused("refused"),
                view(t),
                reasons(v)
            );
        }
        for (t, v) in &unknown {
            let _ = writeln!(s, "  {t}: unknown (view: {}): {}", view(t), reasons(v));
        }
        match &everywhere {
            Some(e) if missing.is_empty() => {
                let _ = writeln!(s, "CPU type that works on every node: {e}");
            }
            Some(_) => {
                let _ = writeln!(
                    s,
                    "CPU type that works on every node: {}",
                    scope::withheld(
                        "unknown",
                        &missing,
                        guard::recommend(&ctx.fleet, Some(&specs)),
                        ctx.fleet.nodes.len() - missing.len()
                    )
                );
            }
            None => {
                let below = ctx.fleet.below_floor();
                if !below.is_empty() {
                    let _ = writeln!(
                        s,
                        "No CPU type works on every node: not even kvm64 starts on {}",
                        below.join(", ")
                    );
                }
            }
        }
        // A `cpu:` value of any length is quoted in part only.
        output::print(&output::wrap(
            &crate::error::shorten_quotes(&s),
            output::WIDTH,
        ))?;
    }
    Ok(if !refused.is_empty() {
        ExitCode::Refused
    } else if !unknown.is_empty() {
        ExitCode::Unknown
    } else {
        ExitCode::Ok
    })
}

/// The `reasons` strings of a node's JSON entry, for the text output.
fn reasons(entry: &Value) -> String {
    let list: Vec<&str> = entry["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    list.join("; ")
}
