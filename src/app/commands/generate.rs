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
                clap_complete::generate(shell, &mut Cli::command(), "pve-cpuguard", &mut out);
                write(&dir.join(file), &out)?;
            }
        }
    }
    Ok(ExitCode::Ok)
}

fn man_page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .map_err(Error::Output)?;
    write(&dir.join(format!("{name}.1")), &out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::replace(path, bytes, Some(0o644))
}
