//! `pve-cpuguard plan`: what a change would do, before it is made — a node
//! added or retired, VMs given another `cpu:` — from the cache and
//! /etc/pve, changing nothing (see [`crate::guard::plan`]: the audit runs
//! on the inputs as they are and as they would be). `--need`: the least a
//! new node must offer.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::app::cli::PlanArgs;
use crate::app::commands::node_list;
use crate::app::output::{self, Format};
use crate::cache::{self, published, truth, NodeRecord};
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit_input;
use crate::guard::fleet::FleetNode;
use crate::guard::plan::{self, Changes, Need, Plan, VmPlan};
use crate::guard::scope;
use crate::pve::paths::VmId;
use crate::pve::{cluster, ha_rules as rules_cfg};

/// A node read from `FILE` of `--add-node NAME=FILE`: a /proc/cpuinfo, or
/// a record `publish --output-file` wrote (JSON, its QEMU answer with it).
///
/// # Errors
/// A malformed argument, an unreadable file, an invalid record or cpuinfo.
pub fn read_node(spec: &str, now: u64, max_age: u64) -> Result<FleetNode> {
    let Some((name, file)) = spec.split_once('=') else {
        return Err(Error::Usage(format!(
            "--add-node '{}': expected NAME=FILE (FILE: a /proc/cpuinfo, or a record of \
             `pve-cpuguard publish --output-file FILE`)",
            spec.escape_debug()
        )));
    };
    if !cluster::valid_name(name) {
        return Err(Error::Usage(format!(
            "--add-node: invalid node name '{}' (valid: letters, digits, '-', '.', '_')",
            name.escape_debug()
        )));
    }
    let path = Path::new(file);
    let bytes = crate::fsutil::read(path)?;
    let rec = if bytes.trim_ascii_start().starts_with(b"{") {
        // The record names the machine it was written on; it joins as NAME.
        let written_as = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("node")?.as_str().map(str::to_string))
            .unwrap_or_default();
        let p = published::decode(&bytes, &written_as, now)
            .map_err(|r| Error::parse(path, 1, r.describe(path)))?;
        let mut rec = p.record;
        rec.name = name.to_string();
        rec
    } else {
        let info = crate::cpu::cpuinfo::parse_bytes(&bytes, path)?;
        NodeRecord::new(name, "plan", &info, None, now)
    };
    let freshness = rec.freshness(now, max_age);
    let mut node = FleetNode::from_truth(name, truth::of_record(&rec), freshness);
    node.source = Some(path.display().to_string());
    Ok(node)
}

/// `--set-cpu VMID=VALUE`.
fn parse_set_cpu(spec: &str) -> Result<(VmId, String)> {
    let bad = || {
        Error::Usage(format!(
            "--set-cpu '{}': expected VMID=VALUE (VALUE: any `cpu:` value, e.g. x86-64-v3)",
            spec.escape_debug()
        ))
    };
    let (id, value) = spec.split_once('=').ok_or_else(bad)?;
    let vmid: VmId = id.parse().map_err(|_| bad())?;
    Ok((vmid, value.to_string()))
}

/// Checks a `cpu:` value as qemu-server would, and that a custom model it
/// names exists.
fn check_cpu(
    value: &str,
    option: &str,
    custom: &crate::cpu::custom_models::CustomModels,
) -> Result<()> {
    let conf = crate::cpu::cpuconf::parse(value).map_err(|e| {
        Error::Usage(format!(
            "{option}: cannot parse cpu '{}': {e}",
            crate::error::quoted(value)
        ))
    })?;
    let t = conf.cputype();
    if t.starts_with("custom-") && custom.get(t).is_none() {
        return Err(Error::Usage(format!(
            "{option}: {t} is not in cpu-models.conf (add it first, e.g. with \
             `pve-cpuguard baseline --custom-model NAME --apply`)"
        )));
    }
    // What the verdict cannot judge, no plan can: it would be unknown on
    // every node (`why-not` says the same).
    if let Some(why) = crate::cpu::requirement::from_cpu_value(value, custom).unknown {
        return Err(Error::Usage(format!(
            "{option}: cpu '{}' cannot be judged: {why}\nnote: give a `cpu:` value \
             `pve-cpuguard why-not VALUE` can judge (a QEMU model, a Proxmox type such as \
             x86-64-v3, or a custom model of cpu-models.conf)",
            crate::error::quoted(value)
        )));
    }
    Ok(())
}

/// Runs `plan`.
///
/// # Errors
/// Usage errors (malformed options, unknown VMs or nodes), and what
/// [`audit_input::gather`] returns.
pub fn run(args: &PlanArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let now = cache::now();
    let mut changes = Changes::default();
    for spec in &args.add_node {
        let n = read_node(spec, now, settings.cache_max_age.as_secs())?;
        if changes.add.iter().any(|a| a.name == n.name) {
            return Err(Error::Usage(format!(
                "--add-node {}: given twice\nnote: add each new node once, under a name of \
                 its own (--add-node pve4=FILE --add-node pve5=FILE2)",
                n.name
            )));
        }
        changes.add.push(n);
    }
    changes.remove.clone_from(&args.remove_node);
    for spec in &args.set_cpu {
        let (vmid, value) = parse_set_cpu(spec)?;
        changes.set_cpu.insert(vmid, value);
    }
    changes.set_cpu_all.clone_from(&args.set_cpu_all);
    let g = audit_input::gather(&settings, || {
        crate::reach::local::cpuinfo(&settings.cpuinfo).ok()
    })?;
    crate::app::output::warn_cache(&g.fleet);
    if g.fleet.known().next().is_none() {
        // Like audit, status and baseline: nothing to judge a change by.
        eprintln!(
            "{}",
            output::for_stderr(&format!(
                "pve-cpuguard: error: no node data in {}, so no change can be judged\n\
                 note: run `pve-cpuguard scan` first",
                settings.cache.display()
            ))
        );
        return Ok(ExitCode::Unknown);
    }
    for n in &changes.add {
        if g.fleet.get(&n.name).is_some() {
            return Err(Error::Usage(format!(
                "--add-node {}: the cluster has a node of that name (nodes: {})\n\
                 note: to model a CPU change of {0}, use --remove-node {0} --add-node {0}b=FILE",
                n.name,
                names(&g.fleet)
            )));
        }
    }
    for n in &changes.remove {
        if g.fleet.get(n).is_none() {
            return Err(Error::Usage(format!(
                "--remove-node {n}: no such node (nodes: {})",
                names(&g.fleet)
            )));
        }
    }
    for (vmid, value) in &changes.set_cpu {
        if !g.vms.iter().any(|v| v.vmid == *vmid) {
            return Err(Error::Usage(format!(
                "--set-cpu {vmid}: no such VM in {}",
                settings.pve.root().display()
            )));
        }
        check_cpu(value, &format!("--set-cpu {vmid}"), &g.custom)?;
    }
    if let Some(v) = &changes.set_cpu_all {
        check_cpu(v, "--set-cpu-all", &g.custom)?;
    }
    let existing = rules_cfg::read(settings.pve.root())?;
    let p = plan::plan(&g, &changes, &existing);
    let need = args.need.then(|| {
        let after = plan::changed(&g, &changes);
        plan::need(&after.audit())
    });
    match format {
        Format::Json => output::print_json(&to_json(&p, &changes, need.as_ref()))?,
        Format::Html => output::print_raw(&html(&render(&p, need.as_ref())))?,
        Format::Text => output::print_wrapped(&render(&p, need.as_ref()))?,
    }
    Ok(if !p.worse().is_empty() {
        ExitCode::Refused
    } else if !p.unjudged().is_empty() {
        ExitCode::Unknown
    } else {
        ExitCode::Ok
    })
}

fn names(f: &crate::guard::fleet::Fleet) -> String {
    f.nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn ids(v: &[VmId]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn arrow(a: Option<&str>, b: Option<&str>) -> String {
    let (a, b) = (a.unwrap_or("none"), b.unwrap_or("none"));
    if a == b {
        format!("{a} (unchanged)")
    } else {
        format!("{a} → {b}")
    }
}

/// The text report (every line within 100 columns).
#[must_use]
pub fn render(p: &Plan, need: Option<&Need>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Plan (nothing is changed): nodes {} → {}",
        list(&p.before.nodes),
        list(&p.after.nodes)
    );
    let _ = writeln!(
        s,
        "Cluster CPU type: {}",
        scoped(p, p.before.level, p.after.level)
    );
    let _ = writeln!(
        s,
        "Best named model: {}",
        scoped(p, p.before.model.as_deref(), p.after.model.as_deref())
    );
    stale_block(&mut s, p);
    let changed: Vec<&VmPlan> = p.vms.iter().filter(|v| v.changes()).collect();
    if changed.is_empty() {
        let _ = writeln!(s, "\nNo VM gains or loses a node.");
    } else {
        let _ = writeln!(s, "\nVMs whose nodes change:");
    }
    for v in changed {
        let name = v
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let cpu = if v.cpu_before == v.cpu_after {
            format!("cpu {}", v.cpu_before)
        } else {
            format!("cpu {} → {}", v.cpu_before, v.cpu_after)
        };
        let _ = writeln!(s, "  VM {}{name} on {}, {cpu}", v.vmid, v.node);
        if v.node_removed {
            let _ = writeln!(
                s,
                "    its node is removed: move it first (live to: {})",
                list(&v.after.live.iter().cloned().collect::<Vec<_>>())
            );
        }
        for (what, gained, lost, unknown, was) in [
            (
                "start",
                v.start_gained(),
                v.start_lost(),
                &v.after.start_unknown,
                &v.before.start_unknown,
            ),
            (
                "live-migrate",
                v.live_gained(),
                v.live_lost(),
                &v.after.live_unknown,
                &v.before.live_unknown,
            ),
        ] {
            if !gained.is_empty() {
                let _ = writeln!(s, "    {what}: gains {}", gained.join(", "));
            }
            if !lost.is_empty() {
                let _ = writeln!(s, "    {what}: loses {}", lost.join(", "));
            }
            // Unknown stays unknown: neither gained nor lost.
            let known_now: Vec<String> = was
                .keys()
                .filter(|n| !unknown.contains_key(*n) && p.after.nodes.contains(n))
                .cloned()
                .collect();
            if !known_now.is_empty() {
                let (ok, no): (Vec<String>, Vec<String>) = known_now.into_iter().partition(|n| {
                    if what == "start" {
                        v.after.start.contains(n)
                    } else {
                        v.after.live.contains(n)
                    }
                });
                for (verdict, ns) in [("allowed", ok), ("refused", no)] {
                    if !ns.is_empty() {
                        let _ = writeln!(
                            s,
                            "    {what}: {verdict} on {} (unknown before)",
                            ns.join(", ")
                        );
                    }
                }
            }
            if !unknown.is_empty() {
                let _ = writeln!(
                    s,
                    "{}",
                    output::wrap(
                        &format!(
                            "    {what}: unknown on {}",
                            unknown.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        98
                    )
                );
            }
        }
    }
    let (ns0, ns1) = p.no_start();
    let (nl0, nl1) = p.no_live();
    for (what, b, a) in [
        ("No node to start on", ns0, ns1),
        ("No node to live-migrate to", nl0, nl1),
    ] {
        if !b.is_empty() || !a.is_empty() {
            let _ = writeln!(
                s,
                "\n{what}: now {}; after {}",
                if b.is_empty() {
                    "none".into()
                } else {
                    format!("VM {}", ids(&b))
                },
                if a.is_empty() {
                    "none".into()
                } else {
                    format!("VM {}", ids(&a))
                },
            );
        }
    }
    if p.ha_before.vms != p.ha_after.vms {
        let _ = writeln!(
            s,
            "\nHA node-affinity (nodes each HA-managed VM is kept on):"
        );
        for (vmid, after) in &p.ha_after.vms {
            let before = p.ha_before.vms.get(vmid);
            if before != Some(after) {
                let b: Vec<String> = before.map(rule_nodes).unwrap_or_default();
                let a: Vec<String> = rule_nodes(after);
                let _ = writeln!(s, "  VM {vmid}: {} → {}", list(&b), list(&a));
            }
        }
    }
    // Only the calls the plan changes: those pending now are `ha-rules`'.
    let (more, unneeded) = p.ha_calls_changed();
    if more.is_empty() && unneeded.is_empty() {
        if !p.ha_calls_now.is_empty() {
            let _ = writeln!(
                s,
                "\nHA rules: unchanged by this plan (`pve-cpuguard ha-rules` shows {} call{} \
                 pending now)",
                p.ha_calls_now.len(),
                if p.ha_calls_now.len() == 1 { "" } else { "s" }
            );
        }
    } else {
        for (head, calls) in [
            ("`pve-cpuguard ha-rules --apply` would then run:", &more),
            ("No longer needed after it (pending now):", &unneeded),
        ] {
            if calls.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{head}");
            for c in calls {
                s.push_str(&crate::app::commands::shell_text::shell_lines_indented(
                    "  ",
                    Path::new("ha-manager"),
                    c,
                ));
            }
        }
    }
    if !p.qm_set.is_empty() {
        let _ = writeln!(
            s,
            "\nTo make the cpu: changes (each takes effect at the VM's next cold start — a stop and a\n\
             start, not a reboot inside the guest nor a live migration):"
        );
        for q in &p.qm_set {
            let line = crate::app::commands::ha_rules::command_line(Path::new("qm"), &q.argv);
            let _ = writeln!(s, "  {line}    # on {}", q.node);
        }
        let movable = p.made_movable();
        let missing: Vec<&str> = p.after.unscanned.iter().map(String::as_str).collect();
        let _ = writeln!(
            s,
            "Movable to every node after it: {}",
            if !missing.is_empty() {
                // No VM is movable to a node nothing is known of.
                format!("unknown while {}", scope::never_scanned(&missing))
            } else if movable.is_empty() {
                "no VM that is not already".into()
            } else {
                format!("VM {}", ids(&movable))
            }
        );
    }
    let worse = p.worse();
    let unjudged = p.unjudged();
    if !unjudged.is_empty() {
        let _ = writeln!(s, "\nCannot be judged after the change:");
        for (vmid, why) in &unjudged {
            let _ = writeln!(s, "{}", output::wrap(&format!("  VM {vmid}: {why}"), 98));
        }
    }
    if !worse.is_empty() {
        let _ = writeln!(s, "\nWorse after the change:");
        for (vmid, why) in &worse {
            let _ = writeln!(s, "{}", output::wrap(&format!("  VM {vmid}: {why}"), 98));
        }
    } else if unjudged.is_empty() {
        let _ = writeln!(s, "\nNothing gets worse.");
    } else {
        let _ = writeln!(
            s,
            "\nNothing known gets worse; what cannot be judged is listed above."
        );
    }
    if let Some(n) = need {
        render_need(&mut s, n);
    }
    s
}

/// A cluster-wide answer before → after; a side with never-scanned nodes
/// is `unknown` (its nodes named), the answer over the scanned nodes told
/// only when both sides miss the same nodes.
fn scoped(p: &Plan, before: Option<&str>, after: Option<&str>) -> String {
    let (b, a) = (&p.before.unscanned, &p.after.unscanned);
    let missing = |v: &[String]| -> String {
        scope::never_scanned(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    if b.is_empty() && a.is_empty() {
        return arrow(before, after);
    }
    if b == a {
        return format!(
            "unknown while {}; {} on the nodes scanned",
            missing(b),
            arrow(before, after)
        );
    }
    let side = |v: &[String], x: Option<&str>| {
        if v.is_empty() {
            x.unwrap_or("none").to_string()
        } else {
            "unknown".into()
        }
    };
    let mut s = format!("{} → {}", side(b, before), side(a, after));
    for (when, v) in [("now", b), ("after", a)] {
        if !v.is_empty() {
            let _ = write!(s, " ({when} unknown while {})", missing(v));
        }
    }
    s
}

/// Nodes whose data is stale (not never scanned: that is said where it
/// matters), each with its age and staleness in the words of `status`.
fn stale_block(s: &mut String, p: &Plan) {
    let stale: Vec<&crate::guard::fleet::FleetNode> = p
        .nodes
        .iter()
        .filter(|n| n.capability().is_some() && !n.read_now && n.freshness.is_stale())
        .collect();
    if stale.is_empty() {
        return;
    }
    let _ = writeln!(s, "Stale data:");
    for n in &stale {
        let added = if p.added.contains(&n.name) {
            " (added)"
        } else {
            ""
        };
        let line = format!(
            "  {}{added}: {}",
            n.name,
            node_list::fleet_freshness(n, crate::app::paint::stale)
        );
        let _ = writeln!(s, "{}", output::wrap(&line, 98));
    }
    for h in node_list::hints(stale.iter().copied()) {
        let _ = writeln!(s, "  note: {h}");
    }
}

fn render_need(s: &mut String, n: &Need) {
    let _ = writeln!(
        s,
        "\nA new node must offer, for every VM to start and live-migrate there:"
    );
    let _ = writeln!(
        s,
        "  Proxmox CPU type: {}",
        match n.level {
            Some(l) => l.to_string(),
            None => format!(
                "x86-64-v4 and more: {}",
                n.beyond_level
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    );
    if let Some(v) = &n.vendor {
        let _ = writeln!(
            s,
            "  CPU vendor: {v} (as every node; a live migration across vendors is refused)"
        );
    }
    if n.vcpus > 0 {
        let _ = writeln!(
            s,
            "  at least {} logical CPU{}",
            n.vcpus,
            if n.vcpus == 1 { "" } else { "s" }
        );
    }
    let models: Vec<String> = n.models.iter().take(8).cloned().collect();
    let _ = writeln!(
        s,
        "{}",
        output::wrap(
            &format!(
                "  Named QEMU models that cover it: {}{}",
                list(&models),
                if n.models.len() > 8 {
                    format!(" (and {} more)", n.models.len() - 8)
                } else {
                    String::new()
                }
            ),
            98
        )
    );
    let feats: Vec<String> = n.features.iter().cloned().collect();
    let _ = writeln!(
        s,
        "{}",
        output::wrap(&format!("  CPU features: {}", list(&feats)), 98)
    );
    if !n.host_vms.is_empty() {
        let _ = writeln!(
            s,
            "  VM {} (cpu: host/max): need the very CPU of their node; left out",
            ids(&n.host_vms)
        );
    }
    if !n.unjudged.is_empty() {
        let _ = writeln!(s, "  VM {}: cannot be judged; left out", ids(&n.unjudged));
    }
}

/// `--output html`: the text report on one self-contained page.
fn html(text: &str) -> String {
    let mut body = String::new();
    for c in text.chars() {
        match c {
            '&' => body.push_str("&amp;"),
            '<' => body.push_str("&lt;"),
            '>' => body.push_str("&gt;"),
            c => body.push(c),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pve-cpuguard plan</title></head>\n<body><h1>pve-cpuguard plan</h1>\n\
         <pre>{body}</pre>\n</body></html>\n"
    )
}

fn set(s: &std::collections::BTreeSet<String>) -> Value {
    json!(s.iter().collect::<Vec<_>>())
}

fn keys(m: &std::collections::BTreeMap<String, String>) -> Value {
    json!(m.keys().collect::<Vec<_>>())
}

fn to_json(p: &Plan, c: &Changes, need: Option<&Need>) -> Value {
    let view =
        // No claim for the cluster while some node has no data.
        |v: &plan::ClusterView| {
            let complete = v.unscanned.is_empty();
            json!({"nodes": v.nodes, "level": v.level.filter(|_| complete),
                "model": v.model.as_ref().filter(|_| complete)})
        };
    let vms: Vec<Value> = p
        .vms
        .iter()
        .map(|v| {
            json!({
                "vmid": v.vmid.0,
                "name": v.name,
                "node": v.node,
                "node_removed": v.node_removed,
                "cpu": {"before": v.cpu_before, "after": v.cpu_after},
                "start": {"before": set(&v.before.start), "after": set(&v.after.start),
                          "gained": v.start_gained(), "lost": v.start_lost(),
                          "unknown": {"before": keys(&v.before.start_unknown),
                                      "after": keys(&v.after.start_unknown)}},
                "live": {"before": set(&v.before.live), "after": set(&v.after.live),
                         "gained": v.live_gained(), "lost": v.live_lost(),
                         "unknown": {"before": keys(&v.before.live_unknown),
                                     "after": keys(&v.after.live_unknown)}},
                "movable": {"before": v.movable_before, "after": v.movable_after},
            })
        })
        .collect();
    let ha = |a: &crate::guard::ha_rules::Allowed| -> Value {
        a.vms
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(rule_nodes(v))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let (ns0, ns1) = p.no_start();
    let (nl0, nl1) = p.no_live();
    let u = |v: &[VmId]| v.iter().map(|i| i.0).collect::<Vec<_>>();
    json!({
        "changes": {
            "add_nodes": c.add.iter().map(|n| &n.name).collect::<Vec<_>>(),
            "remove_nodes": c.remove,
            "set_cpu": c.set_cpu.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "set_cpu_all": c.set_cpu_all,
        },
        "cluster": {"before": view(&p.before), "after": view(&p.after)},
        "nodes": p.nodes.iter().map(|n| json!({
            "name": n.name,
            "added": p.added.contains(&n.name),
            "removed": p.removed.contains(&n.name),
            "source": n.source,
            "read_now": n.read_now,
            "freshness": n.freshness,
        })).collect::<Vec<_>>(),
        "added": p.added,
        "removed": p.removed,
        "vms": vms,
        "no_start_node": {"before": u(&ns0), "after": u(&ns1)},
        "no_live_target": {"before": u(&nl0), "after": u(&nl1)},
        "ha": {"before": ha(&p.ha_before), "after": ha(&p.ha_after), "calls": p.ha_calls,
               "calls_now": p.ha_calls_now},
        "qm_set": p.qm_set.iter().map(|q| json!({
            "vmid": q.vmid.0, "node": q.node, "argv": q.argv, "takes_effect": "next cold start",
        })).collect::<Vec<_>>(),
        "made_movable": u(&p.made_movable()),
        "worse": p.worse().iter().map(|(v, why)| json!({"vmid": v.0, "why": why})).collect::<Vec<_>>(),
        "unjudged": p.unjudged().iter().map(|(v, why)| json!({"vmid": v.0, "why": why})).collect::<Vec<_>>(),
        "need": need.map(|n| json!({
            "features": n.features,
            "level": n.level,
            "beyond_level": n.beyond_level,
            "models": n.models,
            "vendor": n.vendor,
            "vcpus": n.vcpus,
            "host_vms": u(&n.host_vms),
            "unjudged": u(&n.unjudged),
        })),
    })
}

/// A placement as its HA rule writes it: `node` or `node:priority`.
fn rule_nodes(p: &crate::guard::ha_rules::Placement) -> Vec<String> {
    p.nodes()
        .into_iter()
        .map(|(n, prio)| match prio {
            Some(p) => format!("{n}:{p}"),
            None => n,
        })
        .collect()
}
