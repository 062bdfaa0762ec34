//! The CPU a running guest really has (issue 22): what its QEMU was started
//! with, and where and when it was cold-started.
//!
//! A live migration moves a running guest, whose CPU was fixed at its cold
//! start: the `-cpu` qemu-server built then, on the node it started on. The
//! configuration may have changed since (`[PENDING]`, `ostype`, `machine`),
//! and a `cpu: host` guest keeps the CPU of the node it booted on however
//! often it moves. Like VMware's per-VM "feature requirement" recorded at
//! power-on, the hookscript's `post-start` writes one small record per
//! running VM into its node's directory of the cluster file system
//! (`/etc/pve/nodes/NODE/pve-cpuguard-running/VMID.json`, one writer per
//! node: that node's hookscript), carries it over on an incoming live
//! migration and removes it at `post-stop`. The target of a live migration
//! reads the source's record.
//!
//! qemu-server reads a running VM's `-cpu` the same way
//! (`CPUConfig.pm` `get_cpu_from_running_vm`: `/proc/PID/cmdline` through
//! `Helpers::parse_cmdline`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pve::paths::{PveDir, VmId};

/// The directory of a node's running records, under its node directory.
pub const DIR_NAME: &str = "pve-cpuguard-running";

/// Largest record read (a `-cpu` is a few hundred bytes).
const MAX_RECORD: usize = 16 * 1024;

/// One running guest's CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRecord {
    /// VMID.
    pub vmid: u32,
    /// The `-cpu` its QEMU runs with.
    pub cpu: String,
    /// Its `-machine` `type`, when its command line has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The node it was cold-started on.
    pub cold_start_node: String,
    /// When (Unix seconds).
    pub cold_started_at: u64,
    /// Whether `cold_start_node` is known or only assumed (a guest that
    /// arrived by live migration from a node that kept no record: the
    /// source is the best guess).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cold_start_assumed: bool,
}

impl RunningRecord {
    /// Checks what a node wrote before anything relies on it: a `-cpu`
    /// and a node name of printable characters, of sane length.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let printable =
            |s: &str| !s.is_empty() && s.len() <= 4096 && s.chars().all(|c| c.is_ascii_graphic());
        if !printable(&self.cpu) {
            return Err("`cpu` is empty, too long or not printable".into());
        }
        if !crate::pve::cluster::valid_name(&self.cold_start_node) {
            return Err("`cold_start_node` is not a node name".into());
        }
        if self.machine.as_deref().is_some_and(|m| !printable(m)) {
            return Err("`machine` is not printable".into());
        }
        Ok(())
    }
}

/// Where `node` keeps the record of `vmid`.
#[must_use]
pub fn path(pve: &PveDir, node: &str, vmid: VmId) -> PathBuf {
    pve.root()
        .join("nodes")
        .join(node)
        .join(DIR_NAME)
        .join(format!("{vmid}.json"))
}

/// Reads `node`'s record of `vmid`; `None` when there is none.
///
/// # Errors
/// An unreadable or invalid record, naming the file.
pub fn read(pve: &PveDir, node: &str, vmid: VmId) -> Result<Option<RunningRecord>> {
    let path = path(pve, node, vmid);
    let Some(bytes) = crate::fsutil::read_optional(&path)? else {
        return Ok(None);
    };
    if bytes.len() > MAX_RECORD {
        return Err(Error::parse(
            &path,
            1,
            "larger than a running record can be",
        ));
    }
    let rec: RunningRecord = serde_json::from_slice(&bytes)
        .map_err(|e| Error::parse(&path, e.line(), format!("not a running record: {e}")))?;
    rec.validate()
        .map_err(|why| Error::parse(&path, 1, format!("invalid running record: {why}")))?;
    if rec.vmid != vmid.0 {
        return Err(Error::parse(
            &path,
            1,
            format!("the record is of VM {}, not {vmid}", rec.vmid),
        ));
    }
    Ok(Some(rec))
}

/// Writes this node's record (atomically: a temporary file renamed over
/// it, never through a planted link).
///
/// # Errors
/// The directory cannot be made or the file written.
pub fn write(pve: &PveDir, node: &str, rec: &RunningRecord) -> Result<()> {
    let path = path(pve, node, VmId(rec.vmid));
    let dir = crate::fsutil::parent(&path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut bytes = serde_json::to_vec(rec).map_err(|e| Error::Config(e.to_string()))?;
    bytes.push(b'\n');
    crate::fsutil::replace(&path, &bytes, Some(0o640))
}

/// Removes this node's record of `vmid`; nothing to remove is fine.
///
/// # Errors
/// The file exists and cannot be removed.
pub fn remove(pve: &PveDir, node: &str, vmid: VmId) -> Result<()> {
    let path = path(pve, node, vmid);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The `-cpu` and `-machine` `type` of a QEMU command line as
/// `/proc/PID/cmdline` holds it (NUL-separated arguments); `-cpu` also
/// spelled `--cpu`, the last one winning as in QEMU.
#[must_use]
pub fn parse_cmdline(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let args: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
    let mut cpu = None;
    let mut machine = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            b"-cpu" | b"--cpu" => cpu = it.next().map(|v| String::from_utf8_lossy(v).into_owned()),
            b"-machine" | b"--machine" | b"-M" => {
                machine = it.next().and_then(|v| {
                    let v = String::from_utf8_lossy(v);
                    v.split(',').find_map(|kv| match kv.split_once('=') {
                        Some(("type", t)) => Some(t.to_string()),
                        Some(_) => None,
                        None => Some(kv.to_string()),
                    })
                });
            }
            _ => {}
        }
    }
    (cpu.filter(|c| !c.is_empty()), machine)
}

/// The PID in `run_dir/VMID.pid`, when it names a live process.
#[must_use]
pub fn running_pid(run_dir: &Path, vmid: VmId) -> Option<u32> {
    crate::fsutil::read_to_string_raw(run_dir.join(format!("{vmid}.pid")))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// The `-cpu` and machine of the VM's running QEMU on this node, when it
/// runs here and its command line can be read.
#[must_use]
pub fn running_cpu(run_dir: &Path, vmid: VmId) -> Option<(String, Option<String>)> {
    let pid = running_pid(run_dir, vmid)?;
    let bytes = crate::fsutil::read_raw(Path::new(&format!("/proc/{pid}/cmdline"))).ok()?;
    let (cpu, machine) = parse_cmdline(&bytes);
    Some((cpu?, machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_gives_the_last_cpu_and_the_machine_type() {
        let line = b"/usr/bin/kvm\0-id\x00100\0-machine\0type=pc-q35-11.0+pve2,hpet=off\0-cpu\0kvm64,enforce\0--cpu\0host,+kvm_pv_eoi\0";
        let (cpu, machine) = parse_cmdline(line);
        assert_eq!(cpu.as_deref(), Some("host,+kvm_pv_eoi"));
        assert_eq!(machine.as_deref(), Some("pc-q35-11.0+pve2"));
        assert_eq!(parse_cmdline(b"/bin/sleep\x0060\0"), (None, None));
        assert_eq!(parse_cmdline(b"x\0-cpu"), (None, None));
    }

    #[test]
    fn records_round_trip_and_reject_what_no_node_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pve = PveDir::new(dir.path().to_path_buf());
        let rec = RunningRecord {
            vmid: 100,
            cpu: "host,+kvm_pv_eoi,+kvm_pv_unhalt".into(),
            machine: Some("pc-i440fx-11.0+pve0".into()),
            cold_start_node: "pve1".into(),
            cold_started_at: 1_765_000_000,
            cold_start_assumed: false,
        };
        assert_eq!(read(&pve, "pve2", VmId(100)).unwrap(), None);
        write(&pve, "pve2", &rec).unwrap();
        assert_eq!(read(&pve, "pve2", VmId(100)).unwrap(), Some(rec.clone()));
        let p = path(&pve, "pve2", VmId(100));
        for bad in [
            r#"{"vmid":100,"cpu":"host\u001b[2J","cold_start_node":"pve1","cold_started_at":1}"#,
            r#"{"vmid":100,"cpu":"host","cold_start_node":"../x","cold_started_at":1}"#,
            r#"{"vmid":101,"cpu":"host","cold_start_node":"pve1","cold_started_at":1}"#,
            "not json",
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = read(&pve, "pve2", VmId(100)).unwrap_err().to_string();
            assert!(e.contains("100.json"), "{e}");
        }
        remove(&pve, "pve2", VmId(100)).unwrap();
        remove(&pve, "pve2", VmId(100)).unwrap();
        assert_eq!(read(&pve, "pve2", VmId(100)).unwrap(), None);
    }
}
