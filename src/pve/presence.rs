//! Whether a directory is Proxmox VE's cluster file system at all: commands
//! that read VMs and storages from it say so up front, with what to do,
//! instead of finding no VMs (an empty table) or a bare "No such file".

use std::path::Path;

use crate::error::{Error, Result};

/// Checks that `root` looks like a mounted `/etc/pve`: pmxcfs always has a
/// `nodes/` directory with one entry per node (Proxmox VE's
/// `PVE::Cluster`, `nodes/<node>/qemu-server`), even on a single node.
///
/// # Errors
/// [`Error::Config`] naming the directory, with a `note:` on what to do.
pub fn require(root: &Path) -> Result<()> {
    let nodes = root.join("nodes");
    if nodes.is_dir() {
        return Ok(());
    }
    let what = if root.is_dir() {
        format!("{} has no nodes/ directory", root.display())
    } else {
        format!("{} does not exist", root.display())
    };
    Err(Error::Config(format!(
        "not a Proxmox VE node: {what}, so there are no VMs or storages to read\n\
         note: run this on a Proxmox VE node (is pve-cluster running? `systemctl status \
         pve-cluster`), or point --pve-dir / PVE_CPUGUARD_PVE_DIR at a copy of /etc/pve; \
         `pve-cpuguard inspect` works on any machine"
    )))
}
