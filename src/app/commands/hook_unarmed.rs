//! The hook without its deadline (issue 21). When its watchdog thread
//! cannot be started (`crate::app::deadline::Unarmed`: a limit on
//! processes or threads, such as `RLIMIT_NPROC` or a cgroup's `pids.max`),
//! nothing the deadline was to bound may be read: not `/etc/pve`, not the
//! cache, not the chained hookscript's list. The hook answers at once by
//! its policy: `pre-start` allows the start unchecked with a warning under
//! the default policy and refuses under `strict`; other phases warn and
//! exit 0, running no chained hookscript (as when the deadline passes).
//!
//! The policy may be set in the configuration file, so in `pre-start` that
//! file alone is read (with the state directory it names, where a refusal
//! is counted), bounded by `crate::app::deadline::fatal_alarm`: should it
//! not answer within the deadline, the process ends by `SIGALRM`, which
//! Proxmox VE takes as a failed hookscript (the start is refused, whatever
//! the policy). A refusal is counted under the same bound.

use std::io::Write as _;
use std::path::PathBuf;

use crate::app::cli::HookArgs;
use crate::app::deadline::{self, Unarmed};
use crate::conf::config::{Config, Policy};
use crate::conf::settings::{SettingsArgs, DEFAULT_STATE_DIR};
use crate::error::ExitCode;
use crate::pve::paths::VmId;
use crate::syslog::{self, Severity};

/// Answers `phase` of VM `vmid` by the policy, reading nothing but the
/// configuration file (see the module header).
#[must_use]
pub fn run(args: &HookArgs, vmid: VmId, phase: &str, why: &Unarmed) -> ExitCode {
    let cause = format!("the hook's deadline cannot be armed ({why})");
    if phase != "pre-start" {
        let msg = format!(
            "VM {vmid} {phase}: {cause}; nothing was read and no chained hookscript was run"
        );
        stderr(&format!("pve-cpuguard: warning: {msg}"));
        syslog::log(Severity::Warning, &msg);
        return ExitCode::Ok;
    }
    deadline::fatal_alarm(args.deadline);
    let given = args.common.common();
    let (config, problem) = match Config::load_given(given.config.as_deref()) {
        Ok(c) => (c, None),
        Err(e) => (Config::default(), Some(e)),
    };
    let policy = Config::pick(given.policy, config.policy.as_ref(), Policy::Default);
    let pve_dir = Config::pick(given.pve_dir, config.pve_dir.as_ref(), "/etc/pve".into());
    let mut what = format!(
        "VM {vmid}: cannot check the CPU: {cause}; nothing under {} was read",
        pve_dir.display()
    );
    if let Some(e) = problem {
        what.push_str(&format!("; {e}"));
    }
    let what = crate::error::shorten_quotes(&what);
    let code = if policy == Policy::Strict {
        let msg = format!("{what}; refused (policy strict)");
        stderr(&format!("pve-cpuguard: {msg}"));
        syslog::log(Severity::Err, &msg);
        let _ = writeln!(std::io::stdout(), "QEMU: pve-cpuguard: {msg}");
        let state_dir: PathBuf = Config::pick(
            given.state_dir,
            config.state_dir.as_ref(),
            DEFAULT_STATE_DIR.into(),
        );
        let node = given
            .node
            .filter(|n| !n.is_empty())
            .unwrap_or_else(crate::pve::paths::host_name);
        let source = std::env::var("PVE_MIGRATED_FROM")
            .ok()
            .filter(|s| !s.is_empty());
        let vm = vmid.to_string();
        if let Some(w) =
            crate::guard::refusals::keep(&state_dir, &vm, &node, source.as_deref(), || ())
        {
            stderr(&format!("pve-cpuguard: warning: {w}"));
        }
        ExitCode::Refused
    } else {
        let msg = format!("{what}; allowed unchecked (policy default)");
        stderr(&format!("pve-cpuguard: {msg}"));
        syslog::log(Severity::Warning, &msg);
        ExitCode::Ok
    };
    deadline::cancel_alarm();
    code
}

/// A line on stderr; one that cannot be written is dropped (the hook never
/// fails because its stderr is closed).
fn stderr(line: &str) {
    let text = crate::app::output::for_stderr(line);
    let _ = writeln!(std::io::stderr(), "{text}");
}
