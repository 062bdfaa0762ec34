//! The subcommands: thin compositions of the library modules.

pub mod baseline;
pub mod inspect;
pub mod scan;
pub mod status;
pub mod view;
pub mod why_not;
