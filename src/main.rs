//! The `pve-cpuguard` binary: parse arguments, run, map errors to exit codes.

// Rust's own start would abort under a memory limit before `main` runs
// (`pve_cpuguard::app::entry`).
#![no_main]

/// Out of memory in `hook` answers by the policy instead of aborting
/// (`pve_cpuguard::app::oom`).
#[global_allocator]
static ALLOCATOR: pve_cpuguard::app::oom::Guarded = pve_cpuguard::app::oom::Guarded::tool();

/// The entry point (see `#![no_main]` above).
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    pve_cpuguard::app::entry::start(pve_cpuguard::app::entry::Program::Tool, run)
}

fn run() -> i32 {
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
    code.code()
}
