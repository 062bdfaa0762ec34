//! The cache: the on-disk record of every node's CPU that decisions read,
//! written under a lock and replaced atomically; and each node's own record
//! as it publishes it through the cluster file system.
//!
//! Rule: may use the CPU core only (and files, through `crate::fsutil`).

pub mod current;
pub mod published;
mod store;
pub mod truth;

pub use store::*;
