//! `pve-cpuguard inspect`: this host's CPU, its level, and every Proxmox CPU
//! type it can run (or what each one lacks).

use std::fmt::Write as _;

use serde_json::json;

use crate::capability::Capability;
use crate::cli::InspectArgs;
use crate::custom_models::CustomModels;
use crate::error::{ExitCode, Result};
use crate::output::{self, Format};
use crate::verdict::{self, Mode, Outcome, Verdict};
use crate::{cpudata, cpuinfo, level, models, requirement};

/// Runs `inspect`.
///
/// # Errors
/// Unreadable or unsupported cpuinfo.
pub fn run(args: &InspectArgs, format: Format) -> Result<ExitCode> {
    let info = cpuinfo::read(&args.cpuinfo.cpuinfo)?;
    let cap = Capability::from_cpuinfo(&info);
    let lvl = level::of(&cap);
    let none = CustomModels::default();
    let types: Vec<(String, Verdict)> = models::proxmox_cpu_types()
        .into_iter()
        .map(|name| {
            let req = requirement::from_cpu_value(&name, &none);
            let v = verdict::judge(&req, &cap, Mode::Start);
            (name, v)
        })
        .collect();

    if format == Format::Json {
        output::print_json(&json!({
            "source": args.cpuinfo.cpuinfo,
            "vendor": info.vendor,
            "model_name": info.model_name,
            "family": info.family,
            "model": info.model,
            "stepping": info.stepping,
            "microcode": info.microcode,
            "processors": info.processors,
            "level": lvl.name,
            "level_floor_met": lvl.floor_met,
            "next_level": lvl.next.as_ref().map(|(n, m)| json!({"name": n, "missing": m})),
            "phys_bits": info.phys_bits,
            "flags": info.flags,
            "cpu_types": types.iter().map(|(name, v)| json!({
                "name": name,
                "supported": v.outcome == Outcome::Compatible,
                "verdict": v.outcome.as_str(),
                "missing": v.missing_flags(),
                "notes": v.notes,
                "unknown": v.unknown,
            })).collect::<Vec<_>>(),
            "data": cpudata::provenance(),
        }))?;
        return Ok(ExitCode::Ok);
    }

    let mut s = String::new();
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
    let _ = writeln!(s, "Level:      {}", lvl.name);
    if let Some((next, missing)) = lvl.next.as_ref().filter(|(_, m)| !m.is_empty()) {
        let _ = writeln!(s, "Next level: {next} needs {}", missing.join(", "));
    }
    if !lvl.floor_met {
        if let Some((_, v)) = types.iter().find(|(n, _)| n == "kvm64") {
            let _ = writeln!(
                s,
                "Warning:    kvm64 (Proxmox's default CPU type) cannot start here: {}",
                summary(v)
            );
        }
    }
    let _ = writeln!(s, "\nProxmox CPU types ({}):", cpudata::provenance());
    let width = types.iter().map(|(n, _)| n.len()).max().unwrap_or(10);
    for (name, v) in &types {
        let _ = writeln!(s, "  {name:<width$}  {}", summary(v));
    }
    output::print(&s)?;
    Ok(ExitCode::Ok)
}

/// `yes`, `no: missing a, b`, or `unknown: why`.
fn summary(v: &Verdict) -> String {
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
