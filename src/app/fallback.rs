//! The hook's last word: the answer it gives when it cannot finish its
//! work, prepared while it can and given without allocating when it cannot
//! — when its deadline passes (the watchdog of `crate::app::deadline`) or
//! when memory runs out (`crate::app::oom`).
//!
//! Giving it writes a prepared line to stderr, sends a prepared datagram
//! to the system log (skipped when the socket path is too long or nobody
//! listens) and exits with a prepared code: only `write`, `socket`,
//! `sendto` and `_exit`, on data prepared before it was published, so that
//! it works on the watchdog's small stack and with no memory left.
//!
//! The hook prepares it before its first file access and replaces it as it
//! learns more ([`prepare`]): the policy once the configuration file is
//! read, a refusal once the answer is one, so that nothing can turn that
//! into an allow. A replaced answer is leaked on purpose: the watchdog or a
//! failing allocation may be reading it at that moment, and the process is
//! short-lived.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Why the work cannot finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The deadline passed.
    Deadline,
    /// An allocation failed (a memory limit, `RLIMIT_AS`, or none left).
    OutOfMemory,
}

/// What to say for one cause: a line for stderr (with its newline) and a
/// datagram for the system log (`crate::syslog::format`).
#[derive(Debug, Clone, Copy)]
pub struct Said<'a> {
    /// The stderr line.
    pub stderr_line: &'a str,
    /// The system log datagram.
    pub datagram: &'a str,
}

/// A prepared answer.
struct Prepared {
    deadline: (Vec<u8>, Vec<u8>),
    out_of_memory: (Vec<u8>, Vec<u8>),
    socket: libc::sockaddr_un,
    socket_len: libc::socklen_t,
    code: i32,
}

/// The current answer; null until the first [`prepare`]. Never freed.
static PREPARED: AtomicPtr<Prepared> = AtomicPtr::new(std::ptr::null_mut());

/// Prepares the answer: exit `code`, saying `deadline` or `out_of_memory`
/// (to stderr, and to the Unix datagram socket `syslog_socket`).
pub fn prepare(code: i32, deadline: Said<'_>, out_of_memory: Said<'_>, syslog_socket: &Path) {
    let (socket, socket_len) = unix_address(syslog_socket);
    let bytes = |s: Said<'_>| {
        (
            s.stderr_line.as_bytes().to_vec(),
            s.datagram.as_bytes().to_vec(),
        )
    };
    let prepared = Box::new(Prepared {
        deadline: bytes(deadline),
        out_of_memory: bytes(out_of_memory),
        socket,
        socket_len,
        code,
    });
    // Leaked: see the module header.
    PREPARED.store(Box::into_raw(prepared), Ordering::SeqCst);
}

/// Whether an answer is prepared.
#[must_use]
pub fn is_prepared() -> bool {
    !PREPARED.load(Ordering::SeqCst).is_null()
}

/// Gives the prepared answer for `cause` and ends the process; with none
/// prepared, ends it with exit code 1 and nothing said.
pub fn give(cause: Cause) -> ! {
    // SAFETY: a non-null PREPARED points at a leaked, never-changed
    // Prepared.
    let Some(p) = (unsafe { PREPARED.load(Ordering::SeqCst).as_ref() }) else {
        // SAFETY: _exit ends the process.
        unsafe { libc::_exit(1) }
    };
    let (stderr, datagram) = match cause {
        Cause::Deadline => &p.deadline,
        Cause::OutOfMemory => &p.out_of_memory,
    };
    say(stderr, datagram, &p.socket, p.socket_len);
    // SAFETY: _exit ends the process.
    unsafe { libc::_exit(p.code) }
}

/// Writes `stderr` to stderr and sends `datagram` to `socket` (when
/// `socket_len` is not 0); errors are ignored on purpose (the process is
/// ending).
fn say(stderr: &[u8], datagram: &[u8], socket: &libc::sockaddr_un, socket_len: libc::socklen_t) {
    // SAFETY: plain system calls on memory valid for their duration.
    unsafe {
        libc::write(2, stderr.as_ptr().cast(), stderr.len());
        if socket_len > 0 {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd >= 0 {
                libc::sendto(
                    fd,
                    datagram.as_ptr().cast(),
                    datagram.len(),
                    libc::MSG_DONTWAIT,
                    std::ptr::from_ref(socket).cast(),
                    socket_len,
                );
            }
        }
    }
}

/// The socket address of `path`; length 0 when it does not fit.
fn unix_address(path: &Path) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).unwrap_or_default();
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return (addr, 0);
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    (addr, libc::socklen_t::try_from(len).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_that_do_not_fit_are_skipped() {
        assert_eq!(unix_address(Path::new("/dev/log")).1, 2 + 8 + 1);
        assert_eq!(unix_address(Path::new("")).1, 0);
        let long = "/x".repeat(60);
        assert_eq!(unix_address(Path::new(&long)).1, 0);
    }
}
