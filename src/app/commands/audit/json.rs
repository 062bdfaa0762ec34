//! `audit --output json`: the same report as data, one compact document,
//! normalised (format 2, issue 23): each distinct answer, verdict,
//! requirement, finding and suggestion is stated once in a table of its
//! own, and each VM refers to them by id. A 10 000-VM cluster whose nodes
//! all differ made 218 MB of one object per VM with every answer embedded;
//! what differs is far less (docs/json.md, section audit).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::finding::{finding_key, finding_text, names, FindingKey, WhyCache};
use super::json_tables::{self, AnswerKey, Ids, JsonAnswer, JsonRequirement, JsonVerdictEntry};
use crate::app::commands::node_list;
use crate::error::{Error, Result};
use crate::guard::audit::{self, Audit, Finding, Suggestion, VmAudit};
use crate::guard::coverage::Coverage;

/// The layout of the document, `format`: 2 since the tables (the first,
/// without the field, embedded every answer in each VM).
const FORMAT: u32 = 2;

/// Writes the report of `a`, compact, and a newline.
///
/// # Errors
/// Writing `out`.
pub fn write(out: &mut impl Write, a: &Audit<'_>, cov: &Coverage) -> Result<()> {
    // Compact: `jq .` pretty-prints it for people.
    let report = json_report(a, cov);
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

#[derive(Serialize)]
struct JsonFinding<'a> {
    id: usize,
    code: &'static str,
    message: String,
    nodes: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonSuggestion<'a> {
    id: usize,
    works_everywhere: Option<&'static str>,
    message: &'a str,
}

/// A VM's flag: its code, and the finding that says it.
#[derive(Serialize)]
struct JsonFlag {
    code: &'static str,
    finding: usize,
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
    requirement: usize,
    start: usize,
    live_migration: usize,
    flags: Vec<JsonFlag>,
    works_everywhere: Option<&'a str>,
    suggestion: Option<usize>,
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
    format: u32,
    nodes: Vec<JsonNode<'a>>,
    baseline: Option<&'a str>,
    vendors: Vec<&'a str>,
    works_everywhere: Option<&'a str>,
    cache_problems: &'a [String],
    requirements: Vec<JsonRequirement<'a>>,
    verdicts: Vec<JsonVerdictEntry>,
    answers: Vec<JsonAnswer<'a>>,
    findings: Vec<JsonFinding<'a>>,
    suggestions: Vec<JsonSuggestion<'a>>,
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

/// What the VMs refer to, by id in order of first use.
struct Refs<'a> {
    requirements: Ids<usize, &'a VmAudit>,
    answers: Ids<AnswerKey, &'a VmAudit>,
    findings: Ids<FindingKey<'a>, (&'a VmAudit, &'a Finding)>,
    suggestions: Ids<&'a Suggestion, ()>,
}

fn json_vm<'a>(a: &Audit<'_>, v: &'a VmAudit, refs: &mut Refs<'a>, complete: bool) -> JsonVm<'a> {
    JsonVm {
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
        requirement: refs.requirements.id(a.requirement_id(v), || v),
        start: refs.answers.id(AnswerKey::start(a, v), || v),
        live_migration: refs.answers.id(AnswerKey::live(a, v), || v),
        flags: v
            .findings
            .iter()
            .map(|f| JsonFlag {
                code: f.code(),
                finding: refs.findings.id(finding_key(a, v, f), || (v, f)),
            })
            .collect(),
        works_everywhere: match &v.suggestion {
            Some(Suggestion::Use { cpu, .. }) if complete => Some(cpu),
            _ => None,
        },
        suggestion: v.suggestion.as_ref().map(|s| refs.suggestions.id(s, || ())),
        running_cpu: v.running.as_ref().map(|r| r.cpu.as_str()),
        cold_start_node: v.running.as_ref().map(|r| r.cold_start_node.as_str()),
        running_cpu_differs: v.running.as_ref().map(|r| r.differs),
    }
}

fn findings<'a>(
    a: &'a Audit<'_>,
    ids: &Ids<FindingKey<'a>, (&'a VmAudit, &'a Finding)>,
) -> Vec<JsonFinding<'a>> {
    let cache = WhyCache::default();
    ids.entries
        .iter()
        .enumerate()
        .map(|(id, (_, (v, f)))| JsonFinding {
            id,
            code: f.code(),
            message: finding_text(a, v, f, &cache),
            nodes: match f {
                Finding::AboveBaseline(i)
                | Finding::HaCannotRecover(i)
                | Finding::NodeAdmission(i) => names(a, i),
                _ => Vec::new(),
            },
        })
        .collect()
}

fn suggestions<'a>(ids: &Ids<&'a Suggestion, ()>) -> Vec<JsonSuggestion<'a>> {
    ids.entries
        .iter()
        .enumerate()
        .map(|(id, (s, ()))| match s {
            Suggestion::Use { cpu, text } => JsonSuggestion {
                id,
                works_everywhere: Some(cpu),
                message: text,
            },
            Suggestion::None(why) => JsonSuggestion {
                id,
                works_everywhere: None,
                message: why,
            },
        })
        .collect()
}

fn json_report<'a>(a: &'a Audit<'_>, cov: &Coverage) -> JsonReport<'a> {
    let (by_flag, at_risk) = a.counts();
    // No cluster-wide claim while some node has no data (issue 23): its
    // nodes say which (`freshness`).
    let complete = a.fleet.without_data().is_empty();
    let mut refs = Refs {
        requirements: Ids::new(),
        answers: Ids::new(),
        findings: Ids::new(),
        suggestions: Ids::new(),
    };
    let vms: Vec<JsonVm<'a>> = a
        .vms
        .iter()
        .map(|v| json_vm(a, v, &mut refs, complete))
        .collect();
    let (answers, verdicts) = json_tables::answers(a, &refs.answers);
    JsonReport {
        format: FORMAT,
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
        requirements: json_tables::requirements(a, &refs.requirements),
        verdicts,
        answers,
        findings: findings(a, &refs.findings),
        suggestions: suggestions(&refs.suggestions),
        vms,
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
