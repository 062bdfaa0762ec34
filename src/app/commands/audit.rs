//! `pve-cpuguard audit`: every VM of the cluster against every node, from
//! the cache — where each VM could start, where it could live-migrate to,
//! and which VMs are at risk (see [`crate::guard::audit`]). No network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::app::cli::AuditArgs;
use crate::app::output::Format;
use crate::app::paint;
use crate::cache;
use crate::conf::settings::Settings;
use crate::cpu::verdict::Verdict;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit::{self, Audit, Cell, Finding, Suggestion, VmAudit, VmEntry};
use crate::guard::decision::Rules;
use crate::guard::fleet::{self, Fleet, FleetNode};
use crate::pve::custom_models::{self, CustomModels};
use crate::pve::ha::{self, HaVm};
use crate::pve::paths::VmId;
use crate::pve::vmconf;

/// What the audit reads from the cluster file system and the cache.
pub struct Gathered {
    /// Every VM.
    pub vms: Vec<VmEntry>,
    /// `cpu-models.conf`.
    pub custom: CustomModels,
    /// `ha/resources.cfg`.
    pub ha: BTreeMap<VmId, HaVm>,
    /// Every node.
    pub fleet: Fleet,
    /// Policy rules.
    pub rules: Rules,
}

/// Reads everything the audit needs; with `read_local_cpu`, this node's
/// own /proc/cpuinfo replaces its cached record (as the guard does).
///
/// # Errors
/// Unreadable directories, a malformed `.vmlist`, `cpu-models.conf` or
/// `resources.cfg`. A VM config that cannot be read is reported on that VM.
pub fn gather(settings: &Settings, read_local_cpu: bool) -> Result<Gathered> {
    let root = settings.pve.root();
    crate::pve::presence::require(root)?;
    let (node_names, found) = settings.pve.scan_nodes()?;
    let mut vms = read_configs(settings, found.into_iter().collect());
    let known: BTreeSet<VmId> = vms.iter().map(|v| v.vmid).collect();
    for (vmid, entry) in settings.pve.vmlist()? {
        if entry.kind == "qemu" && !known.contains(&vmid) {
            let path = settings.pve.vm_config(&entry.node, vmid);
            vms.push(VmEntry {
                vmid,
                node: entry.node.clone(),
                config: Err(format!(
                    ".vmlist puts VM {vmid} on '{}', but {} does not exist",
                    entry.node,
                    path.display()
                )),
            });
        }
    }

    // This node read now, through the same definition as every command
    // (its cached QEMU answer counts while its flags are unchanged).
    let is_node = node_names.contains(&settings.node);
    let local = (read_local_cpu && is_node)
        .then(|| crate::reach::local::cpuinfo(&settings.cpuinfo).ok())
        .flatten();
    let mut fleet = match &local {
        Some(info) => fleet::load(settings, info),
        None => fleet::load_cached(settings),
    };
    for n in &node_names {
        if fleet.get(n).is_none() {
            fleet.upsert(FleetNode::unknown(
                n,
                "no cached record (run `pve-cpuguard scan`)".into(),
            ));
        }
    }
    Ok(Gathered {
        vms,
        custom: custom_models::read(&settings.pve.cpu_models())?,
        ha: ha::read(root)?,
        fleet,
        rules: Rules {
            policy: settings.policy,
            vendor_change: settings.vendor_change,
        },
    })
}

/// Reads the VM configs, on as many threads as there are CPUs (reading
/// thousands of small files from pmxcfs is system-call bound).
fn read_configs(settings: &Settings, list: Vec<(VmId, String)>) -> Vec<VmEntry> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8);
    let chunk = list.len().div_ceil(threads).max(256);
    let read = |part: &[(VmId, String)]| -> Vec<VmEntry> {
        part.iter()
            .map(|(vmid, node)| {
                let path = settings.pve.vm_config(node, *vmid);
                let config = vmconf::read(&path).map_err(|e| e.to_string());
                VmEntry {
                    vmid: *vmid,
                    node: node.clone(),
                    config,
                }
            })
            .collect()
    };
    if list.len() <= chunk {
        return read(&list);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = list
            .chunks(chunk)
            .map(|part| scope.spawn(move || read(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Runs `audit`.
///
/// # Errors
/// See [`gather`]; writing output.
pub fn run(args: &AuditArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let g = gather(&settings, true)?;
    let a = audit::run(&g.vms, &g.custom, &g.fleet, &g.ha, g.rules);
    let max_age = settings.cache_max_age.as_secs();
    let cov = coverage_of(&settings, &a, g.rules);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            let mut rows = JsonRows::new();
            for v in &a.vms {
                rows.entry(a.row_key(v))
                    .or_insert_with(|| (json_reach(&a, v, true), json_reach(&a, v, false)));
            }
            // Compact: a 10 000-VM cluster's report is tens of megabytes
            // pretty-printed; `jq .` pretty-prints it for people.
            let mut report = json_report(&a, max_age, &rows);
            report.coverage = Some(coverage_json(&cov));
            serde_json::to_writer(&mut out, &report).map_err(|e| Error::Output(e.into()))?;
            out.write_all(b"\n").map_err(Error::Output)?;
        }
        Format::Html => out
            .write_all(super::audit_html::render(&a, max_age).as_bytes())
            .map_err(Error::Output)?,
        Format::Text => {
            let mut text = text_report(&a, max_age);
            // Coverage closes the report: the summary opens it.
            text.push('\n');
            text.push_str(&crate::app::output::wrap(
                &crate::guard::coverage::text(&cov),
                crate::app::output::WIDTH,
            ));
            // Through anstream: colour only on a terminal, never with NO_COLOR.
            crate::app::output::print(&text)?;
        }
    }
    out.flush().map_err(Error::Output)?;
    Ok(if g.fleet.known().next().is_none() {
        eprintln!(
            "pve-cpuguard: no node has CPU data in {}, so no VM can be judged\n\
             note: run `pve-cpuguard scan` (the pve-cpuguard-refresh.timer runs it hourly)",
            settings.cache.display()
        );
        ExitCode::Unknown
    } else if a.vms.iter().any(|v| !v.findings.is_empty()) {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}

/// The cluster's coverage: guarded VMs, and nodes lacking the hook file
/// a guarded VM on a storage that is not shared needs.
fn coverage_of(
    settings: &Settings,
    a: &Audit<'_>,
    rules: Rules,
) -> crate::guard::coverage::Coverage {
    let storages = crate::pve::storage::read(settings.pve.root()).ok();
    // Unknown storages count as shared: no knowledge, no alarm.
    let shared = |id: &str| {
        storages
            .as_ref()
            .and_then(|s| s.get(id))
            .is_none_or(|s| s.shared)
    };
    let hooks = crate::guard::coverage::hook_storages_of(&settings.cache);
    crate::guard::coverage::of(a, rules, &hooks, &shared)
}

fn coverage_json(c: &crate::guard::coverage::Coverage) -> serde_json::Value {
    serde_json::json!({
        "vms": c.total,
        "guarded": c.guarded,
        "unguarded": c.unguarded.iter().map(|v| v.0).collect::<Vec<_>>(),
        "missing_hook_file": c.missing_file.iter().map(|(v, (s, n))| serde_json::json!({"vmid": v.0, "storage": s, "nodes": n})).collect::<Vec<_>>(),
    })
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

fn node_line(n: &FleetNode, max_age: u64) -> String {
    match (n.level(), n.age_secs) {
        (Some(level), age) => {
            let mut s = format!("{level}  {}", n.vendor().unwrap_or("?"),);
            if let Some(cap) = n.capability() {
                let _ = write!(s, "  {}", cap.model_name);
            }
            let _ = write!(s, "  (view: {})", n.view().unwrap_or("none"));
            if n.below_floor() {
                s.push_str("  warning: not even kvm64 starts here");
            }
            for note in n.notes() {
                let _ = write!(s, "\n      note: {note}");
            }
            if let Some(age) = age.filter(|a| *a > 0) {
                let _ = write!(s, "  (data {} old", cache::human_age(age));
                if let Some(src) = &n.source {
                    let _ = write!(s, " via {src}");
                }
                if age > max_age {
                    let _ = write!(s, ", {}: run `pve-cpuguard scan`", paint::stale("stale"));
                }
                s.push(')');
            } else if let Some(src) = &n.source {
                let _ = write!(s, "  (data via {src})");
            }
            if let Some(p) = &n.problem {
                let _ = write!(s, "  {} {p}", paint::warning("warning:"));
            }
            s
        }
        (None, _) => format!(
            "{}: {}",
            paint::stale("unknown"),
            n.problem.as_deref().unwrap_or("no data")
        ),
    }
}

fn vm_label(v: &VmAudit) -> String {
    match &v.name {
        Some(n) => format!("VM {} ({n})", v.vmid),
        None => format!("VM {}", v.vmid),
    }
}

fn names<'a>(a: &'a Audit<'_>, idx: &[usize]) -> Vec<&'a str> {
    idx.iter()
        .map(|&i| a.fleet.nodes[i].name.as_str())
        .collect()
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

/// [`node_set`] plus the nodes without an answer.
fn reach_text(yes: &[&str], unknown: &[&str], total: usize, all_names: &[&str]) -> String {
    if !unknown.is_empty() && unknown.len() == total {
        return "unknown".into();
    }
    let set = node_set(yes, total, all_names);
    match unknown.len() {
        0 => set,
        1 => format!("{set} ({} unknown)", unknown[0]),
        n => format!("{set} ({n} unknown)"),
    }
}

/// The nodes a VM cannot start on, grouped by reason:
/// `pve2, pve6 (missing flags: …); pve3 (…)`. The same for every VM with
/// the same requirement, so it is built once per requirement.
pub(crate) type WhyCache = std::cell::RefCell<HashMap<usize, std::rc::Rc<str>>>;

fn cannot_start_text(
    a: &Audit<'_>,
    v: &VmAudit,
    idx: &[usize],
    cache: &WhyCache,
) -> std::rc::Rc<str> {
    let key = a.row_key(v).0;
    if let Some(s) = cache.borrow().get(&key) {
        return s.clone();
    }
    let mut groups: Vec<(&Verdict, Vec<&str>)> = Vec::new();
    for &i in idx {
        if let Cell::No(verdict) = a.start_cell(v, i) {
            let name = a.fleet.nodes[i].name.as_str();
            match groups.iter_mut().find(|(p, _)| std::ptr::eq(*p, verdict)) {
                Some((_, names)) => names.push(name),
                None => groups.push((verdict, vec![name])),
            }
        }
    }
    let text: std::rc::Rc<str> = groups
        .iter()
        .map(|(verdict, names)| format!("{} ({})", names.join(", "), audit::summary(verdict)))
        .collect::<Vec<_>>()
        .join("; ")
        .into();
    cache.borrow_mut().insert(key, text.clone());
    text
}

pub(crate) fn finding_text(a: &Audit<'_>, v: &VmAudit, f: &Finding, cache: &WhyCache) -> String {
    let why = |idx: &[usize]| cannot_start_text(a, v, idx, cache);
    match f {
        Finding::AboveBaseline(idx) => format!(
            "CPU '{}' is above the cluster baseline ({}): it cannot start on {}",
            v.cpu,
            a.baseline.unwrap_or("unknown"),
            why(idx)
        ),
        Finding::HostInMixedCluster(k) => format!(
            "CPU '{}' passes each node's own CPU through, and the nodes have {k} different CPUs: a live migration between them can crash the guest",
            v.cpu
        ),
        Finding::HaCannotRecover(idx) => format!(
            "HA-managed (vm:{}): if its node fails, HA may recover it onto {}, where it cannot start",
            v.vmid,
            names(a, idx).join(", ")
        ),
        Finding::NoGuardHookscript(None) => format!(
            "no hookscript: the guard does not check its starts and migrations (run `pve-cpuguard attach {}` on {})",
            v.vmid, v.node
        ),
        Finding::NoGuardHookscript(Some(h)) => format!(
            "hookscript '{h}' is not the guard's (run `pve-cpuguard attach {}` on {}; '{h}' keeps running, chained behind the guard)",
            v.vmid, v.node
        ),
        Finding::CannotJudge(why) => format!("cannot judge its CPU: {why}"),
    }
}

fn text_report(a: &Audit<'_>, max_age: u64) -> String {
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
        "Nodes ({}; baseline {}; CPU vendors: {}):",
        a.fleet.nodes.len(),
        a.baseline.unwrap_or("unknown"),
        if vendors.is_empty() {
            "unknown".to_string()
        } else {
            vendors.into_iter().collect::<Vec<_>>().join(", ")
        }
    );
    let w = all_names.iter().map(|n| n.len()).max().unwrap_or(4);
    for n in &a.fleet.nodes {
        let _ = writeln!(s, "  {:w$}  {}", n.name, node_line(n, max_age));
    }
    for p in &a.fleet.problems {
        let _ = writeln!(s, "warning: cache: {p}");
    }
    // Node lines carry notes and ages: wrapped to 100 columns too.
    let mut s = crate::app::output::wrap(&s, crate::app::output::WIDTH);

    // VMs with the same requirement on the same node share their row.
    let mut cells: HashMap<(usize, Option<usize>), (String, String)> = HashMap::new();
    let rows: Vec<[String; 6]> = a
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
                v.cpu.clone(),
                live,
                start,
                if v.findings.is_empty() {
                    "-".into()
                } else {
                    v.findings
                        .iter()
                        .map(Finding::code)
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ]
        })
        .collect();
    let head = [
        "VMID",
        "NODE",
        "CPU",
        "LIVE-MIGRATES TO",
        "STARTS ON",
        "FLAGS",
    ];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let _ = writeln!(s, "\nVMs ({}):", a.vms.len());
    let line = |s: &mut String, cols: [&str; 6]| {
        s.push(' ');
        for (i, c) in cols.iter().enumerate() {
            s.push(' ');
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:w$} ", w = widths[i]);
            }
        }
        s.push('\n');
    };
    line(&mut s, head);
    for r in &rows {
        line(&mut s, [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }

    let flagged: Vec<&VmAudit> = a.vms.iter().filter(|v| !v.findings.is_empty()).collect();
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
        let _ = writeln!(s, "  {} on {}, CPU '{}':", vm_label(v), v.node, v.cpu);
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
                    "    fix: `qm set {} --cpu {cpu}` makes it movable everywhere (takes effect at the next VM start){}",
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

    let prose = crate::app::output::wrap(&s[table_end..], crate::app::output::WIDTH);
    s.truncate(table_end);
    s.push_str(&prose);
    s
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
    age_secs: Option<u64>,
    source: Option<&'a str>,
    stale: bool,
    problem: Option<&'a str>,
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
    /// Set by the caller ([`crate::guard::coverage`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct JsonSummary {
    vms: usize,
    flagged: usize,
    at_risk: usize,
    by_flag: BTreeMap<&'static str, usize>,
}

/// Serialised matrix rows by [`Audit::row_key`]: (live migration, start).
type JsonRows = HashMap<(usize, Option<usize>), (Box<RawValue>, Box<RawValue>)>;

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
                    None => n.problem.clone().unwrap_or_else(|| "no data".into()),
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
                                || vec![n.problem.clone().unwrap_or_else(|| "no data".into())],
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

fn json_report<'a>(a: &'a Audit<'_>, max_age: u64, rows: &'a JsonRows) -> JsonReport<'a> {
    let (by_flag, at_risk) = a.counts();
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
                age_secs: n.age_secs,
                source: n.source.as_deref(),
                stale: n.age_secs.is_some_and(|x| x > max_age) || n.problem.is_some(),
                problem: n.problem.as_deref(),
            })
            .collect(),
        baseline: a.baseline,
        vendors: a.fleet.vendors().into_iter().collect(),
        // A CPU type or null, never a sentence (vendors are `vendors`).
        works_everywhere: crate::guard::decision::recommend(a.fleet, None),
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
                            Finding::AboveBaseline(i) | Finding::HaCannotRecover(i) => {
                                names(a, i).into_iter().map(str::to_string).collect()
                            }
                            _ => Vec::new(),
                        },
                    })
                    .collect(),
                works_everywhere: match &v.suggestion {
                    Some(Suggestion::Use { cpu, .. }) => Some(cpu),
                    _ => None,
                },
                suggestion: v.suggestion.as_ref().map(|s| match s {
                    Suggestion::Use { cpu, text } => {
                        format!("qm set {} --cpu {cpu} ({text})", v.vmid)
                    }
                    Suggestion::None(why) => why.clone(),
                }),
            })
            .collect(),
        summary: JsonSummary {
            vms: a.vms.len(),
            flagged: a.vms.iter().filter(|v| !v.findings.is_empty()).count(),
            at_risk,
            by_flag,
        },
        coverage: None,
    }
}
