//! Output formats shared by every command.

use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;

use crate::error::{Error, Result};

/// `--output text|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON with stable field names, for tools (fields: docs/json.md).
    Json,
    /// One self-contained HTML page (`audit` only).
    Html,
}

impl Format {
    /// The name as given on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// Refuses an `--output` a command cannot honour, instead of ignoring it:
/// `metrics` writes Prometheus' text format, `migrate` becomes `qm migrate`,
/// `hook` answers Proxmox VE through its exit status, and only `audit` has
/// an HTML page.
///
/// # Errors
/// [`Error::Usage`] naming the command and what to do instead.
pub fn check_applies(command: &str, format: Format) -> Result<()> {
    let why = match (command, format) {
        (_, Format::Text) => return Ok(()),
        ("metrics", _) => "it writes Prometheus' text exposition format",
        ("migrate", _) => "it runs `qm migrate`, whose output is qm's own",
        ("hook", _) => "Proxmox VE reads only its exit status",
        ("generate", _) => "it writes man pages and completions",
        (_, Format::Json) => return Ok(()),
        ("audit", Format::Html) => return Ok(()),
        (_, Format::Html) => "only `audit` has an HTML page",
    };
    let instead = match command {
        "migrate" => "`pve-cpuguard check VMID --output json` answers the same question as JSON",
        "hook" => "`pve-cpuguard check VMID --output json` answers the same question as JSON",
        "metrics" => "`pve-cpuguard status --output json` and `audit --output json` give the same data as JSON",
        _ => "use `--output text` or `--output json`",
    };
    Err(Error::Usage(format!(
        "--output {} does not apply to `{command}`: {why}\nnote: drop --output; {instead}",
        format.name()
    )))
}

/// Writes text to stdout, mapping a closed pipe to an error instead of a panic.
///
/// # Errors
/// Write failures.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// Writes pretty JSON and a newline to stdout.
///
/// # Errors
/// Write failures.
pub fn print_json(value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    print(&text)
}
