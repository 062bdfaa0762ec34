//! The CPU core: what a VM needs, what a node can give, and the verdict.
//!
//! Rule: pure. Nothing here touches the file system, processes, the network,
//! the environment or libc (`tests/it/architecture.rs` enforces it); values in,
//! values out. Everything else in the crate may use this layer.

pub mod baseline;
pub mod capability;
pub mod cpuconf;
pub mod cpudata;
pub mod cpuinfo;
pub mod custom_baseline;
pub mod custom_models;
pub mod fix;
pub mod flags;
pub mod launch;
pub mod level;
pub mod models;
pub mod qemu_report;
pub mod requirement;
#[cfg(test)]
pub(crate) mod test_hosts;
pub mod verdict;
#[cfg(test)]
mod verdict_tests;
pub mod word_list;
