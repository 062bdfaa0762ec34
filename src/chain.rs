//! Chained hookscripts: an administrator's own hookscript keeps running,
//! after the guard's check and only when the guard allows, with the same
//! arguments; its exit code counts.
//!
//! Per VM in `<pve>/pve-cpuguard/chain.conf` (cluster-wide, so every node
//! sees the same; written by `attach`), one `<vmid> <absolute path>` per
//! line; else the `chain_hookscript` of the configuration file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pve::VmId;
use crate::settings::Settings;

/// The per-VM chain file below the cluster file system.
#[must_use]
pub fn file(pve_root: &Path) -> PathBuf {
    pve_root.join("pve-cpuguard/chain.conf")
}

/// Parses the chain file.
///
/// # Errors
/// Malformed lines, naming the file and line.
pub fn parse(text: &str, origin: &Path) -> Result<BTreeMap<VmId, PathBuf>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(path), None) = (words.next(), words.next(), words.next()) else {
            return Err(Error::parse(
                origin,
                i + 1,
                "expected `<vmid> <absolute path>`",
            ));
        };
        let vmid: VmId = id.parse().map_err(|e| Error::parse(origin, i + 1, e))?;
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(Error::parse(
                origin,
                i + 1,
                "the hookscript path must be absolute",
            ));
        }
        out.insert(vmid, path);
    }
    Ok(out)
}

/// Reads the chain file; missing means empty.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read(pve_root: &Path) -> Result<BTreeMap<VmId, PathBuf>> {
    let path = file(pve_root);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Renders the chain file.
#[must_use]
pub fn render(entries: &BTreeMap<VmId, PathBuf>) -> String {
    let mut s = String::from("# pve-cpuguard: hookscripts chained behind the guard, per VM (written by `pve-cpuguard attach`)\n");
    for (vmid, path) in entries {
        s.push_str(&format!("{vmid} {}\n", path.display()));
    }
    s
}

/// The hookscript chained for `vmid`, if any.
///
/// # Errors
/// A malformed chain file.
pub fn lookup(settings: &Settings, vmid: VmId) -> Result<Option<PathBuf>> {
    if let Some(p) = read(settings.pve.root())?.remove(&vmid) {
        return Ok(Some(p));
    }
    Ok(settings.config.chain_hookscript.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut m = BTreeMap::new();
        m.insert(VmId(100), PathBuf::from("/var/lib/vz/snippets/old.pl"));
        let text = render(&m);
        assert_eq!(parse(&text, Path::new("c")).unwrap(), m);
        let e = parse("100 relative.pl\n", Path::new("c")).unwrap_err();
        assert_eq!(e.to_string(), "c:1: the hookscript path must be absolute");
        let e = parse("\n100\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().starts_with("c:2: expected"));
        let e = parse("abc /x\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("invalid VMID"));
    }
}
