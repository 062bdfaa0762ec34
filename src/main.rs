//! The `pve-cpuguard` binary: parse arguments, run, map errors to exit codes.

fn main() {
    let (mut cli, env_problems) =
        pve_cpuguard::app::usage::parse_lenient::<pve_cpuguard::app::cli::Cli>();
    let code = match pve_cpuguard::app::take_env_problems(&mut cli, env_problems)
        .and_then(|()| pve_cpuguard::run(&cli))
    {
        Ok(code) => code,
        // A closed stdout ends the command quietly (see `is_closed_output`).
        Err(e) if e.is_closed_output() => e.exit_code(),
        Err(e) => {
            let text = format!(
                "pve-cpuguard: {} {}",
                pve_cpuguard::app::paint::refused("error:"),
                pve_cpuguard::error::shorten_quotes(
                    &e.report(pve_cpuguard::app::command_name(&cli.command))
                )
            );
            anstream::eprintln!("{}", pve_cpuguard::app::output::for_stderr(&text));
            e.exit_code()
        }
    };
    std::process::exit(code.code());
}
