//! `audit --output json`: the same report as data, one compact document.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::finding::{finding_text, names, WhyCache};
use crate::app::commands::node_list;
use crate::cpu::verdict::Verdict;
use crate::error::{Error, Result};
use crate::guard::audit::{self, Audit, Cell, Finding, Suggestion, VmAudit};
use crate::guard::coverage::Coverage;

/// Writes the report, compact, and a newline.
///
/// # Errors
/// Writing `out`.
pub(super) fn write(out: &mut impl Write, a: &Audit<'_>, cov: &Coverage) -> Result<()> {
    let mut rows = JsonRows::new();
    for v in &a.vms {
        rows.entry(a.row_key(v))
            .or_insert_with(|| (json_reach(a, v, true), json_reach(a, v, false)));
    }
    // Compact: a 10 000-VM cluster's report is tens of megabytes
    // pretty-printed; `jq .` pretty-prints it for people.
    let report = json_report(a, &rows, cov);
    serde_json::to_writer(&mut *out, &report).map_err(|e| Error::Output(e.into()))?;
    out.write_all(b"\n").map_err(Error::Output)
}

fn coverage_json(c: &Coverage) -> serde_json::Value {
    serde_json::json!({
        "vms": c.total,
        "guarded": c.guarded,
        "unguarded": c.unguarded.iter().map(|v| v.0).collect::<Vec<_>>(),
        "missing_hook_file": c.missing_file.iter().map(|(v, (s, n))| serde_json::json!({"vmid": v.0, "storage": s, "nodes": n})).collect::<Vec<_>>(),
    })
}

#[derive(Serialize)]
struct JsonNode<'a> {
    name: &'a str,
    level: Option<&'a str>,
    below_floor: bool,
    view: Option<&'a str>,
    notes: &'a [String],
    vendor: Option<&'a str>,
    model_name: Option<&'a str>,
    /// [`crate::cache::Freshness::age`] (`age_secs`, `stale` and
    /// `problem` repeat `freshness`, for readers of earlier versions).
    age_secs: Option<u64>,
    source: Option<&'a str>,
    stale: bool,
    problem: Option<String>,
    freshness: &'a crate::cache::Freshness,
}

/// Nodes that share one verdict.
#[derive(Serialize)]
struct JsonGroup<'a> {
    nodes: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    codes: Vec<&'static str>,
    reasons: Vec<String>,
}

#[derive(Serialize, Default)]
struct JsonReach<'a> {
    allowed: Vec<&'a str>,
    refused: Vec<JsonGroup<'a>>,
    unknown: Vec<JsonGroup<'a>>,
}

#[derive(Serialize)]
struct JsonFinding {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<String>,
}

#[derive(Serialize)]
struct JsonVm<'a> {
    vmid: u32,
    name: Option<&'a str>,
    node: &'a str,
    cpu: &'a str,
    hookscript: Option<&'a str>,
    guarded: bool,
    ha: bool,
    error: Option<&'a str>,
    live_migration: &'a RawValue,
    start: &'a RawValue,
    flags: Vec<JsonFinding>,
    works_everywhere: Option<&'a str>,
    suggestion: Option<String>,
    /// The `-cpu` its running QEMU has, as its node recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    running_cpu: Option<&'a str>,
    /// Where that guest was cold-started.
    #[serde(skip_serializing_if = "Option::is_none")]
    cold_start_node: Option<&'a str>,
    /// Whether its configuration gives another `-cpu` at the next cold start.
    #[serde(skip_serializing_if = "Option::is_none")]
    running_cpu_differs: Option<bool>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    nodes: Vec<JsonNode<'a>>,
    baseline: Option<&'a str>,
    vendors: Vec<&'a str>,
    works_everywhere: Option<&'a str>,
    cache_problems: &'a [String],
    vms: Vec<JsonVm<'a>>,
    summary: JsonSummary,
    /// [`crate::guard::coverage`].
    coverage: serde_json::Value,
}

#[derive(Serialize)]
struct JsonSummary {
    vms: usize,
    flagged: usize,
    at_risk: usize,
    by_flag: BTreeMap<&'static str, usize>,
    /// Running guests whose CPU is not what their configuration gives at
    /// the next cold start.
    running_cpu_differs: usize,
}

/// Serialised matrix rows by [`Audit::row_key`]: (live migration, start).
type JsonRows = HashMap<(usize, usize, Option<usize>), (Box<RawValue>, Box<RawValue>)>;

/// One row of the matrix as JSON, nodes grouped by verdict (nodes with
/// the same CPU share one), serialised once per distinct row.
fn json_reach(a: &Audit<'_>, v: &VmAudit, live: bool) -> Box<RawValue> {
    let mut r = JsonReach::default();
    let mut refused: Vec<(&Verdict, JsonGroup<'_>)> = Vec::new();
    let mut unknown: Vec<(Option<&Verdict>, String, JsonGroup<'_>)> = Vec::new();
    for (i, n) in a.fleet.nodes.iter().enumerate() {
        if live && Some(i) == v.owner {
            continue;
        }
        let c = if live {
            a.live_cell(v, i)
        } else {
            a.start_cell(v, i)
        };
        match c {
            Cell::Yes => r.allowed.push(&n.name),
            Cell::No(verdict) => {
                match refused.iter_mut().find(|(p, _)| std::ptr::eq(*p, verdict)) {
                    Some((_, g)) => g.nodes.push(&n.name),
                    None => refused.push((
                        verdict,
                        JsonGroup {
                            nodes: vec![&n.name],
                            codes: verdict.reasons.iter().map(|x| x.code()).collect(),
                            reasons: verdict.reasons.iter().map(ToString::to_string).collect(),
                        },
                    )),
                }
            }
            Cell::Unknown(verdict) => {
                let key = verdict;
                let why = match verdict {
                    Some(x) => x.unknown.join("; "),
                    None => node_list::no_data_why(n),
                };
                let same = |p: &Option<&Verdict>| match (p, key) {
                    (Some(x), Some(y)) => std::ptr::eq(*x, y),
                    (None, None) => true,
                    _ => false,
                };
                match unknown.iter_mut().find(|(p, w, _)| same(p) && *w == why) {
                    Some((_, _, g)) => g.nodes.push(&n.name),
                    None => unknown.push((
                        key,
                        why,
                        JsonGroup {
                            nodes: vec![&n.name],
                            codes: Vec::new(),
                            reasons: verdict.map_or_else(
                                || vec![node_list::no_data_why(n)],
                                |x| x.unknown.clone(),
                            ),
                        },
                    )),
                }
            }
        }
    }
    r.refused = refused.into_iter().map(|(_, g)| g).collect();
    r.unknown = unknown.into_iter().map(|(_, _, g)| g).collect();
    serde_json::value::to_raw_value(&r)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap_or_default())
}

fn json_report<'a>(a: &'a Audit<'_>, rows: &'a JsonRows, cov: &Coverage) -> JsonReport<'a> {
    let (by_flag, at_risk) = a.counts();
    // No cluster-wide claim while some node has no data (issue 23): its
    // nodes say which (`freshness`).
    let complete = a.fleet.without_data().is_empty();
    let cache = WhyCache::default();
    JsonReport {
        nodes: a
            .fleet
            .nodes
            .iter()
            .map(|n| JsonNode {
                name: &n.name,
                level: n.level(),
                below_floor: n.below_floor(),
                view: n.view(),
                notes: n.notes(),
                vendor: n.vendor(),
                model_name: n.capability().map(|c| c.model_name.as_str()),
                age_secs: n.freshness.age(),
                source: n.source.as_deref(),
                stale: n.is_stale(),
                problem: if n.capability().is_none() {
                    Some(node_list::no_data_why(n))
                } else {
                    n.freshness.why()
                },
                freshness: &n.freshness,
            })
            .collect(),
        baseline: a.baseline.filter(|_| complete),
        vendors: a.fleet.vendors().into_iter().collect(),
        // A CPU type or null, never a sentence (vendors are `vendors`).
        works_everywhere: crate::guard::decision::recommend(a.fleet, None).filter(|_| complete),
        cache_problems: &a.fleet.problems,
        vms: a
            .vms
            .iter()
            .map(|v| JsonVm {
                vmid: v.vmid.0,
                name: v.name.as_deref(),
                node: &v.node,
                cpu: &v.cpu,
                hookscript: v.hookscript.as_deref(),
                guarded: v
                    .hookscript
                    .as_deref()
                    .is_some_and(audit::is_guard_hookscript),
                ha: v.ha,
                error: v.error.as_deref(),
                live_migration: &rows[&a.row_key(v)].0,
                start: &rows[&a.row_key(v)].1,
                flags: v
                    .findings
                    .iter()
                    .map(|f| JsonFinding {
                        code: f.code(),
                        message: finding_text(a, v, f, &cache),
                        nodes: match f {
                            Finding::AboveBaseline(i)
                            | Finding::HaCannotRecover(i)
                            | Finding::NodeAdmission(i) => {
                                names(a, i).into_iter().map(str::to_string).collect()
                            }
                            _ => Vec::new(),
                        },
                    })
                    .collect(),
                works_everywhere: match &v.suggestion {
                    Some(Suggestion::Use { cpu, .. }) if complete => Some(cpu),
                    _ => None,
                },
                suggestion: v.suggestion.as_ref().map(|s| match s {
                    Suggestion::Use { cpu, text } => {
                        format!("qm set {} --cpu {cpu} ({text})", v.vmid)
                    }
                    Suggestion::None(why) => why.clone(),
                }),
                running_cpu: v.running.as_ref().map(|r| r.cpu.as_str()),
                cold_start_node: v.running.as_ref().map(|r| r.cold_start_node.as_str()),
                running_cpu_differs: v.running.as_ref().map(|r| r.differs),
            })
            .collect(),
        summary: JsonSummary {
            vms: a.vms.len(),
            flagged: a.vms.iter().filter(|v| !v.findings.is_empty()).count(),
            at_risk,
            by_flag,
            running_cpu_differs: a.running_cpu_differs(),
        },
        coverage: coverage_json(cov),
    }
}
