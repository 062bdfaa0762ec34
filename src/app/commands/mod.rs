//! The subcommands: thin compositions of the library modules.

pub mod after_scan;
pub mod attach;
pub mod audit;
pub mod auto_attach;
pub mod baseline;
pub mod check;
pub mod generate;
pub mod ha_rules;
pub mod hook;
pub mod hook_running;
pub mod hook_unarmed;
pub mod inspect;
pub mod manual;
pub mod metrics;
pub mod migrate;
pub mod node_list;
pub mod plan;
pub mod proxlb_tags;
pub mod publish;
pub mod scan;
pub mod status;
pub mod vm_context;
pub mod why_not;
