//! Parsing the command line and the `PVE_CPUGUARD_*` variables.
//!
//! Usage errors show only what the user typed: clap counts a value taken
//! from the environment (`PVE_CPUGUARD_*`) as given, so its usage line
//! after an error listed such options as if they were required (`Usage:
//! pve-cpuguard attach --storage <STORAGE> --pve-dir <DIR> … --all`). The
//! error is therefore rendered again from a copy of the command line
//! definition without environment variables; the values themselves still
//! come from the environment when parsing succeeds.
//!
//! A variable is not a flag: clap reports an invalid value from the
//! environment as if the user had typed the option (`invalid value
//! 'Strict' for '--policy <POLICY>'`), which names a flag nobody typed,
//! and in the hook it failed every VM start. So every variable is checked
//! on its own first ([`parse_lenient`]), against the very value parser of
//! its option; an invalid one is left out of the parse and reported as an
//! [`EnvProblem`] naming the variable. The hook judges such a problem by
//! its policy, like any other input it cannot read; every other command
//! stops with it (exit 2).

use std::ffi::OsStr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, Parser};

use crate::error::{quoted, Error};

/// A `PVE_CPUGUARD_*` variable whose value its option does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable.
    pub variable: String,
    /// What is wrong with its value (`is empty`, `invalid value 'Strict'
    /// (valid: default, strict)`).
    pub problem: String,
}

impl std::fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment variable {}: {}",
            self.variable, self.problem
        )
    }
}

impl EnvProblem {
    /// The error of a command other than the hook: the variable, what is
    /// wrong, and what to do.
    #[must_use]
    pub fn error(&self, binary: &str, command: &str) -> Error {
        Error::Usage(format!(
            "{self}\nnote: correct {var} or unset it (`{binary} help {command}` lists what each \
             variable accepts), then run the command again",
            var = self.variable
        ))
    }
}

/// Parses the command line like [`Parser::parse`], exiting on usage
/// errors with a usage line free of environment-provided options.
/// Variables whose values are invalid are left out (their options take
/// the flag, the configuration file or the default) and returned: those
/// the selected command reads and no flag overrides.
#[must_use]
pub fn parse_lenient<P: Parser>() -> (P, Vec<EnvProblem>) {
    let mut cmd = P::command();
    let mut bad = Vec::new();
    find_invalid(&cmd, &mut Vec::new(), &mut bad);
    for b in &bad {
        cmd = without_env_of(cmd, &b.path, &b.id);
    }
    let matches = match cmd.try_get_matches() {
        Ok(m) => m,
        Err(e) => exit_with::<P>(&e),
    };
    let problems = selected(&matches, &bad);
    match P::from_arg_matches(&matches) {
        Ok(p) => (p, problems),
        Err(e) => exit_wrapped(&e.format(&mut P::command())),
    }
}

/// Exits with clap's error, rendered without environment-provided options
/// when the plain definition fails the same way.
fn exit_with<P: Parser>(e: &clap::Error) -> ! {
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !shown {
        // The same parse without the environment: when it fails the same
        // way, its message is the one to show.
        if let Err(plain) = without_env(P::command()).try_get_matches() {
            if plain.kind() == e.kind() {
                exit_wrapped(&plain);
            }
        }
    }
    exit_wrapped(e)
}

/// Exits with clap's error or help, an error's lines wrapped to 100
/// columns like every other message (clap's own list of possible values
/// is one line however long).
fn exit_wrapped(e: &clap::Error) -> ! {
    if !e.use_stderr() {
        e.exit();
    }
    let text = crate::app::output::for_stderr(&with_note(&e.render().to_string()));
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    std::process::exit(e.exit_code());
}

/// clap's message in the form of every other error: `pve-cpuguard: error:`
/// first, and a `note:` last that names the help to read (for the command
/// given, when one was), instead of clap's "For more information, try
/// '--help'.".
fn with_note(rendered: &str) -> String {
    let body = rendered
        .trim_end()
        .trim_end_matches("For more information, try '--help'.")
        .trim_end();
    let body = body.strip_prefix("error: ").unwrap_or(body);
    let command = std::env::args().skip(1).find(|a| {
        <crate::app::cli::Cli as clap::CommandFactory>::command()
            .get_subcommands()
            .any(|s| s.get_name() == a && !s.is_hide_set())
    });
    let note = match command {
        Some(c) => format!("note: `pve-cpuguard help {c}` lists its options and their values"),
        None => "note: `pve-cpuguard help` lists the commands and options".to_string(),
    };
    format!("pve-cpuguard: error: {body}\n{note}\n")
}

/// An option whose variable is set to a value the option rejects.
struct Invalid {
    /// The subcommands leading to the option (empty: the top level).
    path: Vec<String>,
    /// The option's id.
    id: String,
    problem: EnvProblem,
}

/// Checks every set variable of `cmd` and its subcommands against its
/// option's value parser.
fn find_invalid(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<Invalid>) {
    for arg in cmd.get_arguments() {
        let Some(var) = arg.get_env().and_then(OsStr::to_str) else {
            continue;
        };
        let Some(value) = std::env::var_os(var) else {
            continue;
        };
        if let Some(problem) = check(arg, var, &value) {
            out.push(Invalid {
                path: path.clone(),
                id: arg.get_id().to_string(),
                problem: EnvProblem {
                    variable: var.to_string(),
                    problem,
                },
            });
        }
    }
    for sub in cmd.get_subcommands() {
        path.push(sub.get_name().to_string());
        find_invalid(sub, path, out);
        path.pop();
    }
}

/// What is wrong with `value` for `arg`, if anything: clap parses the
/// variable alone, exactly as it would for the whole command line (same
/// value parser, action and case rule), in a command that has only it.
fn check(arg: &Arg, var: &str, value: &OsStr) -> Option<String> {
    let mut alone = Arg::new("value")
        .long("value")
        .env(var.to_string())
        .action(arg.get_action().clone())
        .value_parser(arg.get_value_parser().clone())
        .ignore_case(arg.is_ignore_case_set());
    if let Some(n) = arg.get_num_args() {
        alone = alone.num_args(n);
    }
    let e = Command::new("env")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from(Vec::<&str>::new())
        .err()?;
    let Some(text) = value.to_str() else {
        return Some("is not valid UTF-8".into());
    };
    if text.is_empty() {
        return Some("is empty".into());
    }
    let valid = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let why = std::error::Error::source(&e).map(ToString::to_string);
    Some(match (valid.is_empty(), why) {
        (false, _) => format!("invalid value '{}' (valid: {valid})", quoted(text)),
        (true, Some(why)) => format!("invalid value '{}': {why}", quoted(text)),
        (true, None) => format!("invalid value '{}'", quoted(text)),
    })
}

/// `cmd` with the variable of the option `id` under `path` removed.
fn without_env_of(cmd: Command, path: &[String], id: &str) -> Command {
    match path.split_first() {
        None => cmd.mut_arg(id, |a| a.env(None)),
        Some((sub, rest)) => cmd.mut_subcommand(sub, |s| without_env_of(s, rest, id)),
    }
}

/// The invalid variables that matter: of an option of the selected
/// command (or a command above it), not overridden by its flag.
fn selected(matches: &ArgMatches, bad: &[Invalid]) -> Vec<EnvProblem> {
    let mut out = Vec::new();
    let mut level = matches;
    let mut path: Vec<String> = Vec::new();
    loop {
        for b in bad.iter().filter(|b| b.path == path) {
            if level.value_source(&b.id) != Some(ValueSource::CommandLine) {
                out.push(b.problem.clone());
            }
        }
        match level.subcommand() {
            Some((name, sub)) => {
                path.push(name.to_string());
                level = sub;
            }
            None => return out,
        }
    }
}

/// `cmd` and its subcommands with no argument read from the environment.
fn without_env(cmd: Command) -> Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.mut_args(|a| a.env(None));
    for name in subs {
        cmd = cmd.mut_subcommand(name, without_env);
    }
    cmd
}
