//! `pve-cpuguard hook <vmid> <phase>`: the VM hookscript.
//!
//! Proxmox runs the hookscript as root with no timeout, `pre-start` on the
//! node that starts the VM — the migration *target* during a live migration,
//! with `PVE_MIGRATED_FROM=<source>` — and a non-zero exit there aborts the
//! start, so the VM keeps running on the source (proxmox.md §1.2–1.5).
//! Only `pre-start` can refuse. No network here: local /proc/cpuinfo plus
//! the cache, under a hard deadline so a start can never hang on us.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::cli::HookArgs;
use crate::app::config::Policy;
use crate::app::settings::Settings;
use crate::app::syslog::{self, Severity};
use crate::cpu::{cpuinfo, requirement};
use crate::error::{Error, ExitCode, Result};
use crate::guard::decision::{self as guard, Movement, Rules, VmLabel};
use crate::guard::fleet;
use crate::pve::paths::VmId;
use crate::pve::{custom_models, vmconf};

/// The phases Proxmox calls hookscripts with.
const PHASES: [&str; 4] = ["pre-start", "post-start", "pre-stop", "post-stop"];

/// Set for a chained hookscript, so a chain that points back at the guard
/// cannot loop.
const CHAINED: &str = "PVE_CPUGUARD_CHAINED";

/// Runs `hook`.
///
/// # Errors
/// Only for invalid arguments or configuration; check failures become
/// allow-with-warning or refusal according to the policy.
pub fn run(args: &HookArgs) -> Result<ExitCode> {
    if std::env::var_os(CHAINED).is_some() || !PHASES.contains(&args.phase.as_str()) {
        return Ok(ExitCode::Ok);
    }
    let vmid: VmId = args.vmid.parse().map_err(Error::Usage)?;
    let settings = Settings::resolve(&args.common)?;
    if args.phase != "pre-start" {
        return chain(&settings, vmid, &args.phase);
    }

    arm_deadline(args.deadline, settings.policy, vmid);
    let allowed = check(&settings, vmid);
    crate::app::deadline::disarm();
    if allowed {
        chain(&settings, vmid, &args.phase)
    } else {
        Ok(ExitCode::Refused)
    }
}

/// The hard deadline: if the check has not finished by then, the policy
/// decides (see `crate::app::deadline`; no thread, it runs on every VM start).
fn arm_deadline(deadline: Duration, policy: Policy, vmid: VmId) {
    let refuse = policy == Policy::Strict;
    let msg = format!(
        "VM {vmid}: the CPU check did not finish within {}; {} (policy {})",
        seconds(deadline),
        if refuse {
            "refusing the start"
        } else {
            "allowing the start unchecked"
        },
        if refuse { "strict" } else { "default" }
    );
    let code = if refuse {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    };
    crate::app::deadline::arm(
        deadline,
        &format!("pve-cpuguard: {msg}\n"),
        &syslog::format(
            if refuse {
                Severity::Err
            } else {
                Severity::Warning
            },
            &msg,
        ),
        &syslog::socket_path(),
        code.code(),
    );
}

/// `10s`, `1.5s`: how a deadline reads in the message.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The pre-start check; `true` when the start may go ahead.
fn check(settings: &Settings, vmid: VmId) -> bool {
    let migrated_from = std::env::var("PVE_MIGRATED_FROM")
        .ok()
        .filter(|s| !s.is_empty());
    let unknown = |why: String| -> bool {
        let strict = settings.policy == Policy::Strict;
        let msg = format!(
            "VM {vmid}: cannot check the CPU: {why}; {}",
            if strict {
                "refused (policy strict)"
            } else {
                "allowed unchecked (policy default)"
            }
        );
        eprintln!("pve-cpuguard: {msg}");
        if strict {
            println!("QEMU: pve-cpuguard: {msg}");
            let _ = crate::guard::refusals::record(
                &settings.state_dir,
                &vmid.to_string(),
                &settings.node,
                migrated_from.as_deref(),
                crate::cache::now(),
            );
        }
        syslog::log(
            if strict {
                Severity::Err
            } else {
                Severity::Warning
            },
            &msg,
        );
        !strict
    };

    let located = match settings
        .pve
        .locate(vmid, &settings.node, migrated_from.as_deref())
    {
        Ok(Some(found)) => found,
        Ok(None) => {
            return unknown(format!(
                "no config for VM {vmid} under {}",
                settings.pve.root().display()
            ))
        }
        Err(e) => return unknown(e.to_string()),
    };
    let (_, path): (String, PathBuf) = located;
    let vm = match vmconf::read(&path) {
        Ok(vm) => vm,
        Err(e) => return unknown(e.to_string()),
    };
    let custom = match custom_models::read(&settings.pve.cpu_models()) {
        Ok(c) => c,
        Err(e) => return unknown(e.to_string()),
    };
    let info = match crate::fsutil::read(&settings.cpuinfo)
        .and_then(|b| cpuinfo::parse_bytes(&b, &settings.cpuinfo))
    {
        Ok(info) => info,
        Err(e) => return unknown(e.to_string()),
    };
    let fleet = fleet::load(settings, &info);
    let Some(local) = fleet.capability(&settings.node) else {
        return unknown("this node's capability is missing".into());
    };
    let req = requirement::from_vm(&vm, &custom);
    let movement = match migrated_from.as_deref() {
        Some(source) => Movement::Live { source },
        None => Movement::Start,
    };
    let label = VmLabel {
        vmid: vmid.to_string(),
        name: vm.name.clone(),
    };
    let rules = Rules {
        policy: settings.policy,
        vendor_change: settings.vendor_change,
    };
    let d = guard::decide(&label, &req, &settings.node, local, movement, &fleet, rules);

    if d.allow {
        if !d.warnings.is_empty() {
            eprint!("{}", d.explain());
            syslog::log(Severity::Warning, &d.one_line());
        }
    } else {
        eprint!("{}", d.explain());
        println!("QEMU: pve-cpuguard: {}", d.one_line());
        crate::guard::refusals::log(&settings.state_dir, &d);
    }
    // The process ends right after this answer: freeing every node record
    // one by one would cost more than the decision itself.
    std::mem::forget(fleet);
    d.allow
}

/// Runs the administrator's own hookscript, if one is chained for this VM.
fn chain(settings: &Settings, vmid: VmId, phase: &str) -> Result<ExitCode> {
    let Some(script) = crate::guard::chain::lookup(settings, vmid)? else {
        return Ok(ExitCode::Ok);
    };
    let status = std::process::Command::new(&script)
        .arg(vmid.to_string())
        .arg(phase)
        .env(CHAINED, "1")
        .status()
        .map_err(|e| Error::Config(format!("chained hookscript {}: {e}", script.display())))?;
    // Its exit code counts: pass it through (a signal counts as failure).
    Ok(match status.code() {
        Some(0) => ExitCode::Ok,
        Some(c) => ExitCode::Passthrough(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::Refused,
    })
}

/// The default deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
