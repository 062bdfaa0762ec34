//! `pve-cpuguard inspect`: this host's CPU, its level, and every Proxmox CPU
//! type it can run (or what each one lacks). With `--probe kvm`, QEMU's
//! answer under KVM is shown beside the /proc/cpuinfo view, with where the
//! two disagree.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::json;

use crate::app::cli::InspectArgs;
use crate::app::output::{self, Format};
use crate::cache::{self, truth, NodeRecord};
use crate::cpu::capability::{Capability, Disagreement};
use crate::cpu::verdict::{self, Outcome, Question, Verdict};
use crate::cpu::{cpudata, level, models, requirement};
use crate::error::{ExitCode, Result};
use crate::pve::custom_models::CustomModels;
use crate::reach::kvm_probe;

use super::inspect_no_kvm::WithKvm;
use super::inspect_probe::{self, KvmSide};

pub(super) fn judge_all(cap: &Capability) -> Vec<(String, Verdict)> {
    let none = CustomModels::default();
    models::proxmox_cpu_types()
        .into_iter()
        .map(|name| {
            let req = requirement::from_cpu_value(&name, &none);
            let v = verdict::judge(&req, cap, Question::Start);
            (name, v)
        })
        .collect()
}

/// Runs `inspect`.
///
/// # Errors
/// Unreadable or unsupported cpuinfo.
pub fn run(args: &InspectArgs, format: Format) -> Result<ExitCode> {
    let info = crate::reach::local::cpuinfo(&args.cpuinfo.cpuinfo)?;
    let cap = Capability::from_cpuinfo(&info);
    let kvm = KvmSide::probe(args, &info, &cap)?;
    // The one answer ([`truth`]): QEMU's, asked now or recorded by the last
    // scan of this node (while its flags are unchanged), else /proc/cpuinfo.
    // The record's age and staleness when its QEMU answer decided: how
    // current that answer is, in the words of `status`.
    let mut recorded = None;
    let t = match &kvm {
        Some(k) => {
            let rec = NodeRecord::new("local", "local", &info, None, 0)
                .with_kvm(Some(Ok(k.view.clone())));
            truth::of_local(&info, Some(&rec))
        }
        None => {
            let pve_dir = args.pve_dir.clone().unwrap_or_else(|| "/etc/pve".into());
            let node = crate::pve::paths::local_node(args.node.as_deref(), &pve_dir);
            // flag > variable > configuration file > default, as everywhere.
            let (conf, path) = args.cache.resolve()?;
            let rec = cache::Cache::load_lenient(&path)
                .ok()
                .and_then(|(c, _)| c.nodes.get(&node).cloned());
            let t = truth::of_local(&info, rec.as_ref());
            if let Some(r) = rec.filter(|_| t.view() != "cpuinfo") {
                // inspect takes no --cache-max-age: variable > file > default.
                let given = std::env::var("PVE_CPUGUARD_CACHE_MAX_AGE")
                    .ok()
                    .and_then(|v| crate::conf::config::duration_arg(&v).ok());
                let max_age = crate::conf::settings::cache_max_age(given, &conf).as_secs();
                recorded = Some((r.freshness(cache::now(), max_age), r.source));
            }
            t
        }
    };
    let lvl = t.level.clone();
    // No x86 vendor: no level at all, the answer is unknown (exit 3).
    let done = if matches!(lvl.floor, level::Floor::UnknownVendor(_)) {
        ExitCode::Unknown
    } else {
        ExitCode::Ok
    };
    let types = judge_all(&t.capability);
    // No KVM: one reason for the node, and what it would offer with KVM.
    let with_kvm = matches!(lvl.floor, level::Floor::NoKvm)
        .then(|| WithKvm::of(&info))
        .flatten();
    let cpuinfo_types = if kvm.is_some() {
        judge_all(&cap)
    } else {
        Vec::new()
    };

    if format == Format::Json {
        let mut value = json!({
            "source": args.cpuinfo.cpuinfo,
            "vendor": info.vendor,
            "model_name": info.model_name,
            "family": info.family,
            "model": info.model,
            "stepping": info.stepping,
            "microcode": info.microcode,
            "processors": info.processors,
            "level": t.level_name(),
            "level_floor_met": lvl.floor_met,
            "view": t.view(),
            "notes": t.notes,
            "freshness": recorded.as_ref().map(|(f, _)| f),
            "level_floor": lvl.floor.code(),
            "next_level": lvl.next.as_ref().map(|(n, m)| json!({"name": n, "missing": m})),
            "phys_bits": info.phys_bits,
            "flags": info.flags.iter().collect::<Vec<_>>(),
            "cpu_types": types.iter().map(|(name, v)| type_json(name, v)).collect::<Vec<_>>(),
            "data": cpudata::provenance(),
            "with_kvm": with_kvm.as_ref().map(WithKvm::to_json),
        });
        if let Some(k) = &kvm {
            let mut view = kvm_probe::to_json(&k.view);
            view["level"] = json!(k.level.name);
            view["level_floor_met"] = json!(k.level.floor_met);
            view["disagreement"] = json!({
                "cpuinfo_only": k.disagreement.cpuinfo_only,
                "kvm_only": k.disagreement.kvm_only,
                "settled_present": k.disagreement.settled_present,
            });
            value["kvm"] = view;
            if let Some(list) = value["cpu_types"].as_array_mut() {
                for ((entry, (_, v)), (_, c)) in list.iter_mut().zip(&k.types).zip(&cpuinfo_types) {
                    entry["kvm"] = json!({
                        "supported": v.outcome == Outcome::Compatible,
                        "verdict": v.outcome.as_str(),
                        "missing": v.missing_flags(),
                        "notes": v.notes,
                        "unknown": v.unknown,
                        "checked_with": v.checked_with,
                    });
                    // The other view, beside the one answer above.
                    entry["cpuinfo"] = json!({
                        "supported": c.outcome == Outcome::Compatible,
                        "verdict": c.outcome.as_str(),
                        "missing": c.missing_flags(),
                    });
                }
            }
        }
        output::print_json(&value)?;
        return Ok(done);
    }

    let mut s = String::new();
    // Summary first: what this host is and what it runs.
    let (answer, answer_view): (&[(String, Verdict)], &str) = match &kvm {
        Some(k) => (&k.types, t.view()),
        None => (&types, t.view()),
    };
    let runs = answer
        .iter()
        .filter(|(_, v)| v.outcome == Outcome::Compatible)
        .count();
    let _ = writeln!(s, "Summary:    {} {}", info.vendor, info.model_name);
    match &with_kvm {
        Some(w) => {
            let _ = writeln!(s, "            {}", w.summary_line());
        }
        None => {
            let _ = writeln!(
                s,
                "            level {} (view: {answer_view}); {runs} of {} Proxmox CPU types start here",
                t.level_name(),
                answer.len()
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "CPU:        {} ({})", info.model_name, info.vendor);
    if let (Some(f), Some(m)) = (info.family, info.model) {
        let _ = writeln!(
            s,
            "Signature:  family {f} model {m} stepping {}, microcode {}",
            info.stepping.map_or("?".into(), |x| x.to_string()),
            info.microcode.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(s, "Processors: {} (flags common to all)", info.processors);
    let _ = writeln!(
        s,
        "Phys bits:  {}",
        info.phys_bits.map_or("unknown".into(), |b| b.to_string())
    );
    match &lvl.floor {
        level::Floor::Met | level::Floor::Missing(_) => {
            let _ = writeln!(s, "Level:      {} (view: {})", t.level_name(), t.view());
        }
        floor => {
            let _ = writeln!(s, "Level:      {floor} (view: {})", t.view());
        }
    }
    // With a probe, where the views disagree is said once, below.
    if let Some((f, via)) = &recorded {
        let _ = writeln!(
            s,
            "  from this node's record: {}",
            super::node_list::freshness_text(f, via.as_deref())
        );
    }
    for n in t.notes.iter().filter(|_| kvm.is_none()) {
        let _ = writeln!(s, "  note: {n}");
    }
    if let Some((next, missing)) = lvl.next.as_ref().filter(|(_, m)| !m.is_empty()) {
        let _ = writeln!(s, "Next level: {next} needs {}", missing.join(", "));
    }
    if !lvl.floor_met && with_kvm.is_none() {
        if let Some((_, v)) = types.iter().find(|(n, _)| n == "kvm64") {
            let _ = writeln!(
                s,
                "Warning:    kvm64 (Proxmox's default CPU type) cannot start here: {}",
                summary(v)
            );
        }
    }
    if let Some(w) = &with_kvm {
        w.write(&mut s, &info.vendor);
    }
    if let Some(k) = &kvm {
        inspect_probe::write_kvm(&mut s, k, &lvl, &cap);
    }
    let width = types.iter().map(|(n, _)| n.len()).max().unwrap_or(10);
    let mut foreign = BTreeSet::new();
    match &kvm {
        // Said above: what it would run with KVM, not why each type fails.
        _ if with_kvm.is_some() => {}
        None => {
            let _ = writeln!(s, "\nProxmox CPU types ({}):", cpudata::provenance());
            for (name, v) in &types {
                let _ = writeln!(s, "  {name:<width$}  {}", listed(v, &mut foreign));
            }
        }
        Some(k) => {
            let _ = writeln!(
                s,
                "\nProxmox CPU types ({}), {}; [cpuinfo: yes|no] where /proc/cpuinfo alone \
                 answers otherwise (why: Disagree above):",
                cpudata::provenance(),
                k.view.describe()
            );
            for ((name, kv), (_, cv)) in k.types.iter().zip(&cpuinfo_types) {
                // The views' disagreement is said once above, not again
                // for the features of each type.
                let mut kv = kv.clone();
                kv.notes.retain(|n| !Disagreement::is_note(n));
                let ks = listed(&kv, &mut foreign);
                // Only the other answer: its reasons are the differences
                // said once above, not again for every type (issue 23).
                match inspect_probe::other_answer(&kv, cv) {
                    None => {
                        let _ = writeln!(s, "  {name:<width$}  {ks}");
                    }
                    Some(cs) => {
                        let _ = writeln!(s, "  {name:<width$}  {ks}  [cpuinfo: {cs}]");
                    }
                }
            }
        }
    }
    // The vendor note, once for every model it applies to.
    if !foreign.is_empty() {
        s.push('\n');
    }
    for vendor in &foreign {
        let _ = writeln!(
            s,
            "* a {vendor} model: the guest sees vendor={vendor} on this {} host",
            info.vendor
        );
    }
    output::print(&output::wrap(&s, output::WIDTH))?;
    Ok(done)
}

/// [`summary`] for the list of CPU types: a model of another vendor that
/// runs here gets a `*` (explained once below the list) instead of the
/// same sentence on every line.
fn listed(v: &Verdict, foreign: &mut BTreeSet<String>) -> String {
    let Some(vendor) = v
        .model_vendor
        .as_deref()
        .filter(|_| v.outcome == Outcome::Compatible)
    else {
        return summary(v);
    };
    let mut v = v.clone();
    let own = format!("runs it with vendor={vendor}");
    v.notes.retain(|n| !n.ends_with(&own));
    foreign.insert(vendor.to_string());
    format!("{} *", summary(&v))
}

/// `yes`, `no: missing a, b`, or `unknown: why`.
pub(super) fn summary(v: &Verdict) -> String {
    match v.outcome {
        Outcome::Compatible if v.notes.is_empty() => "yes".into(),
        Outcome::Compatible => format!("yes ({})", v.notes.join("; ")),
        Outcome::Incompatible => format!(
            "no: {}",
            v.reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Outcome::Unknown => format!("unknown: {}", v.unknown.join("; ")),
    }
}

/// One CPU type's answer in `inspect`'s JSON (`cpu_types`), also for the
/// answer with KVM of a host without it.
pub(super) fn type_json(name: &str, v: &crate::cpu::verdict::Verdict) -> serde_json::Value {
    json!({
        "name": name,
        "supported": v.outcome == Outcome::Compatible,
        "verdict": v.outcome.as_str(),
        "missing": v.missing_flags(),
        "notes": v.notes,
        "unknown": v.unknown,
    })
}
