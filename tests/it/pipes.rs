//! Issue 21, item 7: a closed stdout (`pve-cpuguard audit | head -1`)
//! ends a command quietly with exit 0, as ripgrep does on EPIPE; and the
//! hook never fails a start because a stream of its own is closed.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use crate::harness;
use crate::harness::cluster::Cluster;

/// A pipe whose reading end is already closed: every write to the other
/// end fails with EPIPE (Rust ignores SIGPIPE), at once and without a race.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are ours; the reading end is closed here, the writing
    // end is owned by the returned Stdio.
    unsafe {
        libc::close(fds[0]);
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    for vmid in 100..140 {
        c.vm(vmid, "pve1", "cpu: x86-64-v4\nname: many\n");
    }
    c
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let c = cluster();
    for args in [
        &["audit"][..],
        &["audit", "-o", "json"],
        &["audit", "-o", "html"],
        &["status"],
        &["baseline", "-o", "json"],
        &["check", "100"],
        &["inspect"],
    ] {
        let mut cmd = c.command(Some("pve1"), args);
        cmd.stdout(closed_pipe());
        let done = harness::Done::of(cmd);
        assert_eq!(done.code, 0, "{args:?}: {}", done.stderr);
        assert!(
            !done.stderr.contains("Broken pipe") && !done.stderr.contains("error:"),
            "{args:?}: {}",
            done.stderr
        );
    }
}

#[test]
fn the_hook_never_fails_a_start_because_its_streams_are_closed() {
    let c = cluster();
    // Allowed with a warning on stderr (x86-64-v4 above pve2), both
    // streams closed: still exit 0.
    let mut cmd = harness::command(harness::hook_binary());
    cmd.args(["100", "pre-start"])
        .envs(c.node_env("pve1"))
        .stdout(closed_pipe())
        .stderr(closed_pipe());
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(0));
    // Refused with both closed: still the refusal's exit 1, not a panic.
    let mut cmd = harness::command(harness::hook_binary());
    cmd.args(["100", "pre-start"])
        .envs(c.node_env("pve2"))
        .env("PVE_MIGRATED_FROM", "pve1")
        .stdout(closed_pipe())
        .stderr(closed_pipe());
    assert_eq!(cmd.status().unwrap().code(), Some(1));
}
