//! `/etc/pve/ha/resources.cfg`: which VMs the HA manager recovers.
//!
//! SectionConfig (pve-ha-manager `Resources.pm`): `vm: 100` or `ct: 200`
//! headers with `state`, `group`, `max_restart`, `max_relocate`,
//! `comment`, `failback` properties. After a node is fenced, the CRM moves
//! each resource to another node chosen by load and affinity — not by CPU
//! (pve-ha-manager `PVE::HA::Manager` `select_service_node`) — and starts it there: a VM that cannot start on some
//! node may fail its recovery. `state ignored` takes a resource out of HA's
//! hands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pve::paths::VmId;
use crate::pve::section_config;

/// The file below the cluster file system.
#[must_use]
pub fn file(pve_root: &Path) -> PathBuf {
    pve_root.join("ha/resources.cfg")
}

/// One HA-managed VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaVm {
    /// Requested state (`started` when not set).
    pub state: String,
    /// HA group (PVE ≤ 8), if any.
    pub group: Option<String>,
}

impl HaVm {
    /// Whether the HA manager acts on it (it ignores `state ignored`).
    #[must_use]
    pub fn managed(&self) -> bool {
        self.state != "ignored"
    }
}

const STATES: [&str; 5] = ["started", "stopped", "enabled", "disabled", "ignored"];

/// Parses resources.cfg's text: the `vm:` resources by VMID.
///
/// # Errors
/// SectionConfig errors, invalid VMIDs or states, naming file and line.
pub fn parse(text: &str, origin: &Path) -> Result<BTreeMap<VmId, HaVm>> {
    let mut out = BTreeMap::new();
    for s in section_config::parse(text, origin)? {
        if s.kind != "vm" {
            continue;
        }
        let vmid: VmId = s.id.parse().map_err(|e| Error::parse(origin, s.line, e))?;
        let state = match s.get_with_line("state") {
            Some((v, n)) if !STATES.contains(&v) => {
                return Err(Error::parse(
                    origin,
                    n,
                    format!("invalid state '{v}' (valid: {})", STATES.join(", ")),
                ))
            }
            Some((v, _)) => v.to_string(),
            None => "started".to_string(),
        };
        out.insert(
            vmid,
            HaVm {
                state,
                group: s.get("group").map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// Reads `<pve>/ha/resources.cfg`; missing means no HA resources.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read(pve_root: &Path) -> Result<BTreeMap<VmId, HaVm>> {
    crate::fsutil::parse_optional(&file(pve_root), parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_resources_only() {
        let text = "vm: 100\n\tstate started\n\tgroup fast\n\tmax_restart 2\n\n\
                    ct: 200\n\tstate started\n\nvm: 101\n\tstate ignored\n\nvm: 102\n";
        let r = parse(text, Path::new("resources.cfg")).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[&VmId(100)].group.as_deref(), Some("fast"));
        assert!(!r[&VmId(101)].managed());
        assert_eq!(r[&VmId(102)].state, "started");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("vm: 100\n\tstate running\n", Path::new("r.cfg")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.cfg:2: invalid state 'running' (valid: started, stopped, enabled, disabled, ignored)"
        );
        let e = parse("\nvm: 12\n", Path::new("r.cfg")).unwrap_err();
        assert!(e.to_string().starts_with("r.cfg:2: invalid VMID"), "{e}");
    }
}
