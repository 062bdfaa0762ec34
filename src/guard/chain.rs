//! Chained hookscripts: an administrator's own hookscript keeps running,
//! after the guard's check and only when the guard allows, with the same
//! arguments; its exit code counts.
//!
//! Per VM in `<pve>/pve-cpuguard/chain.conf` (cluster-wide, so every node
//! sees the same; written by `attach`), one `<vmid> <absolute path>
//! [<volume id>]` per line; else the `chain_hookscript` of the
//! configuration file. The optional volume id (`local:snippets/old.pl`) is
//! what the VM had before `attach`, so `detach` can put back exactly that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::conf::settings::Settings;
use crate::error::{Error, Result};
use crate::pve::paths::VmId;

/// One chained hookscript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The script to run.
    pub path: PathBuf,
    /// The VM's `hookscript:` before `attach`, if recorded.
    pub volid: Option<String>,
}

/// The per-VM chain file below the cluster file system.
#[must_use]
pub fn file(pve_root: &Path) -> PathBuf {
    pve_root.join("pve-cpuguard/chain.conf")
}

/// Parses the chain file.
///
/// # Errors
/// Malformed lines, naming the file and line.
pub fn parse(text: &str, origin: &Path) -> Result<BTreeMap<VmId, Entry>> {
    let mut out = BTreeMap::new();
    // The line each VM was listed on: a second line for one VM is an
    // error naming both, never a silent choice of one.
    let mut seen: BTreeMap<VmId, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(path), volid, None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(Error::parse(
                origin,
                i + 1,
                "expected `<vmid> <absolute path> [<volume id>]`",
            ));
        };
        let vmid: VmId = id.parse().map_err(|e| Error::parse(origin, i + 1, e))?;
        if let Some(first) = seen.insert(vmid, i + 1) {
            return Err(Error::parse(
                origin,
                i + 1,
                format!(
                    "VM {vmid} is listed twice, on lines {first} and {}: which hookscript \
                     runs would be a guess\nnote: keep one of the two lines",
                    i + 1
                ),
            ));
        }
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(Error::parse(
                origin,
                i + 1,
                "the hookscript path must be absolute",
            ));
        }
        if let Some(v) = volid {
            crate::pve::storage::split_snippet_volid(v)
                .map_err(|e| Error::parse(origin, i + 1, e))?;
        }
        out.insert(
            vmid,
            Entry {
                path,
                volid: volid.map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// Reads the chain file; missing means empty.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read(pve_root: &Path) -> Result<BTreeMap<VmId, Entry>> {
    let path = file(pve_root);
    crate::fsutil::parse_optional(&path, parse)
}

/// Renders the chain file.
#[must_use]
pub fn render(entries: &BTreeMap<VmId, Entry>) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("# pve-cpuguard: hookscripts chained behind the guard, per VM (written by `pve-cpuguard attach`)\n");
    for (vmid, e) in entries {
        let _ = write!(s, "{vmid} {}", e.path.display());
        if let Some(v) = &e.volid {
            let _ = write!(s, " {v}");
        }
        s.push('\n');
    }
    s
}

/// Replaces the chain file atomically (an `O_EXCL` temporary file +
/// rename, as Proxmox's own `file_set_contents` does on pmxcfs; a link at
/// either path is never followed).
///
/// # Errors
/// The directory or file cannot be written.
pub fn write(pve_root: &Path, entries: &BTreeMap<VmId, Entry>) -> Result<()> {
    let path = file(pve_root);
    let dir = path.parent().unwrap_or(pve_root);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::fsutil::replace(&path, render(entries).as_bytes(), None)
}

/// A cluster-wide lock on the chain file, taken the way pmxcfs locks work
/// (`mkdir <pve>/priv/lock/NAME` is atomic across the cluster; a lock
/// older than 120 s is stale). Released on drop.
pub struct Lock {
    dir: PathBuf,
}

impl Lock {
    /// Takes the lock, waiting up to 10 s.
    ///
    /// # Errors
    /// The lock is held elsewhere for longer, or cannot be created.
    pub fn take(pve_root: &Path) -> Result<Lock> {
        let parent = pve_root.join("priv/lock");
        let dir = parent.join("pve-cpuguard-chain");
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let deadline = SystemTime::now() + Duration::from_secs(10);
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Lock { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&dir)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(120));
                    if stale {
                        let _ = std::fs::remove_dir(&dir);
                        continue;
                    }
                    if SystemTime::now() > deadline {
                        return Err(Error::Config(format!(
                            "{}: locked by another pve-cpuguard attach/detach\nnote: wait for it to finish (a lock older than 120 s is ignored)",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Under the lock: reads the chain file, lets `change` edit it, writes it
/// back if it changed.
///
/// # Errors
/// Locking, reading or writing.
pub fn update(pve_root: &Path, change: impl FnOnce(&mut BTreeMap<VmId, Entry>)) -> Result<()> {
    let _lock = Lock::take(pve_root)?;
    let mut entries = read(pve_root)?;
    let before = entries.clone();
    change(&mut entries);
    if entries != before {
        write(pve_root, &entries)?;
    }
    Ok(())
}

/// The hookscript chained for `vmid`, if any.
///
/// # Errors
/// A malformed chain file.
pub fn lookup(settings: &Settings, vmid: VmId) -> Result<Option<PathBuf>> {
    if let Some(e) = read(settings.pve.root())?.remove(&vmid) {
        return Ok(Some(e.path));
    }
    Ok(settings.config.chain_hookscript.clone())
}

/// The variable a chained hookscript gets, so that a chain leading back to
/// the guard (the hook file chained behind itself, directly or through a
/// wrapper) ends instead of looping.
pub const REENTRY_VAR: &str = "PVE_CPUGUARD_CHAINED";

/// The value of [`REENTRY_VAR`] for the chained hookscript of `vmid` in
/// `phase`: `VMID PHASE PID STARTTIME` of this process. A process that
/// inherits it (the chained script's children, whatever they start) can
/// only pass for this re-entry when it is the guard for the same VM and
/// phase *and* descends from this very process (its PID and start time, so
/// a recycled PID does not count).
#[must_use]
pub fn reentry_value(vmid: VmId, phase: &str) -> String {
    let pid = std::process::id();
    let start = proc_stat(pid).map_or(0, |s| s.start);
    format!("{vmid} {phase} {pid} {start}")
}

/// Whether `value` (of [`REENTRY_VAR`]) marks this process, the guard for
/// `vmid` in `phase`, as its own re-entry through a chained hookscript.
/// Any other value (empty, from another VM or phase, from a process that
/// is not an ancestor) is not: the guard then checks as always.
#[must_use]
pub fn is_reentry(value: &str, vmid: &str, phase: &str) -> bool {
    let mut words = value.split(' ');
    let (Some(v), Some(p), Some(pid), Some(start), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if v != vmid || p != phase || pid <= 1 {
        return false;
    }
    // Up the chain of parents (bounded: a chain of wrappers is short).
    let mut at = std::os::unix::process::parent_id();
    for _ in 0..32 {
        if at <= 1 {
            return false;
        }
        let Some(stat) = proc_stat(at) else {
            return false;
        };
        if at == pid {
            return stat.start == start;
        }
        at = stat.parent;
    }
    false
}

/// What [`is_reentry`] needs of `/proc/PID/stat`.
struct ProcStat {
    parent: u32,
    /// Start time after boot, in clock ticks.
    start: u64,
}

/// Fields 4 (ppid) and 22 (starttime) of `/proc/PID/stat` (proc(5)); the
/// command name (field 2) may hold spaces and parentheses, so the fields
/// are counted after its last `)`.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // rest: " STATE PPID …": field 3 is the first word.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        parent: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut m = BTreeMap::new();
        m.insert(
            VmId(100),
            Entry {
                path: PathBuf::from("/var/lib/vz/snippets/old.pl"),
                volid: Some("local:snippets/old.pl".into()),
            },
        );
        m.insert(
            VmId(101),
            Entry {
                path: PathBuf::from("/opt/hooks/x.sh"),
                volid: None,
            },
        );
        let text = render(&m);
        assert!(text.contains(
            "\n100 /var/lib/vz/snippets/old.pl local:snippets/old.pl\n101 /opt/hooks/x.sh\n"
        ));
        assert_eq!(parse(&text, Path::new("c")).unwrap(), m);
        let e = parse("100 /x local:iso/a.iso\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("not in a snippets directory"), "{e}");
        let e = parse("100 relative.pl\n", Path::new("c")).unwrap_err();
        assert_eq!(e.to_string(), "c:1: the hookscript path must be absolute");
        let e = parse("\n100\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().starts_with("c:2: expected"));
        let e = parse("abc /x\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("invalid VMID"));
    }

    #[test]
    fn two_chain_lines_for_one_vm_are_an_error_naming_both() {
        let e = parse("100 /a\n101 /b\n# c\n100 /c\n", Path::new("chain.conf")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "chain.conf:4: VM 100 is listed twice, on lines 1 and 4: which hookscript runs \
             would be a guess\nnote: keep one of the two lines"
        );
    }

    #[test]
    fn reentry_matches_only_the_same_vm_phase_and_an_ancestor() {
        // This test process stands for the guard; a child of it checks.
        let value = reentry_value(VmId(100), "pre-start");
        let me = std::process::id();
        assert_eq!(
            value,
            format!("100 pre-start {me} {}", proc_stat(me).unwrap().start)
        );
        // In this process itself the value names itself, not an ancestor.
        assert!(!is_reentry(&value, "100", "pre-start"));
        // The parent of this process is an ancestor: its value counts, for
        // the same VM and phase only.
        let parent = std::os::unix::process::parent_id();
        let start = proc_stat(parent).unwrap().start;
        assert!(is_reentry(
            &format!("100 pre-start {parent} {start}"),
            "100",
            "pre-start"
        ));
        assert!(!is_reentry(
            &format!("100 pre-start {parent} {start}"),
            "101",
            "pre-start"
        ));
        assert!(!is_reentry(
            &format!("100 pre-start {parent} {start}"),
            "100",
            "post-start"
        ));
        assert!(!is_reentry(
            &format!("100 pre-start {parent} {}", start + 1),
            "100",
            "pre-start"
        ));
        for v in [
            "",
            "1",
            "100 pre-start",
            "100 pre-start 1 0",
            "100 pre-start x y",
            "100 pre-start 999999999 0",
        ] {
            assert!(!is_reentry(v, "100", "pre-start"), "{v:?}");
        }
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn update_writes_atomically_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        update(dir.path(), |m| {
            m.insert(
                VmId(100),
                Entry {
                    path: "/a".into(),
                    volid: None,
                },
            );
        })
        .unwrap();
        assert_eq!(read(dir.path()).unwrap()[&VmId(100)].path, Path::new("/a"));
        assert!(!dir.path().join("priv/lock/pve-cpuguard-chain").exists());
        // A link planted at the chain file is replaced, never written through.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "100 /keep\n").unwrap();
        std::fs::remove_file(file(dir.path())).unwrap();
        std::os::unix::fs::symlink(&victim, file(dir.path())).unwrap();
        update(dir.path(), |m| {
            m.remove(&VmId(100));
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "100 /keep\n");
        assert!(std::fs::symlink_metadata(file(dir.path()))
            .unwrap()
            .file_type()
            .is_file());
        let held = Lock::take(dir.path()).unwrap();
        assert!(dir.path().join("priv/lock/pve-cpuguard-chain").is_dir());
        drop(held);
        assert!(!dir.path().join("priv/lock/pve-cpuguard-chain").exists());
    }
}
