//! `pve-cpuguard-hook <vmid> <phase>`: the hookscript entry point on its
//! own, the same as `pve-cpuguard hook`.
//!
//! Proxmox VE runs the hookscript on every VM start. This binary links only
//! what the hook needs (no SSH, no OpenSSL), so it starts in a fraction of
//! the full tool's time; see `benches/hook_prestart.rs`.

// Rust's own start would abort under a memory limit before `main` runs
// (`pve_cpuguard::app::entry`).
#![no_main]

use clap::Parser;

/// The VM hookscript: `pre-start` refuses a start or incoming migration this
/// node cannot give the VM's CPU.
#[derive(Debug, Parser)]
#[command(name = "pve-cpuguard-hook", version)]
struct HookCli {
    #[command(flatten)]
    args: pve_cpuguard::app::cli::HookArgs,
}

/// Out of memory answers by the policy instead of aborting
/// (`pve_cpuguard::app::oom`).
#[global_allocator]
static ALLOCATOR: pve_cpuguard::app::oom::Guarded = pve_cpuguard::app::oom::Guarded::hook();

/// The entry point (see `#![no_main]` above).
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    pve_cpuguard::app::entry::start(pve_cpuguard::app::entry::Program::Hook, run)
}

fn run() -> i32 {
    // Invalid PVE_CPUGUARD_* values are the hook's input problems, judged
    // by its policy like any other (see `usage`).
    let (mut cli, env_problems) = pve_cpuguard::app::usage::parse_lenient::<HookCli>();
    cli.args.env_problems = env_problems;
    let code = match pve_cpuguard::app::commands::hook::run(&cli.args) {
        Ok(code) => code,
        Err(e) => {
            let text = format!("pve-cpuguard: error: {}", e.report("hook"));
            eprintln!("{}", pve_cpuguard::app::output::for_stderr(&text));
            e.exit_code()
        }
    };
    code.code()
}
