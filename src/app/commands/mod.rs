//! The subcommands: thin compositions of the library modules.

pub mod after_scan;
pub mod attach;
pub mod audit;
pub mod auto_attach;
pub mod baseline;
pub mod baseline_custom;
pub mod check;
pub mod generate;
pub mod ha_rules;
pub mod hook;
pub mod hook_running;
pub mod hook_unarmed;
pub mod inspect;
mod inspect_no_kvm;
mod inspect_probe;
pub mod manual;
pub mod metrics;
pub mod migrate;
pub mod node_list;
pub mod plan;
pub mod proxlb_tags;
pub mod publish;
pub mod scan;
pub mod shell_text;
pub mod status;
pub mod vm_context;
pub mod why_not;
