//! `audit` as text: the summary, the nodes, one row per VM (where it
//! could live-migrate to and start), then each flagged VM explained.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::finding::{finding_text, WhyCache};
use crate::app::commands::node_list;
use crate::app::paint;
use crate::guard::audit::{Audit, Cell, Suggestion, VmAudit};
use crate::guard::coverage::{self, Coverage};
use crate::guard::fleet::FleetNode;
use crate::guard::scope;

/// The whole report: [`text_report`], then the coverage.
pub(super) fn render(a: &Audit<'_>, cov: &Coverage) -> String {
    let mut text = text_report(a);
    // Coverage closes the report: the summary opens it.
    text.push('\n');
    text.push_str(&crate::app::output::wrap(
        &coverage::text(cov),
        crate::app::output::WIDTH,
    ));
    text
}

/// A node list, as short as it can be said: `all`, `none`, `all but a, b`.
fn node_set(names: &[&str], total: usize, all_names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    if names.len() == total {
        return "all".into();
    }
    let set: BTreeSet<&str> = names.iter().copied().collect();
    let rest: Vec<&str> = all_names
        .iter()
        .copied()
        .filter(|n| !set.contains(n))
        .collect();
    if rest.len() < names.len() {
        format!("all but {}", rest.join(","))
    } else {
        names.join(",")
    }
}

/// A node: level, CPU and view, then its record's age and staleness
/// (the words `status` uses); its notes on lines of their own.
fn node_line(n: &FleetNode) -> String {
    let Some(level) = n.level() else {
        return format!("{}: {}", paint::stale("unknown"), node_list::no_data_why(n));
    };
    let mut s = format!("{level}  {}", n.vendor().unwrap_or("?"));
    if let Some(cap) = n.capability() {
        let _ = write!(s, "  {}", cap.model_name);
    }
    let _ = write!(
        s,
        "  (view: {}; {})",
        n.view().unwrap_or("none"),
        node_list::fleet_freshness(n, paint::stale)
    );
    if n.below_floor() {
        s.push_str("  warning: not even kvm64 starts here");
    }
    for note in n.notes() {
        let _ = write!(s, "\n      note: {note}");
    }
    s
}

fn vm_label(v: &VmAudit) -> String {
    match &v.name {
        Some(n) => format!("VM {} ({n})", v.vmid),
        None => format!("VM {}", v.vmid),
    }
}

/// Where a VM could start / live-migrate to: the nodes that accept it,
/// the nodes without an answer, and how many were considered.
fn reach<'a>(a: &'a Audit<'_>, v: &VmAudit, live: bool) -> (Vec<&'a str>, Vec<&'a str>, usize) {
    let mut yes = Vec::new();
    let mut unknown = Vec::new();
    let mut total = 0;
    for (i, n) in a.fleet.nodes.iter().enumerate() {
        if live && Some(i) == v.owner {
            continue;
        }
        total += 1;
        match if live {
            a.live_cell(v, i)
        } else {
            a.start_cell(v, i)
        } {
            Cell::Yes => yes.push(n.name.as_str()),
            Cell::Unknown(_) => unknown.push(n.name.as_str()),
            Cell::No(_) => {}
        }
    }
    (yes, unknown, total)
}

/// The widest a node-set cell of the table gets: the five columns fit
/// 100 with node names of up to seven characters.
const CELL: usize = 28;

/// [`node_set`] plus the nodes without an answer; counted when naming
/// them would not fit the table's cell.
fn reach_text(yes: &[&str], unknown: &[&str], total: usize, all_names: &[&str]) -> String {
    if !unknown.is_empty() && unknown.len() == total {
        return "unknown".into();
    }
    let set = node_set(yes, total, all_names);
    let text = match unknown.len() {
        0 => set,
        1 => format!("{set} ({} unknown)", unknown[0]),
        n => format!("{set} ({n} unknown)"),
    };
    if text.chars().count() <= CELL {
        return text;
    }
    match unknown.len() {
        0 => format!("{} of {total}", yes.len()),
        n => format!("{} of {total} ({n} unknown)", yes.len()),
    }
}

fn text_report(a: &Audit<'_>) -> String {
    let mut s = String::with_capacity(a.vms.len() * 120 + 1024);
    // Summary first, details after.
    let (by, risk) = a.counts();
    let parts: Vec<String> = by
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "{} VMs, {} flagged, {risk} at risk{}\n",
        a.vms.len(),
        a.vms.iter().filter(|v| !v.findings.is_empty()).count(),
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    );
    let all_names: Vec<&str> = a.fleet.nodes.iter().map(|n| n.name.as_str()).collect();
    let vendors = a.fleet.vendors();
    let _ = writeln!(
        s,
        "Nodes ({}; {}; CPU vendors: {}):",
        a.fleet.nodes.len(),
        super::summary::baseline_text(a),
        if vendors.is_empty() {
            "unknown".to_string()
        } else {
            vendors.into_iter().collect::<Vec<_>>().join(", ")
        }
    );
    let w = all_names.iter().map(|n| n.len()).max().unwrap_or(4);
    for n in &a.fleet.nodes {
        let _ = writeln!(s, "  {:w$}  {}", n.name, node_line(n));
    }
    for h in node_list::hints(a.fleet.nodes.iter().filter(|n| n.is_stale())) {
        let _ = writeln!(s, "  note: {h}");
    }
    for p in &a.fleet.problems {
        // A problem's own `note:` line stays inside the indented block.
        let p = p.replace('\n', "\n  ");
        let _ = writeln!(s, "  {} cache: {p}", paint::warning("warning:"));
    }
    // Node lines carry notes and ages: wrapped to 100 columns too.
    let mut s = crate::app::output::wrap(&s, crate::app::output::WIDTH);

    // VMs with the same requirement on the same node share their row.
    let mut cells: HashMap<(usize, usize, Option<usize>), (String, String)> = HashMap::new();
    let rows: Vec<[String; 5]> = a
        .vms
        .iter()
        .map(|v| {
            let (live, start) = cells
                .entry(a.row_key(v))
                .or_insert_with(|| {
                    let (live, live_unknown, lt) = reach(a, v, true);
                    let (start, start_unknown, st) = reach(a, v, false);
                    let live_names: Vec<&str> = all_names
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| Some(*i) != v.owner)
                        .map(|(_, n)| *n)
                        .collect();
                    (
                        reach_text(&live, &live_unknown, lt, &live_names),
                        reach_text(&start, &start_unknown, st, &all_names),
                    )
                })
                .clone();
            [
                v.vmid.to_string(),
                v.node.clone(),
                // A `cpu:` value of any length must not widen the table
                // without bound (a width past 65 535 even panicked).
                crate::error::capped(&v.cpu, 24),
                live,
                start,
            ]
        })
        .collect();
    // Five columns fit 100; each VM's findings follow the table.
    let head = ["VMID", "NODE", "CPU", "LIVE-MIGRATES TO", "STARTS ON"];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let _ = writeln!(s, "\nVMs ({}):", a.vms.len());
    let line = |s: &mut String, cols: [&str; 5]| {
        s.push(' ');
        for (i, c) in cols.iter().enumerate() {
            s.push(' ');
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                // Padded by hand: a `{:w$}` width must fit in 16 bits.
                s.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count()) + 1;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
    };
    line(&mut s, head);
    for r in &rows {
        line(&mut s, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }

    let flagged: Vec<&VmAudit> = a.vms.iter().filter(|v| !v.findings.is_empty()).collect();
    // Where a suggested type is known to work: every node, or only those
    // with data (issue 23).
    let missing = a.fleet.without_data();
    let where_ = if missing.is_empty() {
        "everywhere".to_string()
    } else {
        format!(
            "on {} ({})",
            scope::scanned(a.fleet.nodes.len() - missing.len()),
            scope::never_scanned(&missing)
        )
    };
    let cache = WhyCache::default();
    // The explanations are prose: wrapped to fit 100 columns (the tables
    // above stay one row per line, for grep and awk).
    let table_end = s.len();
    if !flagged.is_empty() {
        let _ = writeln!(
            s,
            "\n{} ({}):",
            paint::refused("Flagged VMs"),
            flagged.len()
        );
    }
    for v in &flagged {
        let _ = writeln!(
            s,
            "  {} on {}, CPU '{}':",
            vm_label(v),
            v.node,
            crate::error::quoted(&v.cpu)
        );
        if let Some(e) = &v.error {
            let _ = writeln!(s, "    error: {e}");
        }
        for f in &v.findings {
            let _ = writeln!(s, "    - {}", finding_text(a, v, f, &cache));
        }
        match &v.suggestion {
            Some(Suggestion::Use { cpu, text }) => {
                let _ = writeln!(
                    s,
                    "    fix: `qm set {} --cpu {cpu}` makes it movable {where_} (takes effect at the next VM start){}",
                    v.vmid,
                    text.strip_prefix(cpu).unwrap_or(text)
                );
            }
            Some(Suggestion::None(why)) => {
                let _ = writeln!(s, "    fix: no CPU type starts on every node: {why}");
            }
            None => {}
        }
    }

    let differing: Vec<&VmAudit> = a
        .vms
        .iter()
        .filter(|v| v.running.as_ref().is_some_and(|r| r.differs))
        .collect();
    if !differing.is_empty() {
        let _ = writeln!(
            s,
            "\nRunning with another CPU than their configuration gives ({}):",
            differing.len()
        );
    }
    for v in differing {
        if let Some(r) = &v.running {
            let _ = writeln!(
                s,
                "  {} on {}: runs with -cpu {} (cold-started on {}); CPU '{}' takes effect at the next cold start",
                vm_label(v),
                v.node,
                crate::error::quoted(&r.cpu),
                r.cold_start_node,
                crate::error::quoted(&v.cpu)
            );
        }
    }

    let prose = crate::app::output::wrap(&s[table_end..], crate::app::output::WIDTH);
    s.truncate(table_end);
    s.push_str(&prose);
    s
}
