//! `pve-cpuguard ha-rules`: strict HA node-affinity rules from the cache
//! (see [`crate::guard::ha_rules`] for what the rules say and why). Reads
//! `ha/resources.cfg` and `ha/rules.cfg`, plans, and with `--apply` runs
//! `ha-manager` directly — never through a shell — one call at a time,
//! stopping at the first failure (later calls rely on the order).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::cli::HaRulesArgs;
use crate::app::commands::shell_text::shell_lines_indented;
use crate::app::output::{self, Format};
use crate::conf::settings::Settings;
use crate::error::{ExitCode, Result};
use crate::guard::audit_input;
use crate::guard::ha_rules::{self, Call, Plan};
use crate::pve::{ha_rules as rules_cfg, members};
use crate::reach::process::{run_bounded, Ended, Limits};
use crate::syslog::{self, Severity};

/// How long one `ha-manager` or `qm set` call may take (each writes a
/// file of the cluster file system under its lock; a hung pmxcfs must not
/// hang the refresh service).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a run found and did.
pub struct Outcome {
    /// The plan.
    pub plan: Plan,
    /// Calls that ran, with their error if they failed.
    pub ran: Vec<(Call, Option<String>)>,
    /// Why nothing was applied although asked to, if so.
    pub refused: Option<String>,
    /// Lines for the administrator.
    pub notes: Vec<String>,
    /// Whether any node has data.
    pub has_data: bool,
}

/// A word as a shell would need it, for showing commands only (nothing is
/// ever run through a shell).
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',' | ':' | '/' | '=')
        })
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A command line for display.
#[must_use]
pub fn command_line(binary: &Path, args: &[String]) -> String {
    std::iter::once(quote(&binary.display().to_string()))
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs one call through the bounded runner (its own process group,
/// killed whole at [`CALL_TIMEOUT`], its output bounded): every Proxmox VE
/// tool the commands run unattended goes through here (`ha-manager`, and
/// `qm set` for `attach`, `detach` and `scan`'s `auto_attach`).
///
/// # Errors
/// The call could not start, failed, printed too much or timed out: the
/// command line and its stderr.
pub(crate) fn run_call(binary: &Path, args: &[String]) -> std::result::Result<(), String> {
    let line = command_line(binary, args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let limits = Limits {
        timeout: CALL_TIMEOUT,
        // `ha-manager rules add|set` prints nothing when it works; its
        // output is only kept to be dropped, within a bound.
        max_stdout: 1 << 20,
        max_stderr: 16 << 10,
    };
    let out = run_bounded(binary, &args, b"", limits)
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match (out.ended, out.status) {
        (Ended::Exited, Some(st)) if st.success() => Ok(()),
        (Ended::Exited, Some(st)) => Err(format!(
            "`{line}` failed ({st}){}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        )),
        (Ended::TooMuchOutput, _) => Err(format!(
            "`{line}` printed more than {} bytes (killed)",
            limits.max_stdout
        )),
        _ => Err(format!(
            "`{line}` did not finish within {}s (killed)",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

/// Plans and, with `apply`, runs the calls. Shared with `scan`.
///
/// # Errors
/// Unreadable or malformed inputs (VM configs are reported per VM).
pub fn plan_and_apply(settings: &Settings, binary: &Path, apply: bool) -> Result<Outcome> {
    let g = audit_input::gather(settings, || {
        crate::reach::local::cpuinfo(&settings.cpuinfo).ok()
    })?;
    crate::app::output::warn_cache(&g.fleet);
    let rules = g.rules;
    let a = g.audit();
    let allowed = ha_rules::allowed(&a, rules);
    let existing = rules_cfg::read(settings.pve.root())?;
    let plan = ha_rules::plan(&allowed, &existing);
    let mut notes = Vec::new();
    for (vmid, why) in &allowed.unjudged {
        notes.push(format!(
            "VM {vmid}: cannot be judged ({why}); its rule is left as it is"
        ));
    }
    for (vmid, p) in &allowed.vms {
        let set = &p.start;
        if !plan.in_admin_rule.contains_key(vmid) && set.len() == 1 && allowed.nodes.len() > 1 {
            notes.push(format!(
                "VM {vmid}: its CPU starts on no other node than {}: HA cannot recover it elsewhere; give it a CPU type every node supports (`pve-cpuguard audit`)",
                set.iter().next().map_or("?", String::as_str)
            ));
        }
    }
    let blind: Vec<&str> = g
        .fleet
        .nodes
        .iter()
        .filter(|n| n.capability().is_none())
        .map(|n| n.name.as_str())
        .collect();
    if !blind.is_empty() {
        notes.push(format!(
            "no CPU data for {}: {} as the hook decides under policy {}; run `pve-cpuguard scan`",
            blind.join(", "),
            if rules.policy == crate::conf::config::Policy::Strict {
                "left out of every rule"
            } else {
                "counted as allowed"
            },
            if rules.policy == crate::conf::config::Policy::Strict {
                "strict"
            } else {
                "default"
            }
        ));
    }
    let has_data = g.fleet.known().next().is_some();
    let mut out = Outcome {
        plan,
        ran: Vec::new(),
        refused: None,
        notes,
        has_data,
    };
    if !apply || out.plan.calls.is_empty() {
        return Ok(out);
    }
    if !has_data {
        out.refused = Some("the cache holds no node data: run `pve-cpuguard scan` first".into());
        return Ok(out);
    }
    let members_path = settings.pve.root().join(".members");
    match members::quorate(&members_path)? {
        Some(true) => {}
        Some(false) => {
            out.refused = Some(format!(
                "the cluster is not quorate ({}): HA rules are not changed without quorum; run again once it is",
                members_path.display()
            ));
            return Ok(out);
        }
        None => {
            out.refused = Some(format!(
                "{} does not say whether the cluster is quorate: HA rules are not changed without quorum",
                members_path.display()
            ));
            return Ok(out);
        }
    }
    for call in out.plan.calls.clone() {
        let args = call.argv();
        let result = run_call(binary, &args);
        let line = command_line(binary, &args);
        match &result {
            Ok(()) => syslog::log(Severity::Notice, &format!("ha-rules: ran {line}")),
            Err(e) => syslog::log(Severity::Warning, &format!("ha-rules: {e}")),
        }
        let failed = result.is_err();
        out.ran.push((call, result.err()));
        if failed {
            break;
        }
    }
    Ok(out)
}

fn conflict_text(c: &ha_rules::Conflict, binary: &Path) -> String {
    let mut s = format!(
        "conflict: administrator's rule '{}' (rules.cfg:{})",
        c.id, c.line
    );
    let mut parts = Vec::new();
    for (vmid, nodes) in &c.bad {
        parts.push(format!(
            "lets HA pick {} for VM {vmid}, whose CPU cannot start there",
            nodes.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    if c.not_strict {
        parts.push("is not strict, so HA may fall back to any node".into());
    }
    let _ = write!(s, " {}", parts.join("; and "));
    match &c.fix {
        Some(fix) => {
            let _ = write!(
                s,
                "\nnote: change it with:\n{}",
                shell_lines_indented("  ", binary, fix).trim_end()
            );
        }
        None => s.push_str("\nnote: no node of the rule runs all its VMs: split the rule, or give its VMs a CPU type every node supports (`pve-cpuguard audit`)"),
    }
    s
}

/// Runs `ha-rules`.
///
/// # Errors
/// See [`plan_and_apply`]; writing output.
pub fn run(args: &HaRulesArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let binary = &args.ha_manager.binary;
    let apply = args.apply && !args.dry_run;
    let o = plan_and_apply(&settings, binary, apply)?;
    let p = &o.plan;
    let failed = o.ran.iter().any(|(_, e)| e.is_some());
    let pending = !p.calls.is_empty() && (!apply || o.refused.is_some());
    if format == Format::Json {
        output::print_json(&json!({
            "rules": p.rules.iter().map(|d| json!({
                "id": d.id,
                "resources": d.resources.iter().map(|v| format!("vm:{v}")).collect::<Vec<_>>(),
                "nodes": d.nodes.keys().collect::<Vec<_>>(),
                "priorities": d.nodes.iter()
                    .filter_map(|(n, p)| p.map(|p| (n.clone(), json!(p))))
                    .collect::<serde_json::Map<String, Value>>(),
            })).collect::<Vec<_>>(),
            "calls": p.calls.iter().map(|c| {
                let mut argv = vec![binary.display().to_string()];
                argv.extend(c.argv());
                argv
            }).collect::<Vec<_>>(),
            "applied": apply && o.refused.is_none(),
            "ran": o.ran.iter().map(|(c, e)| json!({"argv": c.argv(), "error": e})).collect::<Vec<_>>(),
            "refused": o.refused,
            "conflicts": p.conflicts.iter().map(|c| json!({
                "id": c.id,
                "line": c.line,
                "bad": c.bad.iter().map(|(v, n)| (v.to_string(), json!(n))).collect::<serde_json::Map<String, Value>>(),
                "not_strict": c.not_strict,
                "fix": c.fix.as_ref().map(|f| {
                    let mut argv = vec![binary.display().to_string()];
                    argv.extend(f.iter().cloned());
                    argv
                }),
            })).collect::<Vec<_>>(),
            "in_admin_rule": p.in_admin_rule.iter().map(|(v, r)| (v.to_string(), json!(r))).collect::<serde_json::Map<String, Value>>(),
            "notes": o.notes,
        }))?;
    } else {
        let mut s = String::new();
        if args.dry_run {
            s.push_str("dry run: nothing is changed\n");
        }
        if !o.has_data {
            // Nothing is known of any node: "every node" would be a claim
            // about nodes nobody has read.
            s.push_str("no rule worked out: the cache holds no node data\nnote: run `pve-cpuguard scan` first\n");
        } else if p.rules.is_empty() {
            s.push_str("no rule needed: every HA-managed VM outside administrators' rules can start\n    and live-migrate on every node\n");
        }
        for d in &p.rules {
            // A long list of VMs or nodes wraps under the rule's id.
            let line = format!(
                "{}: {} -> {}",
                d.id,
                d.resources
                    .iter()
                    .map(|v| format!("vm:{v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                d.nodes_value()
            );
            s.push_str(&output::wrap(&format!("{line}\n"), output::WIDTH));
        }
        for (vmid, rule) in &p.in_admin_rule {
            let _ = writeln!(
                s,
                "VM {vmid}: in the administrator's rule '{rule}': left alone"
            );
        }
        if p.calls.is_empty() {
            s.push_str("rules.cfg is current: no call needed\n");
        } else if apply && o.refused.is_none() {
            for (c, e) in &o.ran {
                match e {
                    None => {
                        s.push_str("ran:\n");
                        s.push_str(&shell_lines_indented("  ", binary, &c.argv()));
                    }
                    Some(e) => {
                        s.push_str(&output::for_stderr(&format!("error: {e}\n")));
                    }
                }
            }
            let skipped = p.calls.len() - o.ran.len();
            if skipped > 0 {
                s.push_str(&output::wrap(&format!("note: {skipped} later call(s) not run after the failure; run `pve-cpuguard ha-rules --apply` again once it is fixed\n"), output::WIDTH));
            }
        } else {
            let _ = writeln!(
                s,
                "{}:",
                if args.dry_run {
                    "would run"
                } else {
                    "pending (run with --apply)"
                }
            );
            for c in &p.calls {
                s.push_str(&shell_lines_indented("  ", binary, &c.argv()));
            }
        }
        if let Some(why) = &o.refused {
            s.push_str(&output::wrap(&format!("refused: {why}\n"), output::WIDTH));
        }
        for c in &p.conflicts {
            // The prose wraps; the command to copy is in shell lines.
            for l in conflict_text(c, binary).lines() {
                if l.starts_with("  ") {
                    let _ = writeln!(s, "{l}");
                } else {
                    s.push_str(&output::wrap(&format!("{l}\n"), output::WIDTH));
                }
            }
        }
        for n in &o.notes {
            let _ = writeln!(s, "{}", output::wrap(&format!("note: {n}"), output::WIDTH));
        }
        output::print(&s)?;
    }
    Ok(if !o.has_data {
        ExitCode::Unknown
    } else if failed || pending || !p.conflicts.is_empty() {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_only_what_needs_it() {
        let args = vec!["rules".to_string(), "--comment".into(), "a b's".into()];
        assert_eq!(
            command_line(Path::new("/usr/sbin/ha-manager"), &args),
            r"/usr/sbin/ha-manager rules --comment 'a b'\''s'"
        );
    }
}
