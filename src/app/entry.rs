//! The binaries' start, in place of Rust's (`#![no_main]`; issue 21).
//!
//! Rust's own start maps an alternate signal stack for its stack-overflow
//! message before `main` runs, and aborts (`SIGABRT`, exit status 134)
//! when that mapping fails, as it does under a memory limit (`RLIMIT_AS`)
//! that leaves the program just room to load: a hook that ran nothing of
//! its own would fail the start whatever its policy. [`start`] does what
//! Rust's start does without mapping memory:
//!
//! - standard descriptors 0, 1 and 2 that are closed are opened on
//!   `/dev/null`, so that no file the program opens becomes its stderr;
//! - `SIGPIPE` is ignored, so that writing to a closed pipe is an error
//!   the program handles (`EPIPE`), not its end;
//! - `SIGSEGV` and `SIGBUS` are handled on an alternate stack that is part
//!   of the program: in the hook they give its answer
//!   (`crate::app::fallback`, by the policy) — under a memory limit the
//!   main thread's stack can fail to grow, which the kernel reports as
//!   `SIGSEGV`; elsewhere the handler names the signal and lets it end the
//!   process as it would have;
//! - a panic ends the process with exit code 101, as Rust's start does.
//!
//! The arguments need nothing here: the standard library reads them on
//! Linux from glibc's initialisation, whatever the entry point.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which program starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `pve-cpuguard-hook`: every process is the hook.
    Hook,
    /// `pve-cpuguard`: the hook only as its `hook` subcommand.
    Tool,
}

/// Whether every process of this program is the hook.
static ALWAYS_HOOK: AtomicBool = AtomicBool::new(false);

/// The signal stack: room for the kernel's signal frame (a few KiB with
/// AVX-512 state) and the handler's lines.
const SIGNAL_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct SignalStack(UnsafeCell<[u8; SIGNAL_STACK_SIZE]>);

// SAFETY: handed to the kernel for the main thread's signal handlers only,
// never touched from Rust.
unsafe impl Sync for SignalStack {}

static SIGNAL_STACK: SignalStack = SignalStack(UnsafeCell::new([0; SIGNAL_STACK_SIZE]));

/// Runs `main` as `program`, and exits with its code.
pub fn start(program: Program, main: fn() -> i32) -> ! {
    ALWAYS_HOOK.store(program == Program::Hook, Ordering::SeqCst);
    // SAFETY: plain system calls on the standard descriptors, on signal
    // dispositions and on a stack in static memory, before any other
    // thread exists.
    unsafe {
        for fd in 0..=2 {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
            {
                // The lowest free descriptor: this one. Should /dev/null
                // be missing, the descriptor stays closed.
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let stack = libc::stack_t {
            ss_sp: SIGNAL_STACK.0.get().cast(),
            ss_flags: 0,
            ss_size: SIGNAL_STACK_SIZE,
        };
        libc::sigaltstack(&stack, std::ptr::null_mut());
        let mut action: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_fault;
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
    let code = std::panic::catch_unwind(main).unwrap_or(101);
    std::process::exit(code)
}

/// `SIGSEGV` or `SIGBUS` (see the module header).
extern "C" fn on_fault(signal: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if ALWAYS_HOOK.load(Ordering::SeqCst) || crate::app::fallback::is_hook() {
        crate::app::fallback::give(crate::app::fallback::Cause::Fault(signal));
    }
    let line: &[u8] = if signal == libc::SIGBUS {
        b"pve-cpuguard: stopped on SIGBUS (a memory fault)\n"
    } else {
        b"pve-cpuguard: stopped on SIGSEGV (most likely a stack that could not grow)\n"
    };
    // SAFETY: write and signal are async-signal-safe; returning re-runs the
    // faulting instruction, which the default action then ends.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::signal(signal, libc::SIG_DFL);
    }
}
