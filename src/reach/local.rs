//! This node itself, read locally: its /proc/cpuinfo (the scan's own node,
//! `inspect`, `why-not`, `publish`, the hook). Read through
//! [`crate::fsutil`], so a FIFO or device at the path is an error naming
//! it, never a blocked read.

use std::path::Path;

use crate::cpu::cpuinfo::{self, CpuInfo};
use crate::error::Result;

/// Reads and parses a cpuinfo file.
///
/// # Errors
/// I/O errors (naming the path), malformed lines, and non-x86 input (as
/// [`crate::error::Error::Unsupported`]).
pub fn cpuinfo(path: &Path) -> Result<CpuInfo> {
    cpuinfo::parse_bytes(&crate::fsutil::read(path)?, path)
}
