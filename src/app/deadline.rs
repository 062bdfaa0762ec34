//! A hard deadline for one process: when it passes, the process gives its
//! prepared answer (`crate::app::fallback`: a line on stderr, one in the
//! system log, an exit code) and ends.
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
//! is not*).
//!
//! The thread is made with `pthread_create` directly, on a stack that is
//! part of the program (a static buffer), and never allocates (no malloc
//! arena, no Rust thread state): starting it maps no memory, so a memory
//! limit (`RLIMIT_AS`) that leaves the hook room to run leaves it room for
//! its watchdog, and its cost per VM start stays small (see
//! `benches/hook_prestart.rs`). It runs with every signal blocked: its
//! small stack is no place for a handler.
//!
//! When the thread cannot be started at all (a limit on processes or
//! threads: `RLIMIT_NPROC`, a cgroup's `pids.max`), [`arm`] says so, and the
//! caller must not start work the deadline was to bound. [`fatal_alarm`] is
//! the bound left then: `SIGALRM` with its default action, which the kernel
//! delivers as a fatal signal even into a killable FUSE wait, but which
//! ends the process by a signal, not with the prepared answer.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// When the deadline passes, in `CLOCK_MONOTONIC` nanoseconds; `u64::MAX`
/// when disarmed.
static DEADLINE_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether the watchdog runs: `Ok`, or the `errno` that kept it from
/// starting. Set once.
static WATCHDOG: OnceLock<Result<(), i32>> = OnceLock::new();

/// How often the watchdog looks at [`DEADLINE_NS`] again at most: a
/// deadline moved earlier is honoured within this time.
const POLL_NS: u64 = 50_000_000;

/// The watchdog's stack: enough for the few plain calls it makes, glibc's
/// thread descriptor and the program's static TLS, which glibc places at
/// the top of a stack it is given.
const STACK_SIZE: usize = 64 * 1024;

/// The watchdog's stack, in the program's own memory (see the module
/// header). Only the one watchdog thread ever uses it.
#[repr(C, align(4096))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: the buffer is handed to one thread only (the watchdog, started
// at most once) and never touched from Rust.
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_SIZE]));

/// The deadline cannot be enforced: the watchdog thread cannot be started.
#[derive(Debug, thiserror::Error)]
#[error("its watchdog thread cannot be started: {0}")]
pub struct Unarmed(#[source] std::io::Error);

/// Arms the deadline: it passes `after` from now (replacing any running
/// deadline), and the process then gives its prepared answer.
///
/// # Errors
/// [`Unarmed`] when the watchdog thread cannot be started (then, and for
/// the rest of the process, nothing is armed).
pub fn arm(after: Duration) -> Result<(), Unarmed> {
    if let Err(errno) = WATCHDOG.get_or_init(spawn_watchdog) {
        return Err(Unarmed(std::io::Error::from_raw_os_error(*errno)));
    }
    let ns = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX / 2);
    DEADLINE_NS.store(monotonic_ns().saturating_add(ns), Ordering::SeqCst);
    Ok(())
}

/// Stops the deadline; the work finished in time.
pub fn disarm() {
    DEADLINE_NS.store(u64::MAX, Ordering::SeqCst);
}

/// The bound without a watchdog: `SIGALRM` `after` from now, with its
/// default action (ending the process) restored and unblocked.
pub fn fatal_alarm(after: Duration) {
    // At least 1 µs: a zero value would disarm the timer.
    let micros = after.as_micros().max(1);
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: libc::time_t::try_from(micros / 1_000_000).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::try_from(micros % 1_000_000).unwrap_or(0),
        },
    };
    // SAFETY: plain signal and timer calls on values we own.
    unsafe {
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

/// Cancels [`fatal_alarm`].
pub fn cancel_alarm() {
    // SAFETY: a zeroed itimerval disarms the timer.
    unsafe {
        let off: libc::itimerval = std::mem::zeroed();
        libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
    }
}

fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Starts the watchdog thread on [`STACK`], with every signal blocked;
/// the `errno` when it cannot be started.
fn spawn_watchdog() -> Result<(), i32> {
    // SAFETY: plain pthread and signal calls on objects we own; the stack
    // is used by this one thread only; the thread function takes no
    // argument and never returns.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let r = libc::pthread_attr_init(&mut attr);
        if r != 0 {
            return Err(r);
        }
        if libc::pthread_attr_setstack(&mut attr, STACK.0.get().cast(), STACK_SIZE) != 0 {
            // A platform whose minimum stack is larger: a mapped one.
            libc::pthread_attr_setstacksize(&mut attr, STACK_SIZE.max(libc::PTHREAD_STACK_MIN));
        }
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut thread: libc::pthread_t = std::mem::zeroed();
        let r = libc::pthread_create(&mut thread, &attr, watchdog, std::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if r == 0 {
            Ok(())
        } else {
            Err(r)
        }
    }
}

extern "C" fn watchdog(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let deadline = DEADLINE_NS.load(Ordering::SeqCst);
        let now = monotonic_ns();
        if deadline != u64::MAX && now >= deadline {
            crate::app::fallback::give(crate::app::fallback::Cause::Deadline);
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
