//! `pve-cpuguard hook <vmid> <phase>`: the VM hookscript.
//!
//! Proxmox runs the hookscript as root with no timeout, `pre-start` on the
//! node that starts the VM — the migration *target* during a live migration,
//! with `PVE_MIGRATED_FROM=<source>` — and a non-zero exit there aborts the
//! start, so the VM keeps running on the source (pve-docs `qm.adoc`,
//! "Hookscripts"; qemu-server `PVE::GuestHelpers::exec_hookscript`).
//! Only `pre-start` can refuse. No network here: local /proc/cpuinfo plus
//! the cache, under a hard deadline so a start can never hang on us.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::cli::HookArgs;
use crate::app::commands::{hook_running, hook_unarmed};
use crate::conf::config::Policy;
use crate::conf::settings::Settings;
use crate::cpu::launch::VmSpecs;
use crate::error::{Error, ExitCode, Result};
use crate::guard::decision::{self as guard, Movement, Rules, VmLabel};
use crate::guard::fleet;
use crate::pve::paths::VmId;
use crate::pve::{custom_models, vmconf};
use crate::syslog::{self, Severity};

// The hook's messages never fail it: `println!` and `eprintln!` panic when
// their stream is closed, which would turn an allowed start into a failed
// one (exit 101). What cannot be written is dropped.
macro_rules! say_out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let text = crate::app::output::for_stderr(&format!($($t)*));
        let _ = writeln!(std::io::stderr(), "{text}");
    }};
}
macro_rules! say_err_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let text = crate::app::output::for_stderr(&format!($($t)*));
        let _ = write!(std::io::stderr(), "{text}");
    }};
}

/// The phases Proxmox calls hookscripts with.
const PHASES: [&str; 4] = ["pre-start", "post-start", "pre-stop", "post-stop"];

/// How long recording a refusal (journal, state file under its lock) may
/// take once the answer is fixed; past it the process exits with the
/// refusal anyway.
const RECORD_BUDGET: Duration = Duration::from_secs(2);

/// Runs `hook`.
///
/// The deadline is armed before the first file access (the configuration
/// file included) and covers everything up to the answer, the chained
/// hookscript's lookup included; only the chained hookscript itself runs
/// outside it (its time is its own). Under the default policy any input
/// that cannot be read allows the start with a warning, under `strict` it
/// refuses; phases other than `pre-start` never fail because of our inputs.
///
/// # Errors
/// Only for invalid arguments; every other failure becomes
/// allow-with-warning or refusal according to the policy.
pub fn run(args: &HookArgs) -> Result<ExitCode> {
    // Only the guard's own re-entry through its chained hookscript ends
    // here; the variable, inherited by whatever that script starts, never
    // switches the guard off for another VM or phase (see
    // `guard::chain::is_reentry`).
    let reentry = std::env::var(crate::guard::chain::REENTRY_VAR)
        .is_ok_and(|v| crate::guard::chain::is_reentry(&v, &args.vmid, &args.phase));
    if reentry || !PHASES.contains(&args.phase.as_str()) {
        return Ok(ExitCode::Ok);
    }
    let vmid: VmId = args.vmid.parse().map_err(Error::Usage)?;
    let phase = args.phase.as_str();
    // Until the configuration file is read, only a flag or the environment
    // can say `strict`.
    let early = args.common.rules.policy.unwrap_or(Policy::Default);
    prepare_answer(args.deadline, early, vmid, phase);
    // Without its watchdog the hook reads nothing that could hang.
    if let Err(unarmed) = crate::app::deadline::arm(args.deadline) {
        return Ok(hook_unarmed::run(args, vmid, phase, &unarmed));
    }
    let (settings, problem) = Settings::resolve_lenient(&args.common);
    if settings.policy != early {
        prepare_answer(args.deadline, settings.policy, vmid, phase);
    }
    // A variable with an invalid value (left out by the parse: its option
    // took the flag, file or default) is an input problem like an
    // unreadable configuration file: the policy judges it, it never fails
    // a start on its own.
    let mut problems: Vec<String> = args
        .env_problems
        .iter()
        .map(|p| format!("{p}; the variable is ignored"))
        .collect();
    if phase != "pre-start" {
        problems.extend(problem.map(|e| format!("{e}; using the defaults")));
        for p in &problems {
            warn(vmid, phase, p);
        }
        let recorded = match phase {
            "post-start" => hook_running::post_start(&settings, &args.run_dir, vmid),
            "post-stop" => hook_running::post_stop(&settings, vmid),
            _ => None,
        };
        if let Some(w) = recorded {
            warn(vmid, phase, &w);
        }
        return Ok(chain(&settings, vmid, phase));
    }
    problems.extend(problem.map(|e| e.to_string()));
    let allowed = if problems.is_empty() {
        check(&settings, vmid)
    } else {
        unknown(&settings, vmid, &problems.join("; "))
    };
    if !allowed {
        return Ok(ExitCode::Refused);
    }
    Ok(chain(&settings, vmid, phase))
}

/// The answer the hook gives if it cannot finish (`crate::app::fallback`):
/// its deadline passes, memory runs out, or it stops on a memory fault.
/// The policy decides in `pre-start`; other phases exit 0.
fn prepare_answer(deadline: Duration, policy: Policy, vmid: VmId, phase: &str) {
    let refuse = policy == Policy::Strict && phase == "pre-start";
    let late = format!("did not finish within {}", seconds(deadline));
    let (subject, outcome) = if phase == "pre-start" {
        (
            format!("VM {vmid}: the CPU check"),
            if refuse {
                "refusing the start (policy strict)"
            } else {
                "allowing the start unchecked (policy default)"
            },
        )
    } else {
        (
            format!("VM {vmid} {phase}: reading pve-cpuguard's inputs"),
            "no chained hookscript was run",
        )
    };
    let code = if refuse {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    };
    prepare(code, &subject, &late, outcome);
}

/// [`crate::app::fallback::prepare`]: exit `code`, saying `pve-cpuguard:
/// <subject> <late, or what else happened>; <outcome>`.
fn prepare(code: ExitCode, subject: &str, late: &str, outcome: &str) {
    crate::app::fallback::prepare(
        crate::app::fallback::Answer {
            code: code.code(),
            subject,
            late,
            outcome,
        },
        &syslog::socket_path(),
    );
}

/// The answer is a refusal: from now on nothing may turn it into an allow.
/// The deadline is replaced by one of its own for recording the refusal,
/// which exits with the refusal when it passes, saying whether it was
/// counted (`counted`: called again once it is).
fn refusal_fixed(vmid: VmId, counted: bool) {
    let late = format!("did not finish within {}", seconds(RECORD_BUDGET));
    if counted {
        prepare(
            ExitCode::Refused,
            &format!("VM {vmid}: keeping the refusal's details"),
            &late,
            "it was counted; the start stays refused",
        );
    } else {
        prepare(
            ExitCode::Refused,
            &format!("VM {vmid}: recording the refusal"),
            &late,
            "it was not counted; the start stays refused",
        );
        // The watchdog runs (the hook only gets this far when it was
        // armed), so this only moves its deadline.
        let _ = crate::app::deadline::arm(RECORD_BUDGET);
    }
}

/// A warning on stderr and in the journal.
fn warn(vmid: VmId, phase: &str, why: &str) {
    let msg = format!("VM {vmid} {phase}: {why}");
    say_err!("pve-cpuguard: warning: {msg}");
    syslog::log(Severity::Warning, &msg);
}

/// The check cannot be made (an input cannot be read or trusted): the
/// policy decides. `true` when the start may go ahead.
fn unknown(settings: &Settings, vmid: VmId, why: &str) -> bool {
    judged(
        settings,
        vmid,
        &format!("cannot check the CPU: {why}"),
        "allowed unchecked",
    )
}

/// An input problem the policy judges, `what` saying which and `allowed`
/// how the start goes ahead under the default policy: `true` when it may.
fn judged(settings: &Settings, vmid: VmId, what: &str, allowed: &str) -> bool {
    let strict = settings.policy == Policy::Strict;
    // A message quoting a whole outside value (a `cpu:` line of any
    // length) is shortened before it reaches the task log and journal.
    let what = crate::error::shorten_quotes(what);
    let msg = format!(
        "VM {vmid}: {what}; {}",
        if strict {
            "refused (policy strict)".to_string()
        } else {
            format!("{allowed} (policy default)")
        }
    );
    if strict {
        refusal_fixed(vmid, false);
    }
    say_err!("pve-cpuguard: {msg}");
    syslog::log(
        if strict {
            Severity::Err
        } else {
            Severity::Warning
        },
        &msg,
    );
    if strict {
        say_out!("QEMU: pve-cpuguard: {msg}");
        let migrated_from = std::env::var("PVE_MIGRATED_FROM")
            .ok()
            .filter(|s| !s.is_empty());
        if let Some(w) = crate::guard::refusals::keep(
            &settings.state_dir,
            &vmid.to_string(),
            &settings.node,
            migrated_from.as_deref(),
            || refusal_fixed(vmid, true),
        ) {
            say_err!("pve-cpuguard: warning: {w}");
        }
    }
    !strict
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
    let unknown = |why: String| -> bool { unknown(settings, vmid, &why) };

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
    // The whole /proc/cpuinfo only when this node's record cannot stand in
    // for it (crate::cache::current): its cost grows with the thread count.
    let fleet =
        match fleet::load_checked(settings, || crate::reach::local::cpuinfo(&settings.cpuinfo)) {
            Ok(fleet) => fleet,
            Err(e) => return unknown(e.to_string()),
        };
    let Some(local) = fleet.capability(&settings.node) else {
        return unknown("this node's capability is missing".into());
    };
    // The source's record decides a live migration: one dated in the future
    // or ages ago is flagged (a warning, among the fleet's problems) and,
    // like unknown data, refused under `strict`.
    if let Some(source) = migrated_from.as_deref() {
        let dated = fleet
            .get(source)
            .and_then(|n| n.scanned_at())
            .and_then(|at| {
                crate::cache::time_problem(
                    at,
                    crate::cache::now(),
                    settings.cache_max_age.as_secs(),
                )
            });
        if let (Some(p), Policy::Strict) = (dated, settings.policy) {
            return unknown(format!("the cached record of '{source}': {p}"));
        }
    }
    // An ordinary start runs after qemu-server applied `[PENDING]`; a live
    // migration's guest runs with the main section.
    let mut specs = VmSpecs {
        next_start: vm.with_pending().launch_spec(),
        running: vm.launch_spec(),
        custom: &custom,
        cold_start: None,
    };
    // The running guest's exact CPU, as its source recorded it.
    let mut record_warning = None;
    if let Some(source) = migrated_from.as_deref() {
        record_warning =
            hook_running::apply_source_record(settings, vmid, source, &mut specs).err();
    }
    // A migration from another cluster: `lock: migrate` without
    // PVE_MIGRATED_FROM (qemu-server `vm_start_nolock`).
    let remote = migrated_from.is_none() && vm.lock.as_deref() == Some("migrate");
    let source = remote
        .then(|| guard::remote_source(settings))
        .flatten()
        .and_then(|r| r.map_err(|e| record_warning = Some(e)).ok());
    let movement = match (migrated_from.as_deref(), &source) {
        (Some(source), _) => Movement::Live { source },
        (None, _) if remote => Movement::Remote {
            record: source.as_ref().map(|(n, c)| (n.as_str(), c)),
        },
        _ => Movement::Start,
    };
    let label = VmLabel {
        vmid: vmid.to_string(),
        name: vm.name.clone(),
    };
    let rules = Rules {
        policy: settings.policy,
        vendor_change: settings.vendor_change,
    };
    let mut d = guard::decide(
        &label,
        &specs,
        &settings.node,
        local,
        movement,
        &fleet,
        rules,
    );
    d.warnings.extend(record_warning);

    if d.allow {
        if !d.warnings.is_empty() {
            say_err_raw!("{}", crate::error::shorten_quotes(&d.explain()));
            syslog::log(
                Severity::Warning,
                &crate::error::shorten_quotes(&d.one_line()),
            );
        }
    } else {
        refusal_fixed(vmid, false);
        say_err_raw!("{}", crate::error::shorten_quotes(&d.explain()));
        say_out!(
            "QEMU: pve-cpuguard: {}",
            crate::error::shorten_quotes(&d.one_line())
        );
        if let Some(w) =
            crate::guard::refusals::log(&settings.state_dir, &d, || refusal_fixed(vmid, true))
        {
            say_err!("pve-cpuguard: warning: {w}");
        }
    }
    // The process ends right after this answer: freeing every node record
    // one by one would cost more than the decision itself.
    std::mem::forget(fleet);
    d.allow
}

/// Runs the administrator's own hookscript, if one is chained for this VM;
/// its exit code counts. Its lookup is one of our inputs: when it fails,
/// `pre-start` asks the policy and other phases warn and exit 0.
fn chain(settings: &Settings, vmid: VmId, phase: &str) -> ExitCode {
    let input_failed = |why: String| -> ExitCode {
        if phase == "pre-start" {
            // The CPU check is done; what is unknown is the chain.
            let what = format!("the CPU check allowed the start, but {why}");
            if judged(settings, vmid, &what, "allowed without it") {
                ExitCode::Ok
            } else {
                ExitCode::Refused
            }
        } else {
            warn(
                vmid,
                phase,
                &format!("{why}; no chained hookscript was run"),
            );
            ExitCode::Ok
        }
    };
    let script = match crate::guard::chain::lookup(settings, vmid) {
        Ok(Some(script)) => script,
        Ok(None) => {
            crate::app::deadline::disarm();
            return ExitCode::Ok;
        }
        Err(e) => return input_failed(format!("its chained hookscript cannot be looked up: {e}")),
    };
    // The chained hookscript's time is its own.
    crate::app::deadline::disarm();
    // Proxmox VE checks a hookscript before running it and fails the start
    // (`pre-start` only; other phases warn) when it is missing or not
    // executable, or cannot be run (qemu-server
    // `PVE::GuestHelpers::check_hookscript` and `exec_hookscript` with
    // `stop_on_error` in pre-start). The administrator's own hookscript,
    // chained behind the guard, gets the same: our check is done and says
    // nothing about it.
    let missing = |why: String| -> ExitCode {
        let msg = format!(
            "VM {vmid} {phase}: the CPU check {}, but the chained hookscript {} {why}",
            if phase == "pre-start" {
                "allowed the start"
            } else {
                "was not needed"
            },
            script.display()
        );
        if phase == "pre-start" {
            let msg = format!(
                "{msg}: refused, as Proxmox VE refuses a start whose hookscript it cannot run"
            );
            say_err!(
                "pve-cpuguard: {msg}\n  note: restore the script, or change the VM's line in {} \
                 (`pve-cpuguard detach {vmid}` puts its own hookscript back)",
                crate::guard::chain::file(settings.pve.root()).display()
            );
            say_out!("QEMU: pve-cpuguard: {msg}");
            syslog::log(Severity::Err, &msg);
            ExitCode::Refused
        } else {
            warn(
                vmid,
                phase,
                &format!("the chained hookscript {} {why}; not run", script.display()),
            );
            ExitCode::Ok
        }
    };
    match std::fs::metadata(&script) {
        Ok(m) if m.is_file() => {
            use std::os::unix::fs::PermissionsExt;
            if m.permissions().mode() & 0o111 == 0 {
                return missing("is not executable".into());
            }
        }
        Ok(_) => return missing("is not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return missing("does not exist".into())
        }
        Err(e) => return missing(format!("cannot be read: {e}")),
    }
    let status = match std::process::Command::new(&script)
        .arg(vmid.to_string())
        .arg(phase)
        .env(
            crate::guard::chain::REENTRY_VAR,
            crate::guard::chain::reentry_value(vmid, phase),
        )
        .status()
    {
        Ok(status) => status,
        Err(e) => return missing(format!("cannot be run: {e}")),
    };
    // Its exit code counts: pass it through (a signal counts as failure).
    match status.code() {
        Some(0) => ExitCode::Ok,
        Some(c) => ExitCode::Passthrough(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::Refused,
    }
}

/// The default deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
