//! A bounded child process: run a fixed binary with fixed arguments and a
//! fixed input, and never wait past a deadline or keep more output than
//! allowed. The child runs in its own process group; when the deadline
//! passes (or it prints too much) the whole group is killed and the child
//! reaped, so nothing it started outlives the run.
//!
//! Hand-written: `wait-timeout` bounds the wait for one child, not its
//! process group, and bounds no output.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a run may take and how much it may print.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From start to exit.
    pub timeout: Duration,
    /// Standard output beyond this ends the run.
    pub max_stdout: usize,
    /// Standard error beyond this is dropped.
    pub max_stderr: usize,
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Both pipes closed (the child exited or is exiting).
    Exited,
    /// The timeout passed; the group was killed.
    TimedOut,
    /// It printed more than allowed; the group was killed.
    TooMuchOutput,
}

/// What a bounded run produced.
pub struct RawOutput {
    /// Standard output, at most `max_stdout` (+ one read) bytes.
    pub stdout: Vec<u8>,
    /// The start of standard error, at most `max_stderr` bytes.
    pub stderr: Vec<u8>,
    /// How the run ended.
    pub ended: Ended,
    /// The child's exit status once reaped (a killed child's says so).
    pub status: Option<std::process::ExitStatus>,
}

/// How long the pipes are still read once the child itself has exited.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// How often a run looks whether the child has exited while its pipes are
/// open.
const POLL: Duration = Duration::from_millis(20);

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
    OutEnd,
    ErrEnd,
}

fn pump(mut r: impl Read + Send + 'static, tx: mpsc::Sender<Chunk>, is_out: bool) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let c = buf[..n].to_vec();
                    let msg = if is_out { Chunk::Out(c) } else { Chunk::Err(c) };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(if is_out { Chunk::OutEnd } else { Chunk::ErrEnd });
    });
}

/// Runs `binary args` in its own process group with `input` on stdin, until
/// it closes stdout and stderr or `timeout` passes or it prints more than
/// `limits.max_stdout`; then the group is killed (a no-op if it is gone) and the
/// child reaped. Never waits longer than `timeout` plus the time to reap a
/// killed process.
///
/// # Errors
/// The child could not be started (the caller names the binary).
pub fn run_bounded(
    binary: &Path,
    args: &[&str],
    input: &[u8],
    limits: Limits,
) -> std::io::Result<RawOutput> {
    let deadline = Instant::now() + limits.timeout;
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        pump(out, tx.clone(), true);
    }
    if let Some(err) = child.stderr.take() {
        pump(err, tx, false);
    }
    if let Some(mut stdin) = child.stdin.take() {
        // The script is far below PIPE_BUF-sized pipe capacity, so this
        // write cannot block; a child that already exited gives EPIPE,
        // which its output explains better.
        let _ = stdin.write_all(input);
        // Dropping stdin closes it: QEMU sees EOF after `quit`.
    }
    let mut out = RawOutput {
        stdout: Vec::new(),
        stderr: Vec::new(),
        ended: Ended::Exited,
        status: None,
    };
    let pid = libc::pid_t::try_from(child.id()).ok();
    let (mut out_open, mut err_open) = (true, true);
    // When the child itself has exited, what it left running in the
    // background may keep the pipes open (a helper that daemonises a
    // worker): its output is then awaited only a short grace, not the
    // whole timeout; the group is killed below as always.
    let mut child_gone: Option<Instant> = None;
    while out_open || err_open {
        let now = Instant::now();
        if now >= deadline {
            out.ended = Ended::TimedOut;
            break;
        }
        if child_gone.is_none() && pid.is_some_and(has_exited) {
            child_gone = Some(now);
        }
        if child_gone.is_some_and(|t| now >= t + EXIT_GRACE) {
            break;
        }
        let wait = deadline.saturating_duration_since(now).min(POLL);
        match rx.recv_timeout(wait) {
            Ok(Chunk::Out(c)) => {
                out.stdout.extend_from_slice(&c);
                if out.stdout.len() > limits.max_stdout {
                    out.ended = Ended::TooMuchOutput;
                    break;
                }
            }
            Ok(Chunk::Err(c)) => {
                let room = limits.max_stderr.saturating_sub(out.stderr.len());
                out.stderr.extend_from_slice(&c[..c.len().min(room)]);
            }
            Ok(Chunk::OutEnd) => out_open = false,
            Ok(Chunk::ErrEnd) => err_open = false,
            // Look at the deadline and the child again.
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Both pipes closed means QEMU is exiting; wait for that within the
    // deadline, then make sure nothing of the group survives.
    if out.ended == Ended::Exited {
        while Instant::now() < deadline && !pid.is_some_and(has_exited) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The child is not reaped yet (only `has_exited` looked, without
    // reaping), so its pid is still its process group's id and cannot have
    // been reused: killing the group reaches whatever it left behind, and
    // nothing else. A no-op when everything has exited.
    if let Some(pgid) = pid {
        // SAFETY: kill(2) only sends a signal; a negative pid names the
        // process group `pgid`, the child's own (see above).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    out.status = child.wait().ok();
    Ok(out)
}

/// Whether the child `pid` has exited, without reaping it (`WNOWAIT`).
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data, valid when zeroed; waitid(2) writes
    // into it and does not keep the pointer.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let id = libc::id_t::try_from(pid).unwrap_or_default();
        let rc = libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // An error (no such child) counts as exited; with WNOHANG a child
        // still running leaves si_pid at 0.
        rc != 0 || info.si_pid() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c script` with `input`, bounded by `timeout`.
    fn sh(script: &str, input: &[u8], timeout: Duration) -> RawOutput {
        let limits = Limits {
            timeout,
            max_stdout: 1 << 10,
            max_stderr: 64,
        };
        run_bounded(Path::new("/bin/sh"), &["-c", script], input, limits).unwrap()
    }

    #[test]
    fn the_exit_status_and_the_output_are_reported() {
        let out = sh(
            "cat; echo err >&2; exit 3",
            b"in\n",
            Duration::from_secs(10),
        );
        assert_eq!(out.ended, Ended::Exited);
        assert_eq!(out.status.and_then(|s| s.code()), Some(3));
        assert_eq!(out.stdout, b"in\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_helper_whose_background_child_keeps_stdout_open_does_not_cost_the_timeout() {
        let t = Instant::now();
        // The helper answers and exits; what it started keeps both pipes
        // open for 30 s.
        let out = sh(
            "sleep 30 & echo done; echo warn >&2; exit 4",
            b"",
            Duration::from_secs(20),
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(out.ended, Ended::Exited);
        assert_eq!(out.stdout, b"done\n");
        assert_eq!(out.stderr, b"warn\n");
        assert_eq!(out.status.and_then(|s| s.code()), Some(4));
    }

    #[test]
    fn a_run_past_its_deadline_is_killed_with_what_it_started() {
        let t = Instant::now();
        // The background sleep holds the pipes open: only killing the
        // whole group ends the run.
        let out = sh("sleep 30 & sleep 30", b"", Duration::from_millis(300));
        assert_eq!(out.ended, Ended::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(!out.status.is_some_and(|s| s.success()));
    }
}
