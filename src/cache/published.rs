//! A node's own CPU record, published through the cluster file system:
//! `<pve_dir>/nodes/<node>/pve-cpuguard.json`.
//!
//! Each node describes itself (its /proc/cpuinfo, its QEMU under KVM, its
//! kernel and microcode) and writes the record below its own directory of
//! /etc/pve, which pmxcfs replicates to every node (as pvestatd does with
//! per-node facts). Every node then reads everyone's record locally.
//!
//! The file is the cache's [`NodeRecord`] serialisation wrapped in a small
//! envelope ([`Published`]), as compact JSON. What another node wrote is
//! outside input: [`load`] opens it without following symlinks or blocking
//! on FIFOs, bounds its size ([`MAX_SIZE`]), and checks the schema, that the
//! node named inside is the node whose directory holds it, and that every
//! value is sane ([`validate`]); the level is never taken from the file,
//! the reader recomputes it from the facts.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::NodeRecord;

/// The schema this version writes and reads.
pub const SCHEMA: u32 = 1;

/// The file name below `nodes/<node>/`.
pub const FILE_NAME: &str = "pve-cpuguard.json";

/// The largest record accepted. pmxcfs refuses files over 1 MiB
/// (pve-cluster: `MEMDB_MAX_FILE_SIZE`), and every byte is replicated to
/// every node; a record with QEMU's whole model table is ~15 KiB.
pub const MAX_SIZE: u64 = 256 * 1024;

/// Clock skew tolerated between nodes before a record counts as "from the
/// future" (corosync clusters run NTP; Proxmox warns beyond a few seconds).
pub const MAX_SKEW_SECS: u64 = 300;

/// The published file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Always [`SCHEMA`] when written by this version.
    pub schema: u32,
    /// The node that wrote it (must match its directory).
    pub node: String,
    /// When it was written (Unix seconds).
    pub published_at: u64,
    /// The tool and version that wrote it, e.g. `pve-cpuguard 0.1.0`.
    pub generator: String,
    /// The node's CPU as the cache stores it.
    pub record: NodeRecord,
}

/// `<pve_dir>/nodes/<node>/pve-cpuguard.json`.
#[must_use]
pub fn path(pve_dir: &Path, node: &str) -> PathBuf {
    pve_dir.join("nodes").join(node).join(FILE_NAME)
}

/// Why a node's published record is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// No file.
    Missing,
    /// Valid, but older than the staleness limit.
    Stale {
        /// Its age in seconds.
        age: u64,
    },
    /// Present and unusable: the message says why (the path is in
    /// [`Rejected::describe`]).
    Invalid(String),
    /// Valid, but no longer this node's view (its kernel or microcode
    /// changed since): the message says what changed.
    Outdated(String),
}

impl Rejected {
    /// One line naming the file: `PATH: why`.
    #[must_use]
    pub fn describe(&self, path: &Path) -> String {
        match self {
            Rejected::Missing => format!("{}: no published record", path.display()),
            Rejected::Stale { age } => format!(
                "{}: published record is {} old (older than the staleness limit)",
                path.display(),
                crate::cache::human_age(*age)
            ),
            Rejected::Invalid(m) => format!("{}: invalid published record: {m}", path.display()),
            Rejected::Outdated(m) => {
                format!("{}: published record is out of date: {m}", path.display())
            }
        }
    }

    /// Stable name for JSON: `missing`, `stale`, `invalid`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Stale { .. } => "stale",
            Rejected::Invalid(_) => "invalid",
            Rejected::Outdated(_) => "outdated",
        }
    }
}

/// The record as written: compact JSON, trailing newline.
#[must_use]
pub fn encode(p: &Published) -> Vec<u8> {
    let mut v = serde_json::to_vec(p).unwrap_or_default();
    v.push(b'\n');
    v
}

/// A new envelope for this node's record.
#[must_use]
pub fn envelope(node: &str, record: NodeRecord, now: u64) -> Published {
    Published {
        schema: SCHEMA,
        node: node.to_string(),
        published_at: now,
        generator: format!("pve-cpuguard {}", env!("CARGO_PKG_VERSION")),
        record,
    }
}

/// Reads and validates `node`'s published record below `pve_dir`. A
/// record older than `max_age` seconds is [`Rejected::Stale`].
///
/// # Errors
/// [`Rejected`], never a panic, whatever the file holds.
pub fn load(pve_dir: &Path, node: &str, now: u64, max_age: u64) -> Result<Published, Rejected> {
    let p = path(pve_dir, node);
    let bytes = read_bounded(&p)?;
    let published = decode(&bytes, node, now)?;
    let age = now.saturating_sub(published.published_at);
    if age > max_age {
        return Err(Rejected::Stale { age });
    }
    Ok(published)
}

/// Reads and validates a record copied out of its cluster (another
/// cluster's node, for a remote migration): the node it names is taken
/// as it is. A record older than `max_age` seconds is
/// [`Rejected::Stale`].
///
/// # Errors
/// [`Rejected`], never a panic, whatever the file holds.
pub fn load_file(path: &Path, now: u64, max_age: u64) -> Result<Published, Rejected> {
    #[derive(Deserialize)]
    struct Named {
        node: String,
    }
    let bytes = read_bounded(path)?;
    let named: Named = serde_json::from_slice(&bytes).map_err(|e| {
        Rejected::Invalid(format!(
            "no node name: {}",
            crate::error::capped(&e.to_string(), 200)
        ))
    })?;
    let published = decode(&bytes, &named.node, now)?;
    let age = now.saturating_sub(published.published_at);
    if age > max_age {
        return Err(Rejected::Stale { age });
    }
    Ok(published)
}

/// Parses and validates a record found in `nodes/<dir_node>/`.
///
/// # Errors
/// [`Rejected::Invalid`] with the reason.
pub fn decode(bytes: &[u8], dir_node: &str, now: u64) -> Result<Published, Rejected> {
    let bad = |m: String| Rejected::Invalid(m);
    // The schema first, so that a newer format is named as such rather
    // than as a parse error.
    #[derive(Deserialize)]
    struct Head {
        schema: u32,
    }
    // serde_json's messages repeat the value they reject (`invalid type:
    // string "…"`): capped, control characters escaped.
    let said = |e: serde_json::Error| crate::error::capped(&e.to_string(), 200);
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("not a pve-cpuguard record ({})", said(e))))?;
    if head.schema != SCHEMA {
        return Err(bad(format!(
            "schema {} (this version reads schema {SCHEMA}); update pve-cpuguard on every node",
            head.schema
        )));
    }
    let p: Published = serde_json::from_slice(bytes).map_err(|e| bad(said(e)))?;
    validate(&p, dir_node, now).map_err(bad)?;
    Ok(p)
}

/// Opens without following a symlink or blocking on a FIFO, accepts only a
/// regular file, and reads at most [`MAX_SIZE`] + 1 bytes.
fn read_bounded(p: &Path) -> Result<Vec<u8>, Rejected> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejected::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Rejected::Invalid("a symbolic link, not a file".into()))
        }
        Err(e) => return Err(Rejected::Invalid(format!("cannot open: {e}"))),
    };
    let meta = f
        .metadata()
        .map_err(|e| Rejected::Invalid(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(Rejected::Invalid("not a regular file".into()));
    }
    if meta.len() > MAX_SIZE {
        return Err(Rejected::Invalid(format!(
            "{} bytes, more than the {MAX_SIZE} a record may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&mut f)
        .take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Rejected::Invalid(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(Rejected::Invalid(format!(
            "more than the {MAX_SIZE} bytes a record may have"
        )));
    }
    Ok(bytes)
}

/// Every value within what a real host can have; `Err` names the first
/// that is not.
///
/// # Errors
/// A message naming the field and the bound.
pub fn validate(p: &Published, dir_node: &str, now: u64) -> Result<(), String> {
    let r = &p.record;
    if p.node != dir_node {
        return Err(format!(
            "it names node '{}' but lies in the directory of node '{dir_node}'",
            text(&p.node, 64)
        ));
    }
    if r.name != dir_node {
        return Err(format!(
            "its record is for node '{}', not '{dir_node}'",
            text(&r.name, 64)
        ));
    }
    if p.published_at > now.saturating_add(MAX_SKEW_SECS) {
        return Err(format!(
            "published_at {} is {} s in the future (is this node's clock right?)",
            p.published_at,
            p.published_at - now
        ));
    }
    if r.scanned_at > p.published_at.saturating_add(MAX_SKEW_SECS) {
        return Err("scanned_at lies after published_at".into());
    }
    printable("generator", &p.generator, 128)?;
    let cpu = &r.cpu;
    printable("vendor", &cpu.vendor, 32)?;
    if cpu.vendor.is_empty() {
        return Err("vendor is empty".into());
    }
    // As a /proc/cpuinfo without an x86 vendor: unsupported, never a CPU
    // with no flags (which would make the node `below-kvm64`).
    if !crate::cpu::capability::is_x86_vendor(&cpu.vendor) {
        return Err(format!(
            "unsupported: vendor '{}' is not an x86 CPU vendor; pve-cpuguard judges x86-64 hosts only",
            text(&cpu.vendor, 32)
        ));
    }
    printable("model_name", &cpu.model_name, 128)?;
    if let Some(m) = &cpu.microcode {
        printable("microcode", m, 32)?;
    }
    if let Some(k) = &r.kernel {
        printable("kernel", k, 128)?;
    }
    // CPUID: family is base (4 bits) + extended (8 bits), model 8 bits,
    // stepping 4 bits (Intel SDM vol. 2A, CPUID leaf 1 EAX).
    bound("family", cpu.family, 0x0f + 0xff)?;
    bound("model", cpu.model, 0xff)?;
    bound("stepping", cpu.stepping, 0x0f)?;
    bound("phys_bits", cpu.phys_bits, 64)?;
    if cpu.processors == 0 || cpu.processors > 65_536 {
        return Err(format!("processors {} (valid: 1-65536)", cpu.processors));
    }
    words("flags", cpu.flags.iter(), 1024)?;
    if let Some(list) = &r.hook_storages {
        if list.len() > 256 {
            return Err(format!(
                "hook_storages has {} entries (at most 256)",
                list.len()
            ));
        }
        for s in list {
            printable("hook_storages entry", s, 64)?;
        }
    }
    if let Some(b) = &cpu.bugs {
        words("bugs", b.iter(), 256)?;
    }
    if r.last_error.is_some() || r.last_attempt_at.is_some() {
        return Err("a published record carries no refresh error".into());
    }
    // Every string is checked alike: whatever reaches a terminal or the
    // journal from another node's file must not carry control characters.
    printable("address", &r.address, 256)?;
    printable("level", &r.level, 32)?;
    if let Some(e) = &r.kvm_error {
        // The probe's error is a message with its `note:` lines, as
        // `publish` writes it: line breaks are its only control
        // characters.
        printable("kvm_error", &e.replace('\n', " "), 4096)?;
    }
    if let Some(q) = &r.qemu {
        printable("qemu", q, 4096)?;
    }
    if let Some(s) = &r.source {
        printable("source", s, 16)?;
    }
    if let Some(k) = &r.kvm {
        printable("kvm.qemu_version", &k.qemu_version, 32)?;
        printable("kvm.qemu_package", &k.qemu_package, 128)?;
        printable("kvm.host.vendor", &k.host.vendor, 32)?;
        printable("kvm.host.model_id", &k.host.model_id, 128)?;
        if let Some(b) = &k.binary {
            printable("kvm.binary", b, 4096)?;
        }
        words(
            "kvm.host_features",
            k.host_features.iter().map(String::as_str),
            2048,
        )?;
        if k.models.len() > 2048 {
            return Err(format!(
                "kvm.models has {} entries (at most 2048)",
                k.models.len()
            ));
        }
        for (name, missing) in &k.models {
            words("kvm.models", std::iter::once(name.as_str()), 1)?;
            words("kvm.models", missing.iter().map(String::as_str), 2048)?;
        }
    }
    Ok(())
}

/// At most `max` bytes, no control characters.
fn printable(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("{field} is longer than {max} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

fn bound(field: &str, v: Option<u32>, max: u32) -> Result<(), String> {
    match v {
        Some(x) if x > max => Err(format!("{field} {x} (at most {max})")),
        _ => Ok(()),
    }
}

/// Feature and model names: at most `max` of them, each 1-64 characters of
/// `[A-Za-z0-9_.-]` (Linux and QEMU spellings both fit).
fn words<'a>(field: &str, it: impl Iterator<Item = &'a str>, max: usize) -> Result<(), String> {
    let mut n = 0;
    for w in it {
        n += 1;
        if n > max {
            return Err(format!("{field} has more than {max} entries"));
        }
        let ok = !w.is_empty()
            && w.len() <= 64
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(format!("{field} holds an invalid name '{}'", text(w, 64)));
        }
    }
    Ok(())
}

/// A value quoted in a message: truncated, control characters escaped.
fn text(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// Writes `bytes` as `path` atomically for readers: a new temporary file in
/// the same directory with an unpredictable name (created
/// `O_CREAT|O_EXCL`, so never through a planted link), mode 0640 (the mode
/// pmxcfs gives its files), fsync, then rename over `path`
/// ([`crate::fsutil::stage`], [`crate::fsutil::commit`]). The one writer
/// of published records, so that it can be swapped for a shared one.
///
/// Two writers of one node (the boot unit and a refresh, or an
/// administrator) each write their own temporary file and neither
/// touches the other's: the last rename wins, both succeed. No temporary
/// file this call did not create is ever removed (a killed writer's
/// `.pve-cpuguard.json.*.tmp` stays; readers never look at it).
///
/// # Errors
/// The I/O error and the file it concerns (the directory when the
/// temporary file cannot be created); the temporary file is removed and
/// `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let staged = crate::fsutil::stage(path, bytes, Some(0o640))
        .map_err(|e| (crate::fsutil::parent(path).to_path_buf(), e))?;
    crate::fsutil::commit(staged, path).map_err(|e| (path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::cpuinfo::CpuInfo;

    fn record(name: &str, at: u64) -> NodeRecord {
        let info = CpuInfo {
            vendor: "GenuineIntel".into(),
            model_name: "Intel(R) Xeon(R) Gold 6230".into(),
            family: Some(6),
            model: Some(85),
            stepping: Some(7),
            microcode: Some("0x5003604".into()),
            phys_bits: Some(46),
            flags: ["fpu", "sse2", "avx2"]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            bugs: Some(["spectre_v1"].into_iter().collect()),
            processors: 80,
            uniform: true,
            logical_cpus: None,
        };
        NodeRecord::new(name, "local", &info, Some("6.8.12-4-pve".into()), at)
    }

    fn bytes(p: &Published) -> Vec<u8> {
        encode(p)
    }

    #[test]
    fn round_trip() {
        let p = envelope("pve1", record("pve1", 100), 100);
        let back = decode(&bytes(&p), "pve1", 100).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn rejects_what_a_real_node_cannot_have() {
        let now = 1000;
        let good = envelope("pve1", record("pve1", now), now);
        type Change = Box<dyn Fn(&mut Published)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|p| p.node = "pve2".into()),
                "lies in the directory of node 'pve1'",
            ),
            (
                Box::new(|p| p.record.name = "pve2".into()),
                "record is for node 'pve2'",
            ),
            (Box::new(|p| p.published_at = 1000 + 301), "in the future"),
            (
                Box::new(|p| p.record.cpu.vendor = String::new()),
                "vendor is empty",
            ),
            (
                Box::new(|p| p.record.cpu.model_name = "x\u{1b}[2J".into()),
                "control characters",
            ),
            (Box::new(|p| p.record.cpu.family = Some(999)), "family 999"),
            (Box::new(|p| p.record.cpu.processors = 0), "processors 0"),
            (
                Box::new(|p| p.record.cpu.phys_bits = Some(65)),
                "phys_bits 65",
            ),
            (
                Box::new(|p| p.record.cpu.flags = "fpu sse;rm".split(' ').collect()),
                "invalid name 'sse;rm'",
            ),
            (
                Box::new(|p| p.record.last_error = Some("x".into())),
                "no refresh error",
            ),
            (
                Box::new(|p| p.record.kernel = Some("k".repeat(129))),
                "kernel is longer",
            ),
        ];
        for (change, want) in cases {
            let mut p = good.clone();
            change(&mut p);
            let e = decode(&bytes(&p), "pve1", now).unwrap_err();
            match e {
                Rejected::Invalid(m) => assert!(m.contains(want), "{m} should contain {want}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(decode(&bytes(&good), "pve1", now).is_ok());
    }

    #[test]
    fn wrong_schema_and_garbage_are_named() {
        let e = decode(br#"{"schema": 7}"#, "a", 0).unwrap_err();
        assert_eq!(e.kind(), "invalid");
        assert!(format!("{e:?}").contains("schema 7"));
        for bad in [&b""[..], b"{", b"[]", b"null", b"{\"schema\":1}"] {
            assert!(matches!(decode(bad, "a", 0), Err(Rejected::Invalid(_))));
        }
        // Deep nesting is a parse error, not a stack overflow.
        let deep = format!(
            "{{\"schema\":1,\"x\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            decode(deep.as_bytes(), "a", 0),
            Err(Rejected::Invalid(_))
        ));
    }

    #[test]
    fn load_classifies_missing_stale_and_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let pve = dir.path();
        assert_eq!(load(pve, "pve1", 0, 10), Err(Rejected::Missing));
        let p = path(pve, "pve1");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        write_atomic(&p, &bytes(&envelope("pve1", record("pve1", 100), 100))).unwrap();
        assert!(load(pve, "pve1", 105, 10).is_ok());
        assert_eq!(
            load(pve, "pve1", 200, 10),
            Err(Rejected::Stale { age: 100 })
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777 & !0o022,
            0o640 & !0o022
        );
        // A FIFO is refused without blocking, a symlink without following.
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(
            matches!(load(pve, "pve1", 105, 10), Err(Rejected::Invalid(m)) if m.contains("not a regular file"))
        );
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        assert!(
            matches!(load(pve, "pve1", 105, 10), Err(Rejected::Invalid(m)) if m.contains("symbolic link"))
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, vec![b' '; usize::try_from(MAX_SIZE).unwrap() + 1]).unwrap();
        assert!(
            matches!(load(pve, "pve1", 105, 10), Err(Rejected::Invalid(m)) if m.contains("more than"))
        );
    }

    #[test]
    fn write_atomic_leaves_no_temporary_files_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        // Another writer's temporary file (an older version's name form):
        // not ours, so never removed.
        let other = dir.path().join(format!("{FILE_NAME}.tmp.1"));
        std::fs::write(&other, "someone else's").unwrap();
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [FILE_NAME.to_string(), format!("{FILE_NAME}.tmp.1")]);
        assert_eq!(std::fs::read(&other).unwrap(), b"someone else's");
        // A directory that does not exist: the error names it.
        let (at, _) = write_atomic(&dir.path().join("no/such/file"), b"x").unwrap_err();
        assert!(at.ends_with("no/such"), "{}", at.display());
    }

    #[test]
    fn concurrent_publishes_of_one_node_do_not_fail_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        // Threads of one process share its PID: the old `<file>.tmp.<pid>`
        // name made them collide (and remove each other's file).
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        write_atomic(&p, format!("{t} {i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.ends_with(" 49"), "{last}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn planted_temp_links_do_not_make_publish_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let pid = std::process::id();
        for name in [
            format!("{FILE_NAME}.tmp.{pid}"),
            format!("{FILE_NAME}.tmp.1"),
            format!("{FILE_NAME}.tmp"),
        ] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_atomic(&p, b"record").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"record");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // The links are not ours: still there.
        assert!(
            std::fs::symlink_metadata(dir.path().join(format!("{FILE_NAME}.tmp.{pid}")))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_record_without_an_x86_vendor_is_unsupported() {
        let now = 1000;
        for vendor in ["ARM", "unknown", "IBM/S390", "genuineintel"] {
            let mut p = envelope("pve1", record("pve1", now), now);
            p.record.cpu.vendor = vendor.into();
            match decode(&bytes(&p), "pve1", now) {
                Err(Rejected::Invalid(m)) => {
                    assert!(m.starts_with("unsupported: vendor '"), "{m}");
                }
                other => panic!("{vendor}: {other:?}"),
            }
        }
        for vendor in [
            "GenuineIntel",
            "AuthenticAMD",
            "HygonGenuine",
            "CentaurHauls",
        ] {
            let mut p = envelope("pve1", record("pve1", now), now);
            p.record.cpu.vendor = vendor.into();
            assert!(decode(&bytes(&p), "pve1", now).is_ok(), "{vendor}");
        }
    }

    #[test]
    fn control_characters_in_any_string_field_are_rejected() {
        let now = 1000;
        let evil = "x\u{1b}]0;owned\u{7}";
        type Change = Box<dyn Fn(&mut Published, &str)>;
        let fields: Vec<(&str, Change)> = vec![
            ("generator", Box::new(|p, v| p.generator = v.into())),
            (
                "model_name",
                Box::new(|p, v| p.record.cpu.model_name = v.into()),
            ),
            (
                "microcode",
                Box::new(|p, v| p.record.cpu.microcode = Some(v.into())),
            ),
            ("kernel", Box::new(|p, v| p.record.kernel = Some(v.into()))),
            ("address", Box::new(|p, v| p.record.address = v.into())),
            ("level", Box::new(|p, v| p.record.level = v.into())),
            (
                "kvm_error",
                Box::new(|p, v| p.record.kvm_error = Some(v.into())),
            ),
            ("qemu", Box::new(|p, v| p.record.qemu = Some(v.into()))),
            ("source", Box::new(|p, v| p.record.source = Some(v.into()))),
            (
                "hook_storages entry",
                Box::new(|p, v| p.record.hook_storages = Some(vec![v.into()])),
            ),
            (
                "kvm.binary",
                Box::new(|p, v| {
                    p.record.kvm = Some(crate::cpu::qemu_report::QemuReport {
                        qemu_version: "9.0.2".into(),
                        binary: Some(v.into()),
                        ..Default::default()
                    });
                }),
            ),
        ];
        for (field, change) in fields {
            let mut p = envelope("pve1", record("pve1", now), now);
            change(&mut p, evil);
            match decode(&bytes(&p), "pve1", now) {
                Err(Rejected::Invalid(m)) => {
                    assert_eq!(m, format!("{field} contains control characters"))
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
