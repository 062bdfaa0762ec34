//! The subcommands: thin compositions of the library modules.

pub mod inspect;
pub mod why_not;
