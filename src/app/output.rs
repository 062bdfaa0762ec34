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
    /// JSON with stable field names, for tools.
    Json,
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
