//! The configuration: `/etc/pve-cpuguard/pve-cpuguard.conf`, and the
//! settings every command resolves from flag > environment variable >
//! configuration file > default, in one place.
//!
//! Rule: may use the CPU core, the Proxmox inputs, reaching nodes (their
//! options) and the cache; never the guard or the application shell.

pub mod config;
pub mod settings;
