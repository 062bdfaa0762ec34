//! The `pve-cpuguard` binary: parse arguments, run, map errors to exit codes.

fn main() {
    let cli: pve_cpuguard::app::cli::Cli = pve_cpuguard::app::usage::parse();
    let code = match pve_cpuguard::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            anstream::eprintln!(
                "pve-cpuguard: {} {}",
                pve_cpuguard::app::paint::refused("error:"),
                e.report(pve_cpuguard::app::command_name(&cli.command))
            );
            e.exit_code()
        }
    };
    std::process::exit(code.code());
}
