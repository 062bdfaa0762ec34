//! The application shell: the command line, output, the hook's deadline
//! and its answer when it cannot finish (`fallback`), and the commands
//! themselves.
//!
//! Rule: may use every layer; nothing below may use it. Commands gather
//! inputs, call the layers below, and report.

pub mod cli;
pub mod cli_settings;
pub mod commands;
pub mod deadline;
pub mod entry;
pub mod fallback;
pub mod gather;
pub mod oom;
pub mod output;
pub mod paint;
pub mod usage;

use crate::error::{ExitCode, Result};
use cli::{Cli, Command};

/// Runs one parsed command line.
///
/// # Errors
/// Any [`crate::error::Error`]; the caller maps it to its exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    output::check_applies(command_name(&cli.command), cli.output)?;
    match &cli.command {
        Command::Inspect(a) => commands::inspect::run(a, cli.output),
        Command::WhyNot(a) => commands::why_not::run(a, cli.output),
        Command::Hook(a) => commands::hook::run(a),
        Command::Migrate(a) => commands::migrate::run(a),
        Command::Check(a) => commands::check::run(a, cli.output),
        Command::Audit(a) => commands::audit::run(a, cli.output),
        Command::Attach(a) => commands::attach::attach(a, cli.output),
        Command::Detach(a) => commands::attach::detach(a, cli.output),
        Command::HaRules(a) => commands::ha_rules::run(a, cli.output),
        Command::ProxlbTags(a) => commands::proxlb_tags::run(a, cli.output),
        Command::Plan(a) => commands::plan::run(a, cli.output),
        Command::Metrics(a) => commands::metrics::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Scan(a) => commands::scan::run(a, cli.output),
        Command::Publish(a) => commands::publish::run(a, cli.output),
        Command::Status(a) => commands::status::run(a, cli.output),
        Command::Baseline(a) => commands::baseline::run(a, cli.output),
    }
}

/// Takes the invalid `PVE_CPUGUARD_*` variables of the parse
/// ([`usage::parse_lenient`]): the hook judges them by its policy like any
/// other input problem; for every other command they are an error naming
/// the variable.
///
/// # Errors
/// The first invalid variable, for a command other than `hook`.
pub fn take_env_problems(cli: &mut Cli, problems: Vec<usage::EnvProblem>) -> Result<()> {
    let name = command_name(&cli.command);
    match &mut cli.command {
        Command::Hook(a) => {
            a.env_problems = problems;
            Ok(())
        }
        _ => match problems.first() {
            Some(p) => Err(p.error("pve-cpuguard", name)),
            None => Ok(()),
        },
    }
}

/// The subcommand's name, as typed.
#[must_use]
pub fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Inspect(_) => "inspect",
        Command::WhyNot(_) => "why-not",
        Command::Hook(_) => "hook",
        Command::Migrate(_) => "migrate",
        Command::Check(_) => "check",
        Command::Audit(_) => "audit",
        Command::Attach(_) => "attach",
        Command::Detach(_) => "detach",
        Command::HaRules(_) => "ha-rules",
        Command::ProxlbTags(_) => "proxlb-tags",
        Command::Plan(_) => "plan",
        Command::Metrics(_) => "metrics",
        Command::Generate(_) => "generate",
        Command::Scan(_) => "scan",
        Command::Publish(_) => "publish",
        Command::Status(_) => "status",
        Command::Baseline(_) => "baseline",
    }
}
