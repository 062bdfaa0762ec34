//! pve-cpuguard: safe live migration across mixed CPU generations in
//! Proxmox VE clusters.
//!
//! The pipeline (see DESIGN in the README): a VM's configuration resolves to
//! a [`requirement::Requirement`]; a node's /proc/cpuinfo (or cached record)
//! to a [`capability::Capability`]; [`verdict::judge`] decides, purely.
//! Commands in [`commands`] only gather inputs and report.

pub mod capability;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cpuconf;
pub mod cpudata;
pub mod cpuinfo;
pub mod custom_models;
pub mod error;
pub mod flags;
pub mod kvm_probe;
pub mod level;
pub mod models;
pub mod output;
pub mod qmp;
pub mod requirement;
pub mod verdict;
pub mod vmconf;

use cli::{Cli, Command};
use error::{ExitCode, Result};

/// Runs one parsed command line.
///
/// # Errors
/// Any [`error::Error`]; the caller maps it to its exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Inspect(a) => commands::inspect::run(a, cli.output),
        Command::WhyNot(a) => commands::why_not::run(a, cli.output),
    }
}
