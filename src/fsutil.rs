//! Safe file access for every layer but the pure core: reading a file that
//! may turn out to be a FIFO or a device, replacing a file without ever
//! writing through a planted symlink, and locks whose wait is bounded.
//!
//! Rule: the file system only (std and libc); no knowledge of what the
//! files mean. `crate::cpu` stays pure and does not use it.
//!
//! Why each piece exists (issue 12, "under faults"):
//! - [`read`]: `open(2)` on a FIFO blocks until a writer appears and
//!   `read(2)` on a character device may never end. The file is opened with
//!   `O_NONBLOCK` (which makes `open` of a FIFO return at once), checked with
//!   `fstat` to be a regular file, and only then read, at most
//!   [`MAX_INPUT`] bytes. A link is followed (configuration files may be
//!   links), but what it points at must be a regular file too.
//! - [`replace`]: the new content goes to a temporary file created with
//!   `O_CREAT|O_EXCL` and a random name in the target's directory (the
//!   `tempfile` crate; `O_EXCL` fails on any existing name, a symlink or
//!   a dangling one included), is fsynced and renamed over the target.
//!   `rename(2)` replaces a symlink at the final path itself; it never
//!   writes through it.
//! - [`append`]: a counter that no writer waits for (issue 21): one
//!   `write(2)` on a descriptor opened with `O_APPEND`, which the kernel
//!   performs as one step (seek to the end and write, under the inode's
//!   lock on local file systems), so concurrent appends never overwrite
//!   each other. `O_NOFOLLOW` and `O_NONBLOCK` as for locks; the file must
//!   be a regular file with a single name, so that a hard link planted at
//!   the path never makes us append to another file.
//! - [`open_lock`] / [`lock_within`]: a lock file is opened with
//!   `O_NOFOLLOW` (a dangling link there must not make us create its
//!   target) and `O_NONBLOCK` (a FIFO there must not block the open), must
//!   be a regular file, and is waited for with `try_lock` until a deadline,
//!   then an error names the lock file and what to do.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use fs2::FileExt;

use crate::error::{Error, Result};

/// The largest input file read (64 MiB): far above any real Proxmox or
/// cpuinfo file (a 10 000-node cache is about 20 MB), small enough that a
/// hostile or runaway file cannot exhaust memory.
pub const MAX_INPUT: u64 = 64 << 20;

/// What kind of non-regular file is at a path, for the error message.
fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn not_regular(t: std::fs::FileType) -> std::io::Error {
    std::io::Error::new(
        ErrorKind::InvalidInput,
        format!("{}, not a regular file; refusing to read it", kind_name(t)),
    )
}

/// The metadata of an opened file, which must be a regular file: a FIFO,
/// device, directory or socket is refused, named.
fn regular_meta(file: &File) -> std::io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok(meta)
}

/// Opens `path` for reading without blocking and checks it is a regular
/// file; the descriptor is back in blocking mode on return.
///
/// # Errors
/// The `open` error, or `InvalidInput` for a FIFO, device, directory or
/// socket.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let (file, _) = open_regular_nonblocking(path)?;
    set_blocking(&file);
    Ok(file)
}

/// Opens `path` with `O_NONBLOCK` (a FIFO cannot hang the open) and checks
/// it is a regular file, with the metadata the check read (callers that
/// size a buffer need no second `fstat`). The descriptor is still
/// non-blocking: see [`set_blocking`].
fn open_regular_nonblocking(path: &Path) -> std::io::Result<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = regular_meta(&file)?;
    Ok((file, meta))
}

/// Back to blocking reads: the only status flag set at open is
/// `O_NONBLOCK` (`O_CLOEXEC` is a descriptor flag), so one `F_SETFL`
/// clears it.
fn set_blocking(file: &File) {
    // SAFETY: F_SETFL on a descriptor we own; no memory involved.
    unsafe {
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0);
    }
}

/// Reads a whole regular file of at most [`MAX_INPUT`] bytes (see the
/// module header); the plain `std::io` error.
///
/// # Errors
/// As [`open_regular`], read errors, and `InvalidData` for a larger file.
pub fn read_raw(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let hint = file.metadata().map_or(0, |m| m.len()).min(MAX_INPUT);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(MAX_INPUT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {} MiB; refusing to read it", MAX_INPUT >> 20),
        ));
    }
    Ok(bytes)
}

/// Reads the beginning of a regular file into `buf` (cleared first), a
/// block, then as much again as it holds each time, until `enough(buf)` is true, the end of the file, or
/// [`MAX_INPUT`] bytes; for files of which only a first part counts (a VM
/// config's main section, the first CPU block of /proc/cpuinfo).
///
/// Fewer system calls than [`read_raw`] (open, fstat, one read per block,
/// close; `fcntl` only should a read report it would block), no
/// end-of-file probe when `fstat` gives the size, and
/// `buf` is reused by the caller: reading 10 000 VM configs from pmxcfs is
/// system-call bound (issue 16). Files whose size `fstat` does not know
/// (procfs reports 0) are read until `read` returns 0.
///
/// # Errors
/// As [`read_raw`].
pub fn read_head(
    path: &Path,
    buf: &mut Vec<u8>,
    block: usize,
    mut enough: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<()> {
    buf.clear();
    // Left non-blocking until a read would block: a regular file's reads
    // do not (local file systems ignore the flag), and a 10 000-VM audit
    // saves 10 000 `fcntl` calls; one that does is set blocking and read
    // again, as if it had been from the start.
    let (mut file, meta) = open_regular_nonblocking(path)?;
    let mut blocking = false;
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    loop {
        // Each read asks for at least as much as is already there, so the
        // reads grow geometrically: `enough` rescans what it has (a VM
        // config's long last line), and with fixed blocks a line of n bytes
        // cost n / block rescans of it, quadratic time (issue 21). The
        // first read is still one `block`, what nearly every file needs.
        let step = block.max(1).max(buf.len());
        let want = if size > buf.len() {
            (size - buf.len()).min(step)
        } else {
            step
        };
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = loop {
            match file.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Once: should it not take, the error is the answer.
                Err(e) if e.kind() == ErrorKind::WouldBlock && !blocking => {
                    set_blocking(&file);
                    blocking = true;
                }
                Err(e) => {
                    buf.truncate(start);
                    return Err(e);
                }
            }
        };
        buf.truncate(start + n);
        if buf.len() as u64 > MAX_INPUT {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("larger than {} MiB; refusing to read it", MAX_INPUT >> 20),
            ));
        }
        if n == 0 || enough(buf) || (size > 0 && buf.len() >= size) {
            return Ok(());
        }
    }
}

/// A file's identity for "has it changed since": `<size> <mtime in ns>
/// <path>` from one `stat(2)` (a package upgrade replaces the file, which
/// changes its mtime). `None` when it cannot be stat'ed.
#[must_use]
pub fn identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {}.{:09} {}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        path.display()
    ))
}

/// [`read_raw`] as UTF-8 text (`InvalidData` otherwise, as
/// `std::fs::read_to_string`).
///
/// # Errors
/// As [`read_raw`].
pub fn read_to_string_raw(path: impl AsRef<Path>) -> std::io::Result<String> {
    String::from_utf8(read_raw(path.as_ref())?)
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "not valid UTF-8 text"))
}

/// [`read_raw`] with the path in the error.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    read_raw(path).map_err(|e| Error::io(path, e))
}

/// [`read_raw`], `None` when the file does not exist.
///
/// # Errors
/// [`Error::Io`] naming `path` for every other failure.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match read_raw(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// [`read_optional`] for a text file: its content as UTF-8, `None` when it
/// does not exist. Every configuration file the tool reads goes through here.
///
/// # Errors
/// As [`read_optional`], and a file that is not UTF-8 (naming it, line 1).
pub fn read_text_optional(path: &Path) -> Result<Option<String>> {
    read_optional(path)?.map(|b| utf8(b, path)).transpose()
}

/// Parses an optional text file: `parse` gets its text and path; a file
/// that does not exist is `T::default()` (no HA resources, no custom
/// models, no chained hookscripts).
///
/// # Errors
/// As [`read_text_optional`], and what `parse` returns.
pub fn parse_optional<T: Default>(
    path: &Path,
    parse: impl FnOnce(&str, &Path) -> Result<T>,
) -> Result<T> {
    match read_text_optional(path)? {
        Some(text) => parse(&text, path),
        None => Ok(T::default()),
    }
}

/// [`read`] for a text file that must exist.
///
/// # Errors
/// As [`read`], and a file that is not UTF-8 (naming it, line 1).
pub fn read_text(path: &Path) -> Result<String> {
    utf8(read(path)?, path)
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::parse(path, 1, "not valid UTF-8 text"))
}

/// Whether a regular file is at `path` (following links): `false` when
/// nothing is there, an error when something else is (a FIFO, a directory)
/// or the path cannot be looked at, so that callers name the problem
/// instead of reporting the file missing.
///
/// # Errors
/// `InvalidInput` for a non-regular file; the `stat` error otherwise.
pub fn regular_exists(path: &Path) -> std::io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(true),
        Ok(m) => Err(not_regular(m.file_type())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The directory a file lives in (`.` for a bare name).
#[must_use]
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` (file mode `mode`; `None` leaves the creation mode 0600,
/// for pmxcfs which sets its own modes and may refuse `chmod`) to a new file with a random name in
/// `path`'s directory, created with `O_CREAT|O_EXCL`, and fsyncs it; it
/// becomes `path` with [`commit`]. Dropping it unused removes it.
///
/// # Errors
/// The plain `std::io` error (the temporary file is removed).
pub fn stage(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(parent(path))?;
    tmp.write_all(bytes)?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Renames a [`stage`]d file over `path` (a symlink there is replaced, not
/// followed), then fsyncs the directory.
///
/// # Errors
/// The rename's error (the temporary file is removed).
pub fn commit(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    tmp.persist(path).map_err(|e| e.error)?;
    // Best effort: some file systems (pmxcfs) refuse fsync on a directory.
    if let Ok(d) = File::open(parent(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Replaces `path` with `bytes` (file mode `mode`): [`stage`] then
/// [`commit`]. A symlink at `path` is replaced, never written through.
///
/// # Errors
/// The plain `std::io` error (the temporary file is removed).
pub fn replace_raw(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    commit(stage(path, bytes, mode)?, path)
}

/// [`replace_raw`] with the path in the error.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn replace(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    replace_raw(path, bytes, mode).map_err(|e| Error::io(path, e))
}

/// Whether `name` is a temporary file [`replace`] makes for a file named
/// `file_name` (to clean up after a writer that died).
#[must_use]
pub fn is_temp_of(name: &str, file_name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(file_name))
        .and_then(|n| n.strip_prefix('.'))
        .is_some_and(|n| n.ends_with(".tmp"))
}

/// `O_NOFOLLOW`'s `ELOOP` said as what it is: a planted link refused.
fn link_refused(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::new(
            ErrorKind::InvalidInput,
            "a symbolic link; refusing to follow it",
        )
    } else {
        e
    }
}

/// Appends `bytes` to the regular file `path` (created with `mode` when
/// missing) in one `write(2)` with `O_APPEND`, then syncs its data (see
/// the module header). Concurrent appenders never wait for each other
/// here and never lose an append.
///
/// # Errors
/// The `open` error (`InvalidInput` for a symlink, a FIFO, a directory or
/// a file with more than one name), the write error (`WriteZero` for a
/// short write), or the sync error (the bytes may then be there or not).
pub fn append(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(link_refused)?;
    let meta = regular_meta(&file)?;
    if meta.nlink() != 1 {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a file with {} names (a hard link); refusing to append to it",
                meta.nlink()
            ),
        ));
    }
    // One call, so that the bytes land together: `write_all` could split
    // them into several appends with another writer's in between.
    let written = loop {
        match file.write(bytes) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    if written != bytes.len() {
        return Err(std::io::Error::new(
            ErrorKind::WriteZero,
            format!("wrote {written} of {} bytes", bytes.len()),
        ));
    }
    file.sync_data()
}

/// Opens (creating it, mode 0600) a lock file: never through a symlink,
/// never blocking on a FIFO, and only a regular file.
///
/// # Errors
/// The `open` error (`ELOOP` for a symlink), or `InvalidInput` for a
/// non-regular file.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        // Read and write: opening a FIFO write-only without a reader fails
        // with a puzzling ENXIO; this way it opens and is named below.
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(link_refused)?;
    regular_meta(&file)?;
    Ok(file)
}

/// How long [`lock_within`] sleeps between attempts.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Takes an exclusive `flock` on `file` (opened from `path`), trying until
/// `wait` has passed.
///
/// # Errors
/// [`Error::Lock`] naming `path`, with what to do, when the lock is still
/// held after `wait` or cannot be taken at all.
pub fn lock_within(file: &File, path: &Path, wait: Duration, holder: &str) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(()),
            Err(e)
                if e.kind() == ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::EAGAIN) =>
            {
                if Instant::now() >= deadline {
                    return Err(Error::Lock {
                        path: path.to_path_buf(),
                        source: std::io::Error::new(
                            ErrorKind::TimedOut,
                            format!(
                                "still held by another process after {:.1} s\nnote: {holder} holds it; find it with `fuser -v {}` and wait for it or stop it, then retry",
                                wait.as_secs_f64(),
                                path.display()
                            ),
                        ),
                    });
                }
                std::thread::sleep(LOCK_POLL);
            }
            Err(e) => {
                return Err(Error::Lock {
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn an_optional_file_is_parsed_or_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("list.cfg");
        let lines = |text: &str, _: &Path| Ok(text.lines().map(str::to_string).collect());
        assert_eq!(
            parse_optional::<Vec<String>>(&f, lines).unwrap(),
            Vec::<String>::new()
        );
        std::fs::write(&f, "a\nb\n").unwrap();
        assert_eq!(
            parse_optional::<Vec<String>>(&f, lines).unwrap(),
            ["a", "b"]
        );
        // The parser gets the path for its errors.
        let e = parse_optional::<Vec<String>>(&f, |_, p| Err(Error::parse(p, 2, "bad")))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("list.cfg:2: bad"), "{e}");
        std::fs::write(&f, b"\xff").unwrap();
        let e = parse_optional::<Vec<String>>(&f, lines)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("list.cfg:1: not valid UTF-8 text"), "{e}");
    }

    #[test]
    fn non_regular_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fifo");
        fifo(&f);
        let t = Instant::now();
        let e = read(&f).unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(e.contains("fifo: a FIFO, not a regular file"), "{e}");
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        let e = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("/dev/zero: a character device"), "{e}");
        assert_eq!(read_optional(&dir.path().join("none")).unwrap(), None);
        let link = dir.path().join("link");
        symlink(&f, &link).unwrap();
        assert!(read(&link).unwrap_err().to_string().contains("a FIFO"));
        let e = open_lock(&f).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
    }

    #[test]
    fn replace_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let target = dir.path().join("out");
        symlink(&victim, &target).unwrap();
        replace(&target, b"new", Some(0o640)).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(is_temp_of(".out.a1B2c3.tmp", "out"));
        assert!(!is_temp_of(".out.a1B2c3", "out"));
        assert!(!is_temp_of(".outx.a.tmp", "out"));
    }

    #[test]
    fn appends_add_up_and_never_go_through_a_link_a_hard_link_or_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tally");
        append(&f, b"\n", 0o644).unwrap();
        append(&f, b"\n", 0o644).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"\n\n");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        let e = append(&link, b"\n", 0o644).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("created-by-us"), &dangling).unwrap();
        assert!(append(&dangling, b"\n", 0o644).is_err());
        assert!(!dir.path().join("created-by-us").exists());
        let hard = dir.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = append(&hard, b"\n", 0o644).unwrap_err().to_string();
        assert!(e.contains("hard link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let fifo_path = dir.path().join("fifo");
        fifo(&fifo_path);
        // Without a reader, a blocking open would wait here for ever.
        assert!(append(&fifo_path, b"\n", 0o644).is_err());
    }

    #[test]
    fn a_lock_is_never_created_through_a_dangling_link_and_waits_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        let victim = dir.path().join("created-by-us");
        symlink(&victim, &lock).unwrap();
        let e = open_lock(&lock).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!victim.exists());
        std::fs::remove_file(&lock).unwrap();
        let held = open_lock(&lock).unwrap();
        held.lock_exclusive().unwrap();
        let other = open_lock(&lock).unwrap();
        let t = Instant::now();
        let e = lock_within(&other, &lock, Duration::from_millis(200), "a scan")
            .unwrap_err()
            .to_string();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(
            e.contains("x.lock") && e.contains("note: a scan holds it"),
            "{e}"
        );
        FileExt::unlock(&held).unwrap();
        lock_within(&other, &lock, Duration::from_millis(200), "a scan").unwrap();
    }
}
