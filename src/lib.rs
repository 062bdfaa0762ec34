//! pve-cpuguard: safe live migration across mixed CPU generations in
//! Proxmox VE clusters.
//!
//! The layers, each a folder whose `mod.rs` states what it may use:
//!
//! - [`cpu`]: the pure core — what a VM needs, what a node gives, the verdict.
//! - [`pve`]: Proxmox VE's files under /etc/pve, parsed.
//! - [`reach`]: reaching nodes — SSH, known_hosts, asking QEMU.
//! - [`cache`]: the on-disk record of every node, and its one answer.
//! - [`conf`]: the configuration file and the settings every command resolves.
//! - [`guard`]: decisions under policy, audit, rollout, metrics.
//! - [`app`]: the command line, output and the commands.
//!
//! Three foundation modules serve every layer but the pure core's purity:
//! [`error`], the one error type every layer returns (the core too);
//! [`fsutil`], safe file access (no blocking on FIFOs, no writing through
//! links, bounded lock waits); [`syslog`], the journal.

pub mod app;
pub mod cache;
pub mod conf;
pub mod cpu;
pub mod error;
pub mod fsutil;
pub mod guard;
pub mod pve;
pub mod reach;
pub mod syslog;

pub use app::run;
