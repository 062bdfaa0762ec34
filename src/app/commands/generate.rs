//! `pve-cpuguard generate man|completions DIR` (hidden): the man pages and
//! shell completions, generated from the same clap definitions as `--help`
//! so they can never disagree with it. The package build runs it.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::app::cli::{Cli, GenerateArgs, GenerateWhat};
use crate::error::{Error, ExitCode, Result};

/// Runs `generate`.
///
/// # Errors
/// The directory cannot be written.
pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cmd = Cli::command();
    match args.what {
        GenerateWhat::Man => {
            man_page(&cmd, "pve-cpuguard", dir)?;
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("pve-cpuguard-{}", sub.get_name());
                let sub = sub.clone().name(name.clone());
                man_page(&sub, &name, dir)?;
            }
        }
        GenerateWhat::Completions => {
            for (shell, file) in [
                (Shell::Bash, "pve-cpuguard"),
                (Shell::Zsh, "_pve-cpuguard"),
                (Shell::Fish, "pve-cpuguard.fish"),
            ] {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut for_completion(shell), BIN, &mut out);
                write(&dir.join(file), &out)?;
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// The binary's name, as the shells see it.
const BIN: &str = "pve-cpuguard";

/// The command tree the completions describe: the visible subcommands
/// only (clap_complete also lists hidden ones, and the automatic `help`
/// subcommand would name them too).
///
/// For bash, every subcommand also gets an explicit bin name with the
/// root's `-` spelt `__`: clap_complete 4.6's bash generator
/// (`aot/shells/bash.rs`) spells the state of `pve-cpuguard attach` as
/// `pve__cpuguard__subcmd__attach` in its dispatch loop (bin name and
/// subcommand escaped separately) but as
/// `pve__subcmd__cpuguard__subcmd__attach` in the case arms (the whole
/// bin-name path escaped at once), so no subcommand's options ever
/// completed (clap-rs/clap#6421). With the root already escaped in the
/// subcommands' bin names, both spellings agree; the function name and the
/// `complete` line still use the real name.
fn for_completion(shell: Shell) -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if shell == Shell::Bash {
        cmd.build();
        let root = BIN.replace('-', "__");
        escape_bin_names(&mut cmd, &root);
    }
    cmd
}

/// Sets `PARENT NAME` as the bin name of every subcommand below `cmd`.
fn escape_bin_names(cmd: &mut clap::Command, parent: &str) {
    for sub in cmd.get_subcommands_mut() {
        let name = format!("{parent} {}", sub.get_name());
        sub.set_bin_name(name.clone());
        escape_bin_names(sub, &name);
    }
}

fn man_page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .map_err(Error::Output)?;
    write(&dir.join(format!("{name}.1")), &out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}
