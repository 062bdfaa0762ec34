//! `audit --output html`: the cluster at a glance on one self-contained
//! page an administrator can open from the node or attach to a ticket.
//!
//! No scripts, no network, no external assets: inline CSS only, so the
//! file renders the same in any browser and offline. Order: the summary,
//! then the VMs at risk, then the two matrices (nodes × CPU types, VMs ×
//! nodes), then the other findings. Colour is never the only signal: every
//! cell also carries a word or symbol.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::finding::{finding_text, WhyCache};
use super::{html_groups, summary};
use crate::app::commands::node_list;
use crate::cache;
use crate::guard::audit::{Audit, Cell, Finding, Suggestion, VmAudit};
use crate::guard::scope;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}\
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .4em}\
table{border-collapse:collapse;margin:.3em 0}\
th,td{border:1px solid #c8c8c8;padding:.2em .5em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.c{text-align:center;white-space:nowrap}\
.ok{background:#d7f5dd}.no{background:#f8d0d0}.unk{background:#fff0c2}\
.own{background:#dde6f7}.stale{background:#fff0c2}\
.badge{display:inline-block;padding:0 .4em;border-radius:.3em;font-size:.85em;font-weight:600}\
.badge.no{color:#7a0000}.badge.stale{color:#6b4e00}\
.summary{font-size:1.05em}.none{color:#555}code{font-size:.95em;white-space:nowrap}\
ul{margin:.2em 0 .2em 1.2em;padding:0}";

/// Audits of more VMs are grouped ([`super::html_groups`]) unless every
/// VM is asked for (`--all`, or a filter).
pub(super) const PER_VM_ROWS: usize = 200;

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One matrix cell: class, visible mark, tooltip.
fn cell_parts(c: Cell<'_>) -> (&'static str, &'static str, String) {
    match c {
        Cell::Yes => ("ok", "✓", "compatible".into()),
        Cell::No(v) => ("no", "✗", v.summary()),
        Cell::Unknown(Some(v)) => ("unk", "?", v.summary()),
        Cell::Unknown(None) => ("unk", "?", "no data for this node".into()),
    }
}

fn node_header(s: &mut String, a: &Audit<'_>) {
    for n in &a.fleet.nodes {
        if n.is_stale() {
            let _ = write!(
                s,
                "<th class=\"stale\" title=\"{}\">{} <span class=\"badge stale\">{}</span></th>",
                esc(&node_list::fleet_freshness(n, str::to_string)),
                esc(&n.name),
                badge(n)
            );
        } else {
            let _ = write!(s, "<th>{}</th>", esc(&n.name));
        }
    }
}

fn vm_name(v: &VmAudit) -> String {
    match &v.name {
        Some(n) => format!("{} ({})", v.vmid, esc(n)),
        None => v.vmid.to_string(),
    }
}

fn findings(s: &mut String, a: &Audit<'_>, v: &VmAudit, cache: &WhyCache, risk: bool) {
    let _ = write!(
        s,
        "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><ul>",
        vm_name(v),
        esc(&v.node),
        esc(&v.cpu)
    );
    if let Some(e) = &v.error {
        let _ = write!(s, "<li>error: {}</li>", esc(e));
    }
    for f in v.findings.iter().filter(|f| f.is_risk() == risk) {
        let _ = write!(
            s,
            "<li><b>{}</b>: {}</li>",
            f.code(),
            esc(&finding_text(a, v, f, cache))
        );
    }
    s.push_str("</ul></td><td>");
    match &v.suggestion {
        Some(Suggestion::Use { cpu, .. }) if risk => {
            let _ = write!(s, "<code>qm set {} --cpu {}</code>", v.vmid, esc(cpu));
        }
        Some(Suggestion::None(why)) if risk => {
            let _ = write!(s, "no CPU type starts on every node: {}", esc(why));
        }
        _ if !risk => {
            // The only finding that is not a risk: a missing guard.
            let _ = write!(
                s,
                "<code>pve-cpuguard attach {}</code> on {}",
                v.vmid,
                esc(&v.node)
            );
        }
        _ => s.push('—'),
    }
    s.push_str("</td></tr>\n");
}

/// A section of findings: its heading (`id`, title and the count), then a
/// table of `vms` under `header`, or "None.".
fn findings_table(
    s: &mut String,
    a: &Audit<'_>,
    vms: &[&VmAudit],
    cache: &WhyCache,
    risk: bool,
    (id, title): (&str, &str),
    header: &str,
) {
    let _ = writeln!(s, "<h2 id=\"{id}\">{title} ({})</h2>", vms.len());
    if vms.is_empty() {
        s.push_str("<p class=\"none\">None.</p>\n");
    } else {
        s.push_str(header);
        for v in vms {
            findings(s, a, v, cache, risk);
        }
        s.push_str("</table>\n");
    }
}

/// Renders the page: a row per VM when `all` or when there are at most
/// [`PER_VM_ROWS`], else the VMs grouped.
#[must_use]
pub fn render(a: &Audit<'_>, all: bool) -> String {
    let per_vm = all || a.vms.len() <= PER_VM_ROWS;
    let mut s = String::with_capacity(if per_vm {
        4096 + a.vms.len() * (200 + 60 * a.fleet.nodes.len())
    } else {
        1 << 20
    });
    let (_, at_risk) = a.counts();
    let flagged = a.vms.iter().filter(|v| !v.findings.is_empty()).count();
    let stale = a.fleet.nodes.iter().filter(|n| n.is_stale()).count();
    let vendors: Vec<&str> = a.fleet.vendors().into_iter().collect();
    let missing = a.fleet.without_data();
    let everywhere = if missing.is_empty() {
        a.everywhere.clone().unwrap_or_else(|| "none".into())
    } else {
        scope::withheld(
            "unknown",
            &missing,
            a.everywhere.as_deref(),
            a.fleet.nodes.len() - missing.len(),
        )
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>pve-cpuguard audit</title><style>{STYLE}</style></head><body>\n\
         <h1>pve-cpuguard audit</h1>\n<p class=\"summary\" id=\"summary\">{} nodes \
         ({stale} stale), {}, CPU vendors: {}. {} VMs, {flagged} flagged, \
         <b>{at_risk} at risk</b>. Works on every node: <code>{}</code>.</p>\n",
        a.fleet.nodes.len(),
        esc(&super::summary::baseline_text(a)),
        esc(&if vendors.is_empty() {
            "unknown".to_string()
        } else {
            vendors.join(", ")
        }),
        a.vms.len(),
        esc(&everywhere),
    );

    // The VMs at risk first: what needs action.
    let cache = WhyCache::default();
    let risky: Vec<&VmAudit> = a
        .vms
        .iter()
        .filter(|v| v.findings.iter().any(Finding::is_risk))
        .collect();
    let groups = if per_vm {
        Vec::new()
    } else {
        summary::groups(a)
    };
    let (risk_groups, other_groups): (Vec<_>, Vec<_>) = groups.iter().partition(|g| g.0.risk);
    if per_vm {
        findings_table(
            &mut s,
            a,
            &risky,
            &cache,
            true,
            ("at-risk", "VMs at risk"),
            "<table id=\"at-risk-table\"><tr><th>VM</th><th>Node</th><th>CPU</th>\
             <th>Why</th><th>Fix (next VM start)</th></tr>\n",
        );
    } else {
        html_groups::findings(
            &mut s,
            &risk_groups,
            risky.len(),
            ("at-risk", "VMs at risk"),
        );
    }

    // Nodes.
    s.push_str(
        "<h2 id=\"nodes\">Nodes</h2>\n<table><tr><th>Node</th><th>Level</th><th>Vendor</th>\
         <th>Model</th><th>View</th><th>Data age</th><th>State</th></tr>\n",
    );
    for n in &a.fleet.nodes {
        let st = n.is_stale();
        let _ = writeln!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if st { " class=\"stale\"" } else { "" },
            esc(&n.name),
            esc(n.level().unwrap_or("unknown")),
            esc(n.vendor().unwrap_or("?")),
            esc(n.capability().map_or("?", |c| c.model_name.as_str())),
            esc(n.view().unwrap_or("none")),
            n.freshness.age().map_or("—".into(), cache::human_age),
            if st {
                format!(
                    "<span class=\"badge stale\">{}</span> {}",
                    badge(n),
                    esc(&node_list::fleet_freshness(n, str::to_string))
                )
            } else {
                esc(&node_list::fleet_freshness(n, str::to_string))
            }
        );
    }
    s.push_str("</table>\n");

    // Nodes × CPU types: one column per distinct VM requirement, labelled
    // with its CPU type (a requirement differs only by CPU flags or huge
    // pages, which the label then notes).
    let mut columns: Vec<(usize, &VmAudit)> = Vec::new();
    for v in &a.vms {
        let key = a.row_key(v).0;
        if !columns.iter().any(|(k, _)| *k == key) {
            columns.push((key, v));
        }
    }
    columns.sort_by(|x, y| x.1.cpu.cmp(&y.1.cpu).then(x.0.cmp(&y.0)));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    s.push_str(
        "<h2 id=\"nodes-cpu\">Nodes × CPU types (can a VM with this CPU start here?)</h2>\n\
         <table id=\"nodes-cpu-table\"><tr><th>Node</th>",
    );
    for (_, v) in &columns {
        let k = seen.entry(v.cpu.as_str()).or_default();
        *k += 1;
        let label = if *k > 1 {
            format!("{} (variant {k}, e.g. VM {})", v.cpu, v.vmid)
        } else {
            v.cpu.clone()
        };
        let _ = write!(s, "<th><code>{}</code></th>", esc(&label));
    }
    s.push_str("</tr>\n");
    for (i, n) in a.fleet.nodes.iter().enumerate() {
        let st = n.is_stale();
        let _ = write!(
            s,
            "<tr><th{}>{}{}</th>",
            if st { " class=\"stale\"" } else { "" },
            esc(&n.name),
            if st {
                format!(" <span class=\"badge stale\">{}</span>", badge(n))
            } else {
                String::new()
            }
        );
        for (_, v) in &columns {
            let (class, mark, title) = cell_parts(a.start_cell(v, i));
            let _ = write!(
                s,
                "<td class=\"c {class}\" title=\"{}\">{mark}</td>",
                esc(&title)
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");

    if per_vm {
        vms_nodes(&mut s, a);
    } else {
        html_groups::vms_nodes(&mut s, a);
    }

    // Findings that are not a risk in themselves (a missing guard).
    let other: Vec<&VmAudit> = a
        .vms
        .iter()
        .filter(|v| v.findings.iter().any(|f| !f.is_risk()))
        .collect();
    if per_vm {
        findings_table(
            &mut s,
            a,
            &other,
            &cache,
            false,
            ("other", "Other findings"),
            "<table><tr><th>VM</th><th>Node</th><th>CPU</th><th>What</th><th>Fix</th></tr>\n",
        );
    } else {
        html_groups::findings(
            &mut s,
            &other_groups,
            other.len(),
            ("other", "Other findings"),
        );
    }
    for p in &a.fleet.problems {
        let _ = writeln!(s, "<p class=\"stale\">warning: cache: {}</p>", esc(p));
    }
    s.push_str("</body></html>\n");
    s
}

/// The VMs × nodes matrix: a row per VM, at-risk VMs first, then by VMID.
fn vms_nodes(s: &mut String, a: &Audit<'_>) {
    s.push_str(
        "<h2 id=\"vms-nodes\">VMs × nodes</h2>\n<p>● its node · ✓ live-migrates there · \
         start: only a cold start works · ✗ cannot start there · ? unknown</p>\n\
         <table id=\"vms-nodes-table\"><tr><th>VM</th><th>CPU</th>",
    );
    node_header(s, a);
    s.push_str("</tr>\n");
    let mut order: Vec<&VmAudit> = a.vms.iter().collect();
    order.sort_by_key(|v| (!v.findings.iter().any(Finding::is_risk), v.vmid));
    for v in order {
        let risk = v.findings.iter().any(Finding::is_risk);
        let _ = write!(
            s,
            "<tr class=\"vm\" data-vmid=\"{}\"><th>{}{}</th><td><code>{}</code></td>",
            v.vmid,
            vm_name(v),
            if risk {
                " <span class=\"badge no\">at risk</span>"
            } else {
                ""
            },
            esc(&v.cpu)
        );
        for i in 0..a.fleet.nodes.len() {
            if Some(i) == v.owner {
                s.push_str("<td class=\"c own\" title=\"the VM's node\">●</td>");
                continue;
            }
            let (class, mark, title) = match (a.live_cell(v, i), a.start_cell(v, i)) {
                (Cell::Yes, _) => ("ok", "✓", "live migration and start work".to_string()),
                (live, Cell::Yes) => (
                    "unk",
                    "start",
                    format!("starts, but no live migration: {}", cell_parts(live).2),
                ),
                (_, start) => cell_parts(start),
            };
            let _ = write!(
                s,
                "<td class=\"c {class}\" title=\"{}\">{mark}</td>",
                esc(&title)
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

/// The badge of a node whose data is not fresh: "never scanned" is no
/// "stale" record (the one wording of `cache::Freshness`).
fn badge(n: &crate::guard::fleet::FleetNode) -> &'static str {
    match n.freshness {
        cache::Freshness::NeverScanned { .. } => "never scanned",
        _ => "stale",
    }
}
