//! Command-line definitions. Each `///` comment is the help text users see.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::kvm_probe::Accel;
use crate::output::Format;

const EXIT_CODES: &str = "\
Exit codes:
  0  compatible / ok
  1  incompatible or refused (scan: some nodes failed)
  2  usage, configuration or input error
  3  unknown (not enough data to decide)";

/// Safe live migration across mixed CPU generations in Proxmox VE clusters.
///
/// pve-cpuguard learns every node's CPU, computes the cluster baseline, and
/// refuses VM starts and migrations whose target cannot give the VM its CPU,
/// explaining which flags are missing and which CPU type would work.
#[derive(Debug, Parser)]
#[command(name = "pve-cpuguard", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t, global = true)]
    pub output: Format,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show this host's CPU, its level and every Proxmox CPU type it can run.
    Inspect(InspectArgs),
    /// Explain whether this host can run a given CPU type, and what is missing.
    #[command(name = "why-not")]
    WhyNot(WhyNotArgs),
}

/// Where a host's CPU description comes from.
#[derive(Debug, Args)]
pub struct CpuinfoArg {
    /// Read this file instead of the host's /proc/cpuinfo.
    #[arg(
        long,
        env = "PVE_CPUGUARD_CPUINFO",
        default_value = "/proc/cpuinfo",
        value_name = "FILE"
    )]
    pub cpuinfo: PathBuf,
}

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub cpuinfo: CpuinfoArg,

    /// Also ask QEMU what it can give a guest, and show that beside the
    /// /proc/cpuinfo view: `kvm` is what guests really get (needs a usable
    /// /dev/kvm); `tcg` asks QEMU's emulator, only for machines without KVM.
    #[arg(long, value_enum, value_name = "ACCEL")]
    pub probe: Option<Accel>,

    /// QEMU binary for --probe [default: qemu-system-x86_64, else kvm, from
    /// PATH].
    #[arg(long, env = "PVE_CPUGUARD_QEMU", value_name = "FILE")]
    pub qemu: Option<PathBuf>,

    /// Seconds QEMU may take to answer --probe before it is killed.
    #[arg(
        long,
        env = "PVE_CPUGUARD_PROBE_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=600),
        value_name = "SECONDS"
    )]
    pub probe_timeout: u64,
}

/// Arguments of `why-not`.
#[derive(Debug, Args)]
pub struct WhyNotArgs {
    /// A VM `cpu:` value: `x86-64-v4`, `Skylake-Server-v4`, `host`,
    /// `custom-NAME`, or `cputype=EPYC-Rome,flags=+pdpe1gb`.
    #[arg(value_name = "CPU")]
    pub cpu: String,

    #[command(flatten)]
    pub cpuinfo: CpuinfoArg,

    /// The Proxmox cluster file system (custom models are read from
    /// `virtual-guest/cpu-models.conf` below it).
    #[arg(
        long,
        env = "PVE_CPUGUARD_PVE_DIR",
        default_value = "/etc/pve",
        value_name = "DIR"
    )]
    pub pve_dir: PathBuf,
}
