//! Proxmox VE's own files, parsed: corosync.conf, `.members`, VM configs,
//! storage.cfg, HA resources, custom CPU models, and where they live; and
//! `qm migrate`'s options, read with qm's own grammar.
//!
//! Rule: may use the CPU core and read files; never the network, processes,
//! the cache or the guard. Parsers take text and name the file and line of
//! anything they reject.

pub mod cluster;
pub mod corosync;
pub mod cpu_flags;
pub mod custom_models;
pub mod ha;
pub mod ha_rules;
pub mod hook_files;
pub mod members;
pub mod paths;
pub mod presence;
pub mod qm_options;
pub mod running;
pub mod section_config;
pub mod storage;
pub mod vmconf;

/// A boolean as Proxmox VE reads one in its configuration files and on its
/// command lines (pve-common `PVE::JSONSchema::parse_boolean`):
/// case-insensitive `1`, `on`, `yes`, `true` and `0`, `off`, `no`,
/// `false`; anything else is no boolean.
#[must_use]
pub fn parse_boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}
