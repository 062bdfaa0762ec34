//! Whether this node's own cached record still says what the node gives a
//! guest, checked without reading all of /proc/cpuinfo.
//!
//! The hookscript runs on every VM start. Reading and parsing the whole
//! /proc/cpuinfo costs time in proportion to the thread count (the kernel
//! formats one block per thread, and we parse each), so on a 256-thread
//! host it dominated `pre-start` (issue 16). The record may stand in for a
//! full reading when ALL of these hold, else the caller reads everything:
//!
//! 1. the record was taken when every processor block showed the same CPU
//!    facts (`uniform`, see [`crate::cpu::cpuinfo::CpuInfo::uniform`]):
//!    only then are its flags (intersected over all CPUs) and bugs (united)
//!    exactly the first block's. Hybrid CPUs whose core types print
//!    different flags are never uniform, so they are always read in full;
//! 2. the first processor block read now (reading stops at the first blank
//!    line) has exactly the record's vendor, family, model, stepping,
//!    microcode, address sizes, flags and bugs: a microcode load, a BIOS
//!    setting, or a boot option such as `clearcpuid=` or `mitigations=`
//!    changes what every CPU shows, the first included;
//! 3. the running kernel's release (`uname(2)`) is the record's `kernel`
//!    (KVM's answer is the kernel's);
//! 4. when the record holds QEMU's answer, the QEMU binary that gave it
//!    still has the recorded size and mtime ([`crate::fsutil::identity`];
//!    an answer probed over SSH has no binary identity, so never passes).
//!
//! What it cannot see: a change confined to CPUs other than the first
//! that leaves kernel, microcode and the first CPU as recorded — a late
//! microcode load that failed on some CPUs but not the first (the kernel
//! logs it and taints itself), or hot-added CPUs of another kind.

use std::path::Path;

use crate::cache::NodeRecord;
use crate::cpu::cpuinfo::{self, CpuInfo};

/// Why the record cannot stand in for a full reading (for tests and
/// `--verbose`-style messages).
pub type Stale = String;

/// The running kernel's release, from `uname(2)` (no file read).
#[must_use]
pub fn kernel_release() -> Option<String> {
    // SAFETY: uname fills the struct we own; all-zero is a valid utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: the kernel NUL-terminates `release` within its length.
    let c = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Some(c.to_string_lossy().into_owned())
}

/// Reads the first processor block of a cpuinfo file (stops at the first
/// blank line after it) and parses it.
///
/// # Errors
/// As [`cpuinfo::parse_bytes`] and [`crate::fsutil::read_head`].
pub fn first_block(path: &Path) -> crate::error::Result<CpuInfo> {
    let mut buf = Vec::new();
    let end = |b: &[u8]| b.windows(2).position(|w| w == b"\n\n");
    crate::fsutil::read_head(path, &mut buf, 4096, |b| end(b).is_some())
        .map_err(|e| crate::error::Error::io(path, e))?;
    let cut = end(&buf).map_or(buf.len(), |i| i + 1);
    cpuinfo::parse_bytes(&buf[..cut], path)
}

/// Rules 1–4 of the module header, given what was read now; `Ok` when the
/// record may stand in for a full reading.
///
/// # Errors
/// The first rule that fails, in words.
pub fn check(
    rec: &NodeRecord,
    first: &CpuInfo,
    kernel: Option<&str>,
    qemu_now: impl FnOnce(&Path) -> Option<String>,
) -> Result<(), Stale> {
    let cpu = &rec.cpu;
    if !cpu.uniform {
        return Err("the record does not say its CPUs were uniform".into());
    }
    // Word lists are sorted and distinct: equal text, equal sets.
    let same = cpu.vendor == first.vendor
        && cpu.family == first.family
        && cpu.model == first.model
        && cpu.stepping == first.stepping
        && cpu.microcode == first.microcode
        && cpu.phys_bits == first.phys_bits
        && cpu.flags == first.flags
        && cpu.bugs == first.bugs;
    if !same {
        return Err("the first CPU differs from the record".into());
    }
    match (rec.kernel.as_deref(), kernel) {
        (Some(r), Some(k)) if r == k => {}
        (r, k) => {
            return Err(format!(
                "kernel {} recorded, {} running",
                r.unwrap_or("?"),
                k.unwrap_or("?")
            ))
        }
    }
    if let Some(view) = &rec.kvm {
        let Some(recorded) = view.binary.as_deref() else {
            return Err("QEMU's answer names no local binary".into());
        };
        // `<size> <mtime> <path>`: the path may contain spaces.
        let path = recorded.splitn(3, ' ').nth(2).unwrap_or("");
        if qemu_now(Path::new(path)).as_deref() != Some(recorded) {
            return Err(format!("QEMU binary {path} changed since it was probed"));
        }
    }
    Ok(())
}

/// This node's [`CpuInfo`] as its record gives it, when [`check`] passes
/// on the first block of `cpuinfo_path`; `None` means: read it all.
#[must_use]
pub fn from_record(rec: &NodeRecord, cpuinfo_path: &Path) -> Option<CpuInfo> {
    let first = first_block(cpuinfo_path).ok()?;
    check(
        rec,
        &first,
        kernel_release().as_deref(),
        crate::fsutil::identity,
    )
    .ok()?;
    Some(rec.cpu.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::qemu_report::QemuReport;

    const BLOCK: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nstepping\t: 7\nmicrocode\t: 0x5000021\naddress sizes\t: 46 bits physical, 48 bits virtual\nflags\t\t: fpu sse sse2 avx avx2 avx512f\nbugs\t\t: spectre_v1\n\n";

    fn info(text: &str) -> CpuInfo {
        cpuinfo::parse(text, Path::new("cpuinfo")).unwrap()
    }

    fn record(text: &str) -> NodeRecord {
        NodeRecord::new("pve1", "local", &info(text), Some("6.8.12-4-pve".into()), 1)
    }

    fn two(a: &str, b: &str) -> String {
        format!("{a}{}", b.replace("processor\t: 0", "processor\t: 1"))
    }

    #[test]
    fn uniform_means_every_block_shows_the_same_facts() {
        assert!(info(&two(BLOCK, BLOCK)).uniform);
        assert!(!info(&two(BLOCK, &BLOCK.replace(" avx512f", ""))).uniform);
        assert!(!info(&two(BLOCK, &BLOCK.replace("0x5000021", "0x5000022"))).uniform);
        assert!(!info(&two(BLOCK, &BLOCK.replace("spectre_v1", "mds"))).uniform);
        // Numbering and frequency are not CPU facts.
        let other = BLOCK.replace("processor\t: 0", "processor\t: 1\ncpu MHz\t\t: 800.0");
        assert!(info(&format!("{BLOCK}{other}")).uniform);
    }

    #[test]
    fn each_rule_can_fail() {
        let rec = record(&two(BLOCK, BLOCK));
        let first = info(BLOCK);
        let k = Some("6.8.12-4-pve");
        let none = |_: &Path| None;
        assert_eq!(check(&rec, &first, k, none), Ok(()));
        // 1: not uniform when recorded.
        let hybrid = record(&two(BLOCK, &BLOCK.replace(" avx512f", "")));
        assert!(check(&hybrid, &info(&BLOCK.replace(" avx512f", "")), k, none).is_err());
        // 2: the first CPU changed.
        for changed in [
            BLOCK.replace("0x5000021", "0x5003604"),
            BLOCK.replace(" avx512f", ""),
            BLOCK.replace(" avx2", " avx2 pku"),
            BLOCK.replace("spectre_v1", "spectre_v1 gds"),
            BLOCK.replace("46 bits", "43 bits"),
            BLOCK.replace("stepping\t: 7", "stepping\t: 6"),
        ] {
            assert!(check(&rec, &info(&changed), k, none).is_err(), "{changed}");
        }
        // 3: kernel.
        assert!(check(&rec, &first, Some("6.8.12-5-pve"), none).is_err());
        assert!(check(&rec, &first, None, none).is_err());
    }

    #[test]
    fn qemu_answer_counts_only_while_its_binary_is_unchanged() {
        let first = info(BLOCK);
        let k = Some("6.8.12-4-pve");
        let id = "4242 1700000000.000000001 /usr/bin/qemu system";
        let mut rec = record(BLOCK);
        rec.kvm = Some(QemuReport {
            binary: Some(id.into()),
            ..QemuReport::default()
        });
        let asked = std::cell::Cell::new(String::new());
        let same = |p: &Path| {
            asked.set(p.display().to_string());
            Some(id.to_string())
        };
        assert_eq!(check(&rec, &first, k, same), Ok(()));
        assert_eq!(asked.take(), "/usr/bin/qemu system");
        let upgraded = |_: &Path| Some("4243 1700000999.000000000 /usr/bin/qemu system".into());
        assert!(check(&rec, &first, k, upgraded).is_err());
        assert!(check(&rec, &first, k, |_: &Path| None).is_err());
        // An answer from a probe over SSH names no binary.
        rec.kvm = Some(QemuReport::default());
        assert!(check(&rec, &first, k, |_: &Path| Some(id.into())).is_err());
    }

    #[test]
    fn first_block_stops_at_the_first_blank_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cpuinfo");
        std::fs::write(&p, format!("{BLOCK}not cpuinfo at all\n")).unwrap();
        let got = first_block(&p).unwrap();
        assert_eq!(got.processors, 1);
        assert!(got.flags.contains("avx512f"));
        let mut rec = record(BLOCK);
        rec.kernel = kernel_release();
        assert_eq!(from_record(&rec, &p).map(|i| i.flags), Some(got.flags));
        rec.kernel = Some("2.6.32-not-running".into());
        assert!(from_record(&rec, &p).is_none());
    }
}
