//! A hard deadline for one process: when it passes, a prepared message goes
//! to stderr and the system log and the process exits with a prepared code.
//!
//! The hook arms it around its check so that a start can never hang on us
//! (a blocked read of a FIFO, a stuck network file system). It is a
//! `SIGALRM` timer, not a watchdog thread: a second thread costs the hook
//! about 0.8 ms per VM start on a virtualised 2-core host (thread stack,
//! malloc arena, cross-CPU TLB flushes at exit), more than the check itself.
//!
//! The handler only calls async-signal-safe functions (`write`, `socket`,
//! `sendto`, `_exit`) on data prepared before the timer was armed.
//!
//! What happens at expiry can change while the timer runs ([`set`]): the
//! hook arms the deadline before it reads its configuration file (so the
//! policy is not known yet), then sets the policy's answer; once its answer
//! is a refusal it replaces the expiry with that refusal ([`rearm`]), so a
//! stalled recording of it can never turn into an allow. A replaced expiry
//! is leaked on purpose: the handler may be reading it at that moment, and
//! the process is short-lived.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
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

static HANDLER: Once = Once::new();

/// Sets what happens at expiry: write `stderr_line` to stderr, send
/// `datagram` to the Unix datagram socket `syslog_socket` (skipped when
/// that path is too long or nobody listens) and exit with `code`. The
/// timer, if running, keeps running.
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

/// Arms the deadline: [`set`], then start the timer to fire after `after`
/// (restarting it if it was running).
pub fn arm(after: Duration, stderr_line: &str, datagram: &str, syslog_socket: &Path, code: i32) {
    set(stderr_line, datagram, syslog_socket, code);
    start(after);
}

/// Replaces the expiry and restarts the timer: [`arm`] under its own name,
/// for a phase with its own bound (recording a refusal).
pub fn rearm(after: Duration, stderr_line: &str, datagram: &str, syslog_socket: &Path, code: i32) {
    arm(after, stderr_line, datagram, syslog_socket, code);
}

fn start(after: Duration) {
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: timeval(after),
    };
    // SAFETY: installs a handler that only reads through EXPIRY, whose
    // targets are fully built before they are published and never freed,
    // and calls async-signal-safe functions.
    HANDLER.call_once(|| unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_expiry as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut());
    });
    // SAFETY: sets ITIMER_REAL from a valid itimerval.
    unsafe {
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

/// Stops the timer; the work finished in time.
pub fn disarm() {
    // SAFETY: a zero itimerval stops ITIMER_REAL; nothing else is touched.
    unsafe {
        let stop: libc::itimerval = std::mem::zeroed();
        libc::setitimer(libc::ITIMER_REAL, &stop, std::ptr::null_mut());
    }
}

extern "C" fn on_expiry(_signal: libc::c_int) {
    // SAFETY: a non-null EXPIRY points at a leaked, never-changed Expiry.
    let Some(e) = (unsafe { EXPIRY.load(Ordering::SeqCst).as_ref() }) else {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(1) }
    };
    // SAFETY: only async-signal-safe calls on memory that lives for the
    // whole process; results are ignored on purpose (we are exiting).
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

fn timeval(d: Duration) -> libc::timeval {
    // At least one microsecond: a zero it_value would disarm the timer.
    let d = d.max(Duration::from_micros(1));
    libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(d.subsec_micros()),
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

    #[test]
    fn a_zero_deadline_still_fires() {
        assert_eq!(timeval(Duration::ZERO).tv_usec, 1);
        let t = timeval(Duration::from_millis(1500));
        assert_eq!((t.tv_sec, t.tv_usec), (1, 500_000));
    }
}
