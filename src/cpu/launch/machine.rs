//! Machine versions, as qemu-server works them out (`Machine.pm`
//! `get_vm_machine`, `extract_version`, `can_run_pve_machine_version`):
//! they decide which enlightenments a Windows guest gets and whether the
//! node's QEMU can start the VM at all.

use super::{windows_version, VmSpec};

/// A QEMU version, `major.minor.micro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro (90 and above: a release candidate).
    pub micro: u32,
}

impl QemuVersion {
    /// The newest QEMU whose machine revisions qemu-server 9.2 knows, taken
    /// when a node's QEMU version is not known. It only decides flags that
    /// take something away (`-cet-ibt`, `-vmx-mbec`) and the default
    /// machine of non-Windows guests, which gets no enlightenment.
    pub const LATEST_KNOWN: QemuVersion = QemuVersion {
        major: 11,
        minor: 0,
        micro: 0,
    };

    /// Reads `11.0.2`, `10.1`, `9.2.0-pve1` (the distribution suffix is ignored).
    #[must_use]
    pub fn parse(text: &str) -> Option<QemuVersion> {
        let mut parts = text
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let micro = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(QemuVersion {
            major,
            minor,
            micro,
        })
    }

    /// `min_version($kvmver, major, minor)`.
    #[must_use]
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// A machine version, `major.minor+pveN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Proxmox revision.
    pub pve: u32,
}

impl MachineVersion {
    /// `$version_guard`: at least `major.minor+pveN`.
    #[must_use]
    pub fn at_least(self, major: u32, minor: u32, pve: u32) -> bool {
        (self.major, self.minor, self.pve) >= (major, minor, pve)
    }
}

impl std::fmt::Display for MachineVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}+pve{}", self.major, self.minor, self.pve)
    }
}

/// qemu-server 9.2's `$PVE_MACHINE_VERSION`: the highest Proxmox revision
/// of each machine version that has any.
fn highest_pve(major: u32, minor: u32) -> u32 {
    match (major, minor) {
        (4, 1) | (11, 0) => 2,
        (9, 2) | (10, 0) => 1,
        _ => 0,
    }
}

/// `type` of a `machine:` property string (`q35`, `type=q35,viommu=…`).
fn machine_type(value: &str) -> Option<&str> {
    value
        .split(',')
        .find_map(|part| match part.split_once('=') {
            Some(("type", t)) => Some(t),
            Some(_) => None,
            None => Some(part),
        })
}

/// `extract_version_parts`: `pc-q35-9.2+pve1` → (9, 2, Some(1)).
fn version_parts(machine: &str) -> Option<(u32, u32, Option<u32>)> {
    let rest = ["pc-i440fx-", "pc-q35-", "pc-", "virt-"]
        .iter()
        .find_map(|p| machine.strip_prefix(p))?;
    let (major, rest) = rest.split_once('.')?;
    let minor_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (minor, rest) = rest.split_at(minor_len);
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    let pve = rest
        .strip_prefix("+pve")
        .and_then(|p| p.split('.').next())
        .and_then(|p| p.parse().ok());
    Some((major.parse().ok()?, minor.parse().ok()?, pve))
}

/// The machine version the VM starts with on a node whose QEMU is `qemu`,
/// or why qemu-server refuses to start it there (`config_to_command`).
///
/// # Errors
/// The node's QEMU is older than 6.0 or than the pinned machine version,
/// or the machine's Proxmox revision is newer than qemu-server 9.2 knows.
pub fn version(spec: &VmSpec, qemu: QemuVersion) -> Result<MachineVersion, String> {
    if qemu.major < 6 {
        return Err(format!(
            "Detected old QEMU binary ('{qemu}', at least 6.0 is required)"
        ));
    }
    let latest = MachineVersion {
        major: qemu.major,
        minor: qemu.minor,
        pve: highest_pve(qemu.major, qemu.minor),
    };
    let configured = spec.machine.as_deref().and_then(machine_type);
    let pinned = match configured {
        None | Some("pc" | "q35" | "virt") => {
            if windows_version(spec.ostype.as_deref()) == 0 {
                return Ok(latest);
            }
            // Windows guests without a version are pinned to 5.1, or since
            // QEMU 9.1 to the QEMU they were created with (`meta:`).
            let base = spec
                .creation_qemu
                .as_deref()
                .and_then(QemuVersion::parse)
                .filter(|c| c.at_least(9, 1))
                .map_or((5, 1), |c| (c.major, c.minor));
            if qemu.at_least(base.0, base.1) {
                return Ok(MachineVersion {
                    major: base.0,
                    minor: base.1,
                    pve: 0,
                });
            }
            return Ok(latest);
        }
        Some(t) => t,
    };
    let Some((major, minor, pve)) = version_parts(pinned) else {
        return Ok(latest);
    };
    // Shown as qemu-server shows it: a version without `+pveN` is `+pve0`.
    let shown = if pve.is_some() {
        pinned.trim_end_matches(".pxe").to_string()
    } else {
        format!("{}+pve0", pinned.trim_end_matches(".pxe"))
    };
    let pve = pve.unwrap_or(0);
    let candidate = qemu.micro >= 90;
    if !candidate && !qemu.at_least(major, minor) {
        return Err(format!(
            "Installed QEMU version '{qemu}' is too old to run machine type '{shown}'"
        ));
    }
    // Only for versions qemu-server 9.2 knows: a later qemu-server may give
    // a newer machine version revisions this table lacks.
    if !candidate && pve > highest_pve(major, minor) && (major, minor) <= (11, 0) {
        return Err(format!(
            "Installed qemu-server (max feature level for {major}.{minor} is pve{}) is too old to run machine type '{shown}'",
            highest_pve(major, minor)
        ));
    }
    Ok(MachineVersion { major, minor, pve })
}
