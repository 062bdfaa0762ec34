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
    /// JSON with stable field names, for tools (fields:
    /// /usr/share/doc/pve-cpuguard/docs/json.md).
    Json,
    /// One self-contained HTML page (`audit` and `plan` only).
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
/// `hook` answers Proxmox VE through its exit status, and only `audit` and `plan` have
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
        ("audit" | "plan", Format::Html) => return Ok(()),
        (_, Format::Html) => "only `audit` and `plan` have an HTML page",
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

/// Writes human text to stdout, mapping a closed pipe to an error instead
/// of a panic. Prose is wrapped by the command ([`print_wrapped`]); lines
/// that are commands to copy (`qm set …`, `ha-manager …`) and ProxCLMC's
/// lines are printed whole.
///
/// # Errors
/// Write failures.
pub fn print(text: &str) -> Result<()> {
    print_raw(text)
}

/// [`print`] with every line of prose wrapped to [`WIDTH`] columns; a line
/// that is a command to copy (it starts with `qm`, `ha-manager`, `pvesh`
/// or `pve-cpuguard` after its indentation) stays whole.
///
/// # Errors
/// Write failures.
pub fn print_wrapped(text: &str) -> Result<()> {
    print_raw(&wrap_prose(text, |_| true))
}

/// [`print`] with only notes and warnings wrapped (`note:`, `warning:`,
/// `no …` lines): for outputs whose other lines are one record each, read
/// by line (`attach`, `ha-rules`).
///
/// # Errors
/// Write failures.
pub fn print_notes_wrapped(text: &str) -> Result<()> {
    print_raw(&wrap_prose(text, |first| {
        matches!(first, "note:" | "warning:" | "no")
    }))
}

fn wrap_prose(text: &str, wrap_this: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.split_inclusive('\n') {
        let first = line.split_whitespace().next().unwrap_or("");
        let command = matches!(first, "qm" | "ha-manager" | "pvesh" | "pve-cpuguard");
        if command || !wrap_this(first) {
            out.push_str(line);
        } else {
            out.push_str(&wrap(line, WIDTH));
        }
    }
    out
}

/// Writes text to stdout as it is (JSON, Prometheus text).
///
/// # Errors
/// Write failures.
pub fn print_raw(text: &str) -> Result<()> {
    // Strips the colour of [`crate::app::paint`] unless stdout is a
    // terminal and NO_COLOR is unset.
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

/// A message for stderr, wrapped to [`WIDTH`] columns.
#[must_use]
pub fn for_stderr(text: &str) -> String {
    wrap(text, WIDTH)
}

/// Warns on stderr about the cache's problems (corrupt, dated in the
/// future, ages old: `Fleet::warnings`), as `audit` and `metrics` do: a
/// command judging with a broken cache must say so.
pub fn warn_cache(fleet: &crate::guard::fleet::Fleet) {
    for p in fleet.warnings() {
        eprintln!(
            "{}",
            for_stderr(&format!("pve-cpuguard: warning: cache: {p}"))
        );
    }
}

/// Warns on stderr about cpu-models.conf lines set aside and models that
/// cannot be read (`crate::pve::custom_models::parse`), wrapped to the
/// terminal's width: the command goes on without them.
pub fn warn_custom_models(custom: &crate::cpu::custom_models::CustomModels) {
    for w in &custom.ignored {
        eprintln!(
            "{}",
            for_stderr(&format!(
                "pve-cpuguard: warning: {w}; the line is ignored, as Proxmox VE ignores it"
            ))
        );
    }
    for (name, why) in &custom.unreadable {
        eprintln!(
            "{}",
            for_stderr(&format!(
                "pve-cpuguard: warning: {why}; VMs with cpu: custom-{name} cannot be judged\n\
                 note: correct the model in cpu-models.conf (Datacenter → Custom CPU Models)"
            ))
        );
    }
}

/// Writes pretty JSON and a newline to stdout.
///
/// # Errors
/// Write failures.
pub fn print_json(value: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    print_raw(&text)
}

/// The width human output fits in.
pub const WIDTH: usize = 100;

/// Wraps every line of `text` longer than `width` columns at spaces, each
/// continuation indented to where the line's value starts: after the first
/// gap of two or more spaces following the label (`  name      value`,
/// `Disagree:   …`), else after the leading spaces plus four. A word longer
/// than a line stays whole.
#[must_use]
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if body.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        let lead = body.len() - body.trim_start().len();
        let indent = value_column(body)
            .filter(|c| *c <= width / 2)
            .unwrap_or(lead + 4);
        let pad = " ".repeat(indent);
        let mut col = 0;
        let mut first = true;
        // Pieces of one long word (`joined`) follow each other without a
        // space when they share a line.
        let pieces = body[lead..].split(' ').flat_map(|w| {
            split_long(w, width.saturating_sub(indent).max(1))
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, i > 0))
        });
        for (word, joined) in pieces {
            let w = word.chars().count();
            let gap = usize::from(!joined);
            if first {
                out.push_str(&body[..lead]);
                out.push_str(word);
                col = lead + w;
                first = false;
            } else if col + gap + w > width && col > indent {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(word);
                col = indent + w;
            } else {
                if !joined {
                    out.push(' ');
                }
                out.push_str(word);
                col += gap + w;
            }
        }
        out.push_str(nl);
    }
    out
}

/// A word longer than a line split after its `;` or `,` (a tag or flag
/// list), so that it can wrap; other words stay whole.
fn split_long(word: &str, room: usize) -> Vec<&str> {
    if word.chars().count() <= room {
        return vec![word];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in word.char_indices() {
        if (c == ';' || c == ',') && i + 1 - start >= room / 2 {
            parts.push(&word[start..=i]);
            start = i + 1;
        }
    }
    parts.push(&word[start..]);
    parts
}

/// Where the value of `label  value` starts: the end of the first run of
/// two or more spaces after some non-space text.
fn value_column(line: &str) -> Option<usize> {
    let lead = line.len() - line.trim_start().len();
    let rest = &line[lead..];
    let gap = rest.find("  ")?;
    let after = rest[gap..].find(|c: char| c != ' ')?;
    Some(lead + gap + after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_short_lines_and_indents_continuations_under_the_value() {
        assert_eq!(wrap("a  b\n", 100), "a  b\n");
        let long = format!(
            "  x86-64-v4  no: missing flags: {}",
            ["avx512f"; 20].join(", ")
        );
        let w = wrap(&format!("{long}\n"), 60);
        for l in w.lines() {
            assert!(l.len() <= 60, "{l}");
        }
        assert!(
            w.lines().skip(1).all(|l| l.starts_with(&" ".repeat(13))),
            "{w}"
        );
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            long.split_whitespace().collect::<Vec<_>>()
        );
    }

    #[test]
    fn wrap_never_splits_a_word() {
        let word = "y".repeat(150);
        assert_eq!(wrap(&format!("{word}\n"), 100), format!("{word}\n"));
    }
}
