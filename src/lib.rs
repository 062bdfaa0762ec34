//! pve-cpuguard: safe live migration across mixed CPU generations in
//! Proxmox VE clusters.
//!
//! The pipeline (see DESIGN in the README): a VM's configuration resolves to
//! a [`requirement::Requirement`]; a node's /proc/cpuinfo (or cached record)
//! to a [`capability::Capability`]; [`verdict::judge`] decides, purely.
//! Commands in [`commands`] only gather inputs and report.

pub mod audit;
pub mod base64;
pub mod baseline;
pub mod cache;
pub mod capability;
pub mod chain;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod corosync;
pub mod cpuconf;
pub mod cpudata;
pub mod cpuinfo;
pub mod custom_models;
pub mod deadline;
pub mod error;
pub mod flags;
pub mod fleet;
pub mod guard;
pub mod ha;
pub mod known_hosts;
pub mod kvm_probe;
pub mod level;
pub mod members;
pub mod metrics;
pub mod models;
pub mod output;
pub mod pve;
pub mod qmp;
pub mod refusals;
pub mod requirement;
pub mod rollout;
pub mod scan;
pub mod section_config;
pub mod settings;
pub mod sha1;
pub mod ssh;
pub mod storage;
pub mod syslog;
pub mod verdict;
pub mod vmconf;
pub mod word_list;

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
        Command::Hook(a) => commands::hook::run(a),
        Command::Migrate(a) => commands::migrate::run(a),
        Command::Check(a) => commands::check::run(a, cli.output),
        Command::Audit(a) => commands::audit::run(a, cli.output),
        Command::Attach(a) => commands::attach::attach(a, cli.output),
        Command::Detach(a) => commands::attach::detach(a, cli.output),
        Command::Metrics(a) => commands::metrics::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Scan(a) => commands::scan::run(a, cli.output),
        Command::Status(a) => commands::status::run(a, cli.output),
        Command::Baseline(a) => commands::baseline::run(a, cli.output),
    }
}
