//! Usage errors that show only what the user typed.
//!
//! clap counts a value taken from the environment (`PVE_CPUGUARD_*`) as
//! given, so its usage line after an error listed such options as if they
//! were required (`Usage: pve-cpuguard attach --storage <STORAGE> --pve-dir
//! <DIR> … --all`). The error is therefore rendered again from a copy of
//! the command line definition without environment variables; the values
//! themselves still come from the environment when parsing succeeds.

use clap::error::ErrorKind;
use clap::{Command, Parser};

/// Parses the command line like [`Parser::parse`], exiting on errors with a
/// usage line free of environment-provided options.
#[must_use]
pub fn parse<P: Parser>() -> P {
    match P::try_parse() {
        Ok(p) => p,
        Err(e) => {
            let shown = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !shown {
                // The same parse without the environment: when it fails the
                // same way, its message is the one to show.
                if let Err(plain) = without_env(P::command()).try_get_matches() {
                    if plain.kind() == e.kind() {
                        plain.exit();
                    }
                }
            }
            e.exit()
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
