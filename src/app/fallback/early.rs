//! The answer before the hook prepared one: memory ran out while its
//! command line was being parsed. It is worked out at that moment from the
//! process's own arguments (`/proc/self/cmdline`) and
//! `PVE_CPUGUARD_POLICY`, in buffers on the stack: the phase (only
//! `pre-start` can refuse; when no phase can be found, `pre-start`, the one
//! that matters), the VM, and the policy (`--policy` as clap reads it,
//! else the variable, else the default).

use std::ffi::CStr;

/// The phases Proxmox VE calls a hookscript with.
const PHASES: [&[u8]; 4] = [b"pre-start", b"post-start", b"pre-stop", b"post-stop"];

/// Room for the arguments read (Proxmox VE passes two short ones).
pub(super) const CMDLINE_MAX: usize = 4096;

/// A line built on the stack; what does not fit is cut.
pub(super) struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub(super) fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) -> &mut Line {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    pub(super) fn push_number(&mut self, mut n: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            // n % 10 < 10: the cast cannot truncate.
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the command line says, as far as the answer goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Call<'a> {
    /// The hook's subcommand is there (`pve-cpuguard hook …`).
    pub hook: bool,
    /// The phase is `pre-start`, or none was found.
    pub pre_start: bool,
    /// The phase, when one was found.
    pub phase: Option<&'a [u8]>,
    /// The VM (the digits before the phase).
    pub vmid: Option<&'a [u8]>,
    /// The policy is `strict`.
    pub strict: bool,
}

/// Reads `cmdline` (NUL-separated arguments, the program first) with the
/// value of `PVE_CPUGUARD_POLICY`.
pub(super) fn call<'a>(cmdline: &'a [u8], env_policy: Option<&[u8]>) -> Call<'a> {
    let mut args = cmdline.split(|b| *b == 0).skip(1).filter(|a| !a.is_empty());
    let (mut hook, mut phase, mut vmid, mut flag) = (false, None, None, None);
    let mut previous: Option<&[u8]> = None;
    while let Some(arg) = args.next() {
        if arg == b"hook" {
            hook = true;
        } else if arg == b"--policy" {
            flag = args.next();
        } else if let Some(v) = arg.strip_prefix(b"--policy=") {
            flag = Some(v);
        } else if phase.is_none() && PHASES.contains(&arg) {
            phase = Some(arg);
            vmid = previous.filter(|p| p.len() <= 10 && p.iter().all(u8::is_ascii_digit));
        }
        previous = Some(arg);
    }
    Call {
        hook,
        pre_start: phase.is_none_or(|p| p == b"pre-start"),
        phase,
        vmid,
        strict: flag.or(env_policy) == Some(b"strict".as_slice()),
    }
}

/// The answer for `call`: its subject, its outcome and the exit code (see
/// `super::Answer`).
pub(super) fn answer(call: &Call<'_>) -> (Line, &'static [u8], i32) {
    let refuse = call.pre_start && call.strict;
    let mut subject = Line::new();
    if let Some(vmid) = call.vmid {
        subject.push(b"VM ").push(vmid);
        if !call.pre_start {
            subject.push(b" ").push(call.phase.unwrap_or_default());
        }
        subject.push(b": ");
    }
    subject.push(b"reading the hook's arguments");
    let outcome: &[u8] = if !call.pre_start {
        b"no chained hookscript was run"
    } else if refuse {
        b"refusing the start (policy strict)"
    } else {
        b"allowing the start unchecked (policy default)"
    };
    (subject, outcome, i32::from(refuse))
}

/// Reads `/proc/self/cmdline` into `buf`; what it holds (empty when it
/// cannot be read).
pub(super) fn read_cmdline(buf: &mut [u8; CMDLINE_MAX]) -> &[u8] {
    let mut len = 0;
    // SAFETY: a NUL-terminated path; reads into `buf`, within its length.
    unsafe {
        let fd = libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return &buf[..0];
        }
        while len < buf.len() {
            let n = libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
            if n <= 0 {
                break;
            }
            len += n.unsigned_abs();
        }
        libc::close(fd);
    }
    &buf[..len]
}

/// The value of the environment variable `name`, without allocating.
pub(super) fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns null or a pointer into the environment, which
    // nothing in this program changes.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(cmdline: &[u8], env: Option<&[u8]>) -> (String, String, i32) {
        let (subject, outcome, code) = answer(&call(cmdline, env));
        (
            String::from_utf8(subject.bytes().to_vec()).unwrap(),
            String::from_utf8(outcome.to_vec()).unwrap(),
            code,
        )
    }

    #[test]
    fn the_policy_and_phase_come_from_the_arguments_and_the_environment() {
        let hook = b"/usr/bin/pve-cpuguard-hook\x00100\x00pre-start\x00";
        let (subject, outcome, code) = said(hook, None);
        assert_eq!(subject, "VM 100: reading the hook's arguments");
        assert_eq!(outcome, "allowing the start unchecked (policy default)");
        assert_eq!(code, 0);
        let (_, outcome, code) = said(hook, Some(b"strict"));
        assert_eq!(outcome, "refusing the start (policy strict)");
        assert_eq!(code, 1);
        // The flag wins over the variable, as clap has it.
        let flagged = b"pve-cpuguard\x00hook\x00--policy=default\x00100\x00pre-start\x00";
        assert_eq!(said(flagged, Some(b"strict")).2, 0);
        let flagged = b"pve-cpuguard\x00hook\x00100\x00pre-start\x00--policy\x00strict\x00";
        assert!(call(flagged, None).hook);
        assert_eq!(said(flagged, None).2, 1);
        // Only pre-start refuses.
        let (subject, outcome, code) = said(b"h\x00100\x00post-stop\x00", Some(b"strict"));
        assert_eq!(subject, "VM 100 post-stop: reading the hook's arguments");
        assert_eq!(outcome, "no chained hookscript was run");
        assert_eq!(code, 0);
        // Nothing readable: the phase that matters, no VM named.
        let (subject, _, code) = said(b"", Some(b"strict"));
        assert_eq!(subject, "reading the hook's arguments");
        assert_eq!(code, 1);
        assert!(!call(b"pve-cpuguard\x00scan\x00", None).hook);
    }

    #[test]
    fn lines_are_cut_not_overrun() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.push(b"0123456789");
        }
        assert_eq!(l.bytes().len(), 512);
        let mut l = Line::new();
        l.push_number(0).push(b" ").push_number(u64::MAX);
        assert_eq!(l.bytes(), b"0 18446744073709551615");
    }
}
