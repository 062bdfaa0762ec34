//! `pve-cpuguard generate man|completions DIR` (hidden): the man pages and
//! shell completions, generated from the same clap definitions as `--help`
//! so they can never disagree with it. The package build runs it.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::app::cli::{Cli, GenerateArgs, GenerateWhat};
use crate::app::commands::manual;
use crate::error::{Error, ExitCode, Result};

/// Runs `generate`.
///
/// # Errors
/// The directory cannot be written.
pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    match args.what {
        GenerateWhat::Man => {
            // Built once, so every subcommand's page shows the global
            // options (--output) and its synopsis the full command.
            let mut root = visible(Cli::command()).disable_help_subcommand(true);
            root.build();
            let subs: Vec<clap::Command> = root.get_subcommands().cloned().collect();
            let pages: Vec<String> = subs
                .iter()
                .map(|s| format!("{BIN}-{}", s.get_name()))
                .collect();
            let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
            man_page(&root, BIN, &refs, dir)?;
            for (sub, name) in subs.into_iter().zip(&pages) {
                man_page(&sub.name(name.clone()), name, &[BIN], dir)?;
            }
            let mut out = Vec::new();
            manual::conf_page(env!("CARGO_PKG_VERSION"))
                .to_writer(&mut out)
                .map_err(Error::Output)?;
            write(&dir.join("pve-cpuguard.conf.5"), &out)?;
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
    let mut cmd = visible(Cli::command());
    if shell == Shell::Bash {
        cmd.build();
        let root = BIN.replace('-', "__");
        escape_bin_names(&mut cmd, &root);
    }
    cmd
}

/// The command without its hidden subcommands and options (clap has no
/// way to remove a subcommand, so the visible parts are copied).
fn visible(full: clap::Command) -> clap::Command {
    let mut cmd = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(long) = full.get_long_about() {
        cmd = cmd.long_about(long.clone());
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

/// One page: clap_mangen's sections (not its EXTRA, the `--help`
/// epilogue: EXIT STATUS replaces it), then this command's table from
/// [`manual`].
fn man_page(cmd: &clap::Command, name: &str, see_also: &[&str], dir: &Path) -> Result<()> {
    let sub = name
        .strip_prefix(BIN)
        .unwrap_or_default()
        .trim_start_matches('-');
    let table = manual::page(sub).ok_or_else(|| {
        Error::Config(format!(
            "no manual table for `{sub}`\nnote: add one to src/app/commands/manual.rs"
        ))
    })?;
    let mut cmd = cmd.clone();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let io = |r: std::io::Result<()>| r.map_err(Error::Output);
    io(man.render_title(&mut out))?;
    io(man.render_name_section(&mut out))?;
    io(man.render_synopsis_section(&mut out))?;
    io(man.render_description_section(&mut out))?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        io(man.render_options_section(&mut out))?;
    }
    if cmd.has_subcommands() {
        io(man.render_subcommands_section(&mut out))?;
    }
    let mut extra = roff::Roff::new();
    manual::extra_sections(&mut extra, &cmd, table, see_also);
    io(extra.to_writer(&mut out))?;
    if cmd.get_version().is_some() {
        io(man.render_version_section(&mut out))?;
    }
    write(&dir.join(format!("{name}.1")), &out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::replace(path, bytes, Some(0o644))
}
