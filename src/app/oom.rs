//! Out of memory in the hook follows the policy (issue 21).
//!
//! Rust's answer to a failed allocation is to abort: a core-dumping
//! `SIGABRT`, exit status 134, which Proxmox VE takes as a failed
//! hookscript and so a refused start, whatever the policy. Under a memory
//! limit (`RLIMIT_AS`, `ulimit -v`) a hook could fail that way while its
//! command line is parsed, its inputs read or its answer written.
//!
//! [`Guarded`] is the binaries' global allocator: the system's, except
//! that an allocation that fails in the hook gives the hook's answer for
//! running out of memory (`crate::app::fallback`: by the policy in
//! `pre-start`, exit 0 in other phases, a line on stderr and in the
//! journal) instead of returning null. That answer is prepared while memory
//! is there and given without allocating. In other commands a failed
//! allocation returns null as the system's would (Rust then aborts).

use std::alloc::{GlobalAlloc, Layout, System};

/// The global allocator of the binaries (see the module header).
pub struct Guarded {
    /// Every process is the hook (the `pve-cpuguard-hook` binary); else
    /// only one that prepared an answer or was started as `hook`.
    always_hook: bool,
}

impl Guarded {
    /// For the `pve-cpuguard-hook` binary.
    #[must_use]
    pub const fn hook() -> Guarded {
        Guarded { always_hook: true }
    }

    /// For the `pve-cpuguard` binary, whose `hook` subcommand is the hook.
    #[must_use]
    pub const fn tool() -> Guarded {
        Guarded { always_hook: false }
    }

    #[inline]
    fn checked(&self, p: *mut u8) -> *mut u8 {
        if p.is_null() {
            self.failed();
        }
        p
    }

    #[cold]
    fn failed(&self) {
        if self.always_hook || crate::app::fallback::is_hook() {
            crate::app::fallback::give(crate::app::fallback::Cause::OutOfMemory);
        }
    }
}

// SAFETY: every call is passed to `System` unchanged; only a null result
// is acted on, by ending the process or returning it.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.checked(System.alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.checked(System.alloc_zeroed(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.checked(System.realloc(ptr, layout, new_size))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}
