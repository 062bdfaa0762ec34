//! The subcommands: thin compositions of the library modules.

pub mod attach;
pub mod audit;
pub mod check;
pub mod hook;
pub mod inspect;
pub mod migrate;
pub mod vm_context;
pub mod why_not;
