//! The cache: the on-disk record of every node's CPU that decisions read,
//! written under a lock and replaced atomically; and each node's own record
//! as it publishes it through the cluster file system.
//!
//! Rule: may use the CPU core only (and files, through `crate::fsutil`).

pub mod admission;
mod age;
pub mod current;
mod drift;
mod freshness;
mod lazy;
pub mod published;
pub mod pvestatd;
mod record;
mod store;
pub mod truth;
mod writer;

pub use age::*;
pub use drift::*;
pub use freshness::*;
pub use lazy::*;
pub use record::*;
pub use store::*;
pub use writer::*;
