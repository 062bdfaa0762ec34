//! A hard deadline for one process: when it passes, a prepared message goes
//! to stderr and the system log and the process exits with a prepared code.
//!
//! The hook arms it before its first file access so that a start can never
//! hang on us (a stuck network or FUSE file system such as a hung pmxcfs).
//!
//! It is a watchdog thread, not a `SIGALRM` handler: a process blocked in a
//! FUSE request waits in the kernel where only a fatal signal reaches it
//! (`request_wait_answer` and `fuse_get_req` in the kernel's fs/fuse/dev.c
//! wait "killable"), so a handler on the main thread would never run. A
//! second thread calling `_exit` ends the whole process, the blocked thread
//! included (`exit_group` sends it SIGKILL).
//!
//! Where the kernel does not let even that happen, nothing here can: once
//! the FUSE server has read the request, `request_wait_answer` waits for
//! its answer uninterruptibly, and the process ends only when the answer
//! comes or the connection is aborted (README, *What is bounded, and what
//! is not*). The thread is made with
//! `pthread_create` directly, with a small stack, and never allocates (no
//! malloc arena, no Rust thread state): that keeps its cost per VM start
//! small (see `benches/hook_prestart.rs`).
//!
//! At expiry the thread only calls `write`, `socket`, `sendto` and `_exit`
//! on data prepared before it was published.
//!
//! What happens at expiry can change while the deadline runs ([`set`]): the
//! hook arms the deadline before it reads its configuration file (so the
//! policy is not known yet), then sets the policy's answer; once its answer
//! is a refusal it replaces the expiry with that refusal ([`rearm`]), so a
//! stalled recording of it can never turn into an allow. A replaced expiry
//! is leaked on purpose: the watchdog may be reading it at that moment, and
//! the process is short-lived.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

/// What to do when the deadline passes.
struct Expiry {
    stderr: Vec<u8>,
    datagram: Vec<u8>,
    socket: libc::sockaddr_un,
    socket_len: libc::socklen_t,
    code: i32,
}

/// The current expiry; null until the first [`set`]. Never freed.
static EXPIRY: AtomicPtr<Expiry> = AtomicPtr::new(std::ptr::null_mut());

/// When the deadline passes, in `CLOCK_MONOTONIC` nanoseconds; `u64::MAX`
/// when disarmed.
static DEADLINE_NS: AtomicU64 = AtomicU64::new(u64::MAX);

static WATCHDOG: Once = Once::new();

/// How often the watchdog looks at [`DEADLINE_NS`] again at most: a
/// deadline moved earlier is honoured within this time.
const POLL_NS: u64 = 50_000_000;

/// Sets what happens at expiry: write `stderr_line` to stderr, send
/// `datagram` to the Unix datagram socket `syslog_socket` (skipped when
/// that path is too long or nobody listens) and exit with `code`. The
/// deadline, if running, keeps running.
pub fn set(stderr_line: &str, datagram: &str, syslog_socket: &Path, code: i32) {
    let (socket, socket_len) = unix_address(syslog_socket);
    let expiry = Box::new(Expiry {
        stderr: stderr_line.as_bytes().to_vec(),
        datagram: datagram.as_bytes().to_vec(),
        socket,
        socket_len,
        code,
    });
    // Leaked: see the module header.
    EXPIRY.store(Box::into_raw(expiry), Ordering::SeqCst);
}

/// Arms the deadline: [`set`], then let it pass `after` from now
/// (replacing any running deadline).
pub fn arm(after: Duration, stderr_line: &str, datagram: &str, syslog_socket: &Path, code: i32) {
    set(stderr_line, datagram, syslog_socket, code);
    start(after);
}

/// Replaces the expiry and restarts the deadline: [`arm`] under its own
/// name, for a phase with its own bound (recording a refusal).
pub fn rearm(after: Duration, stderr_line: &str, datagram: &str, syslog_socket: &Path, code: i32) {
    arm(after, stderr_line, datagram, syslog_socket, code);
}

/// Stops the deadline; the work finished in time.
pub fn disarm() {
    DEADLINE_NS.store(u64::MAX, Ordering::SeqCst);
}

fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

fn start(after: Duration) {
    let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX / 2);
    DEADLINE_NS.store(monotonic_ns().saturating_add(ns), Ordering::SeqCst);
    WATCHDOG.call_once(spawn_watchdog);
}

/// Starts the watchdog thread. If it cannot be started the deadline is not
/// enforced (the process runs as it would without one).
fn spawn_watchdog() {
    // SAFETY: plain pthread calls on an attribute object we own; the thread
    // function takes no argument and never returns.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return;
        }
        // Enough for the few plain calls the watchdog makes.
        libc::pthread_attr_setstacksize(&mut attr, 64 * 1024);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread: libc::pthread_t = std::mem::zeroed();
        libc::pthread_create(&mut thread, &attr, watchdog, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
    }
}

extern "C" fn watchdog(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let deadline = DEADLINE_NS.load(Ordering::SeqCst);
        let now = monotonic_ns();
        if deadline != u64::MAX && now >= deadline {
            expire();
        }
        let wait = deadline.saturating_sub(now).min(POLL_NS);
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::c_long::try_from(wait).unwrap_or(0),
        };
        // SAFETY: sleeps; `ts` is valid for the call.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
}

fn expire() -> ! {
    // SAFETY: a non-null EXPIRY points at a leaked, never-changed Expiry.
    let Some(e) = (unsafe { EXPIRY.load(Ordering::SeqCst).as_ref() }) else {
        // SAFETY: _exit ends the process.
        unsafe { libc::_exit(1) }
    };
    // SAFETY: plain system calls on memory that lives for the whole
    // process; results are ignored on purpose (we are exiting).
    unsafe {
        libc::write(2, e.stderr.as_ptr().cast(), e.stderr.len());
        if e.socket_len > 0 {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd >= 0 {
                libc::sendto(
                    fd,
                    e.datagram.as_ptr().cast(),
                    e.datagram.len(),
                    libc::MSG_DONTWAIT,
                    std::ptr::from_ref(&e.socket).cast(),
                    e.socket_len,
                );
            }
        }
        libc::_exit(e.code)
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
