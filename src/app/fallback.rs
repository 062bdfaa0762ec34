//! The hook's last word: the answer it gives when it cannot finish its
//! work, prepared while it can and given without allocating when it cannot
//! — when its deadline passes (the watchdog of `crate::app::deadline`),
//! when memory runs out (`crate::app::oom`) or when it stops on a memory
//! fault such as a stack that cannot grow (`crate::app::entry`).
//!
//! Giving it writes one line to stderr — `pve-cpuguard: <subject> <what
//! happened>; <outcome>` — sends the same to the system log (skipped when
//! the socket path is too long or nobody listens) and exits with the
//! prepared code, using only system calls on memory that is already there
//! (`crate::app::fallback::early::Line`, on the stack), so that it works on
//! the watchdog's small stack, in a signal handler, and with no memory
//! left.
//!
//! The hook prepares it before its first file access and replaces it as it
//! learns more ([`prepare`]): the policy once the configuration file is
//! read, a refusal once the answer is one, so that nothing can turn that
//! into an allow. A replaced answer is leaked on purpose: the watchdog, a
//! failing allocation or a signal handler may be reading it at that
//! moment, and the process is short-lived. Before the first one is
//! prepared (memory running out while the command line is parsed), the
//! answer is worked out when it is given (`early`).

mod early;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};

use early::Line;

/// Why the work cannot finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The deadline passed.
    Deadline,
    /// An allocation failed (a memory limit, `RLIMIT_AS`, or none left).
    OutOfMemory,
    /// The process stopped on `SIGSEGV` or `SIGBUS` (the number).
    Fault(i32),
}

impl Cause {
    /// What happened, after the subject; `late` for the deadline.
    fn words(self, late: &[u8]) -> &[u8] {
        match self {
            Cause::Deadline => late,
            Cause::OutOfMemory => b"ran out of memory",
            Cause::Fault(libc::SIGBUS) => b"stopped on SIGBUS (a memory fault)",
            Cause::Fault(_) => b"stopped on SIGSEGV (most likely its stack could not grow)",
        }
    }
}

/// An answer to prepare: `pve-cpuguard: <subject> <late>; <outcome>` when
/// the deadline passes (and the like for the other causes), then exit
/// `code`.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Exit code; 0 logs a warning, others an error.
    pub code: i32,
    /// What was under way: `VM 100: the CPU check`.
    pub subject: &'a str,
    /// What the deadline's passing is called: `did not finish within 10s`.
    pub late: &'a str,
    /// What comes of it: `allowing the start unchecked (policy default)`.
    pub outcome: &'a str,
}

/// A prepared answer.
struct Prepared {
    subject: Vec<u8>,
    late: Vec<u8>,
    outcome: Vec<u8>,
    socket: libc::sockaddr_un,
    socket_len: libc::socklen_t,
    code: i32,
}

/// The current answer; null until the first [`prepare`]. Never freed.
static PREPARED: AtomicPtr<Prepared> = AtomicPtr::new(std::ptr::null_mut());

/// Prepares `answer`, to be said on stderr and to the Unix datagram socket
/// `syslog_socket`.
pub fn prepare(answer: Answer<'_>, syslog_socket: &Path) {
    let (socket, socket_len) = unix_address(syslog_socket);
    let prepared = Box::new(Prepared {
        subject: answer.subject.as_bytes().to_vec(),
        late: answer.late.as_bytes().to_vec(),
        outcome: answer.outcome.as_bytes().to_vec(),
        socket,
        socket_len,
        code: answer.code,
    });
    // Leaked: see the module header.
    PREPARED.store(Box::into_raw(prepared), Ordering::SeqCst);
}

/// Whether an answer is prepared.
#[must_use]
pub fn is_prepared() -> bool {
    !PREPARED.load(Ordering::SeqCst).is_null()
}

/// Whether this process is the hook: an answer is prepared, or its
/// arguments name the `hook` subcommand (memory can run out before the
/// hook prepares one).
#[must_use]
pub fn is_hook() -> bool {
    let mut buf = [0; early::CMDLINE_MAX];
    is_prepared() || early::call(early::read_cmdline(&mut buf), None).hook
}

/// Gives the answer for `cause` and ends the process: the prepared one,
/// or with none prepared the one worked out from the arguments (`early`).
pub fn give(cause: Cause) -> ! {
    // SAFETY: a non-null PREPARED points at a leaked, never-changed
    // Prepared.
    if let Some(p) = unsafe { PREPARED.load(Ordering::SeqCst).as_ref() } {
        let words = cause.words(&p.late);
        say(
            &p.subject,
            words,
            &p.outcome,
            p.code,
            &p.socket,
            p.socket_len,
        );
        // SAFETY: _exit ends the process.
        unsafe { libc::_exit(p.code) }
    }
    let mut buf = [0; early::CMDLINE_MAX];
    let cmdline = early::read_cmdline(&mut buf);
    let call = early::call(cmdline, early::env(c"PVE_CPUGUARD_POLICY"));
    let (subject, outcome, code) = early::answer(&call);
    let socket = early::env(c"PVE_CPUGUARD_SYSLOG_SOCKET").unwrap_or(b"/dev/log");
    let (socket, socket_len) = unix_address(Path::new(std::ffi::OsStr::from_bytes(socket)));
    say(
        subject.bytes(),
        cause.words(b"did not finish in time"),
        outcome,
        code,
        &socket,
        socket_len,
    );
    // SAFETY: _exit ends the process.
    unsafe { libc::_exit(code) }
}

/// Writes `pve-cpuguard: <subject> <words>; <outcome>` to stderr and sends
/// it to `socket` (when `socket_len` is not 0) as the system log datagram
/// `crate::syslog::format` makes (facility daemon; err when `code` is not
/// 0, else warning). Errors are ignored on purpose: the process is ending.
fn say(
    subject: &[u8],
    words: &[u8],
    outcome: &[u8],
    code: i32,
    socket: &libc::sockaddr_un,
    socket_len: libc::socklen_t,
) {
    let mut msg = Line::new();
    msg.push(subject)
        .push(b" ")
        .push(words)
        .push(b"; ")
        .push(outcome);
    let mut line = Line::new();
    line.push(b"pve-cpuguard: ").push(msg.bytes()).push(b"\n");
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() }.unsigned_abs();
    let mut datagram = Line::new();
    datagram
        .push(b"<")
        .push_number(if code == 0 { 28 } else { 27 })
        .push(b">pve-cpuguard[")
        .push_number(u64::from(pid))
        .push(b"]: ")
        .push(msg.bytes());
    // SAFETY: plain system calls on memory valid for their duration.
    unsafe {
        libc::write(2, line.bytes().as_ptr().cast(), line.bytes().len());
        if socket_len > 0 {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd >= 0 {
                libc::sendto(
                    fd,
                    datagram.bytes().as_ptr().cast(),
                    datagram.bytes().len(),
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
