//! One spelling: QEMU's feature names, from any QEMU name, alias or Linux
//! flag, and back to the Linux flag.

use crate::cpu::cpudata;

/// Canonical QEMU name for any spelling (QEMU name, QEMU alias or Linux name).
#[must_use]
pub fn canonical(name: &str) -> Option<&'static str> {
    cpudata::index().canonical(name)
}

/// The /proc/cpuinfo spelling of a canonical QEMU feature, if Linux prints it.
#[must_use]
pub fn linux_name(feature: &str) -> Option<&'static str> {
    let idx = cpudata::index();
    idx.feature
        .get(feature)
        .and_then(|&i| idx.data.features[i].linux)
}
