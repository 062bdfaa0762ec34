//! The guard: decisions under policy, and what is built on them — the
//! audit, the hookscript's rollout and chaining, refusal records, metrics.
//!
//! Rule: may use the CPU core, the Proxmox inputs, the cache and the
//! configuration; never the network (the hook's path must stay local and
//! fast), so never `reach`.

pub mod audit;
pub mod audit_input;
pub(crate) mod audit_memo;
pub mod chain;
pub mod coverage;
pub mod custom_model;
pub mod decision;
pub mod fleet;
pub mod ha_rules;
pub(crate) mod lacking_bits;
pub(crate) mod memo_hash;
pub mod metrics;
pub mod plan;
pub mod proxlb;
pub mod refusals;
pub mod rollout;
pub mod scope;
