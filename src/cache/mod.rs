//! The cache: the on-disk record of every node's CPU that decisions read,
//! written under a lock and replaced atomically.
//!
//! Rule: may use the CPU core only (and the file system).

mod store;
pub mod truth;

pub use store::*;
