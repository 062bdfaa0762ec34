//! `pve-cpuguard why-not CPU`: can this host run that CPU type, and if not,
//! exactly what is missing.

use std::fmt::Write as _;

use serde_json::json;

use crate::app::cli::WhyNotArgs;
use crate::app::output::{self, Format};
use crate::cache::{self, truth};
use crate::conf::settings::Settings;
use crate::cpu::verdict::{self, Outcome, Question};
use crate::cpu::{cpuconf, requirement};
use crate::error::{Error, ExitCode, Result};
use crate::pve::custom_models;

/// Runs `why-not`.
///
/// # Errors
/// Unreadable cpuinfo or cpu-models.conf.
pub fn run(args: &WhyNotArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let info = crate::reach::local::cpuinfo(&settings.cpuinfo)?;
    // This host's one answer, as every command judges it (its QEMU answer
    // recorded by the last scan while the flags are unchanged).
    let cached = cache::Cache::load_lenient(&settings.cache)
        .ok()
        .and_then(|(c, _)| c.nodes.get(&settings.node).cloned());
    let t = truth::of_local(&info, cached.as_ref());
    let cap = &t.capability;
    let custom = custom_models::read(&settings.pve.cpu_models())?;
    if let Err(e) = cpuconf::parse(&args.cpu) {
        return Err(Error::Usage(format!(
            "cannot parse CPU '{}': {e}\nnote: give a CPU type as in a VM's `cpu:` line, e.g. x86-64-v3 or 'Haswell,flags=+pcid'",
            args.cpu
        )));
    }
    let req = requirement::from_cpu_value(&args.cpu, &custom);
    let v = verdict::judge(&req, cap, Question::Start);

    if format == Format::Json {
        let mut value = v.to_json();
        value["cpu"] = json!(args.cpu);
        value["host"] = json!({"vendor": info.vendor, "model_name": info.model_name});
        value["view"] = json!(t.view());
        output::print_json(&value)?;
    } else {
        let mut s = String::new();
        let host = format!("this host ({}; view: {})", info.model_name, t.view());
        match v.outcome {
            Outcome::Compatible => {
                let _ = writeln!(s, "{}: compatible with {host}", args.cpu);
            }
            Outcome::Incompatible => {
                let _ = writeln!(s, "{}: incompatible with {host}", args.cpu);
                for r in &v.reasons {
                    let _ = writeln!(s, "  - {r}");
                }
            }
            Outcome::Unknown => {
                let _ = writeln!(s, "{}: unknown on {host}", args.cpu);
                for u in &v.unknown {
                    let _ = writeln!(s, "  - {u}");
                }
            }
        }
        for n in &v.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        output::print_wrapped(&s)?;
    }
    Ok(match v.outcome {
        Outcome::Compatible => ExitCode::Ok,
        Outcome::Incompatible => ExitCode::Refused,
        Outcome::Unknown => ExitCode::Unknown,
    })
}
