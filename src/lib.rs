//! pve-cpuguard: safe live migration across mixed CPU generations in
//! Proxmox VE clusters.
//!
//! The layers, each a folder whose `mod.rs` states what it may use:
//!
//! - [`cpu`]: the pure core — what a VM needs, what a node gives, the verdict.
//! - [`pve`]: Proxmox VE's files under /etc/pve, parsed.
//! - [`reach`]: reaching nodes — SSH, known_hosts, asking QEMU.
//! - [`cache`]: the on-disk record of every node.
//! - [`guard`]: decisions under policy, audit, rollout, metrics.
//! - [`app`]: the command line, settings, output and the commands.
//!
//! [`error`] is the one error type every layer returns; [`fsutil`] is safe
//! file access (no blocking on FIFOs, no writing through links, bounded
//! lock waits) for every layer but the pure core.

pub mod app;
pub mod cache;
pub mod cpu;
pub mod error;
pub mod fsutil;
pub mod guard;
pub mod pve;
pub mod reach;

pub use app::run;
