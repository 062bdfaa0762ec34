//! `pve-cpuguard audit`: every VM of the cluster against every node, from
//! the cache — where each VM could start, where it could live-migrate to,
//! and which VMs are at risk (see [`crate::guard::audit`]). No network.
//!
//! Here only the wiring: settings, the gathering
//! ([`crate::guard::audit_input`]), one rendering (text, JSON, HTML: a file
//! each; the findings in words, which all three say, in `finding.rs`) and
//! the exit code.

mod finding;
mod html;
mod html_groups;
mod json;
mod json_tables;
mod summary;
mod text;

use std::io::Write as _;

use crate::app::cli::AuditArgs;
use crate::app::output::{self, Format};
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::audit_input;

/// `audit --output json` of an audit: see docs/json.md, section audit.
pub use json::write as write_json;

/// Runs `audit`.
///
/// # Errors
/// See [`audit_input::gather`]; writing output.
pub fn run(args: &AuditArgs, format: Format) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    let g = audit_input::gather(&settings, || {
        crate::reach::local::cpuinfo(&settings.cpuinfo).ok()
    })?;
    output::warn_custom_models(&g.custom);
    let filtered = !args.vms.is_empty() || !args.on.is_empty() || !args.findings.is_empty();
    // The summaries (the text, and the page past html::PER_VM_ROWS VMs)
    // say nothing of live migrations but a node-admission finding (a node
    // new or weaker since an earlier scan that a VM can no longer take
    // live): without admissions, they do not pay for them.
    let grouped = !args.all
        && !filtered
        && match format {
            Format::Text => true,
            Format::Html => g.vms.len() > html::PER_VM_ROWS,
            Format::Json => false,
        };
    let mut a = if grouped && g.admissions.is_empty() {
        g.audit_without_live()
    } else {
        g.audit()
    };
    if filtered {
        // The filters narrow the VMs; every node stays (they are the
        // columns of each VM's answer).
        a.vms.retain(|v| {
            (args.vms.is_empty() || args.vms.contains(&v.vmid.0))
                && (args.on.is_empty() || args.on.contains(&v.node))
                && (args.findings.is_empty()
                    || v.findings
                        .iter()
                        .any(|f| args.findings.iter().any(|c| c == f.code())))
        });
    }
    let cov = audit_input::coverage(&settings, &a, g.rules);
    // 64 KiB writes: a 10 000-VM document is 8 MB (8 KiB: a thousand writes).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match format {
        Format::Json => write_json(&mut out, &a, &cov)?,
        Format::Html => out
            .write_all(html::render(&a, args.all || filtered).as_bytes())
            .map_err(Error::Output)?,
        // Through anstream: colour only on a terminal, never with NO_COLOR.
        Format::Text if args.all || filtered => {
            crate::app::output::print(&text::render(&a, &cov))?;
        }
        Format::Text => crate::app::output::print(&summary::render(&a, &cov))?,
    }
    out.flush().map_err(Error::Output)?;
    let code = if g.fleet.known().next().is_none() {
        eprint!(
            "{}",
            crate::app::output::for_stderr(&format!(
                "pve-cpuguard: no node has CPU data in {}, so no VM can be judged\n\
                 note: run `pve-cpuguard scan` (the pve-cpuguard-refresh.timer runs it hourly)\n",
                settings.cache.display()
            ))
        );
        ExitCode::Unknown
    } else if a.vms.iter().any(|v| !v.findings.is_empty()) {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    };
    // The process exits next, which frees it all at once: freeing 10 000
    // VMs' configurations and answers one allocation at a time would add
    // a tenth to the command's time.
    std::mem::forget(a);
    std::mem::forget(g);
    Ok(code)
}
