//! The hook at its limits (issue 21, "Counts and limits"): many refusals
//! at once, too little memory, and no thread left for its watchdog.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness;
use crate::harness::cluster::Cluster;
use crate::harness::fuse::Fuse;

/// Allowed pve1 -> pve4; refused pve1 -> pve2 (avx512).
fn cluster() -> Cluster {
    Cluster::refused_on_pve2()
}

/// The hook binary for `pre-start` of VM 100 migrating pve1 -> `node`.
fn hook(c: &Cluster, node: &str) -> Command {
    hook_in(&harness::hook_binary(), c, node, "pre-start")
}

/// [`hook`] in `phase`.
fn hook_in(bin: &std::path::Path, c: &Cluster, node: &str, phase: &str) -> Command {
    let mut cmd = harness::command(bin);
    cmd.args(["100", phase])
        .envs(c.node_env(node))
        .env("PVE_MIGRATED_FROM", "pve1")
        .stdin(Stdio::null());
    cmd
}

/// 200 hooks refusing at the same moment: every refusal is counted, as
/// `metrics` reports it (the count used to be a read-modify-write under a
/// lock that a hook gave up on after 0.5 s: 23 to 80 of them were lost).
#[test]
fn two_hundred_concurrent_refusals_lose_no_count() {
    const N: usize = 200;
    let c = cluster();
    let children: Vec<Child> = (0..N)
        .map(|_| {
            hook(&c, "pve2")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut refused = 0;
    let mut other = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() == Some(1) && !stderr.contains("not counted") {
            refused += 1;
        } else {
            other.push(format!("{:?}: {stderr}", out.status));
        }
    }
    assert_eq!(refused, N, "{other:#?}");
    let state = pve_cpuguard::guard::refusals::read(&c.path("state"));
    assert_eq!(state.count, N as u64);
    let metrics = c.on("pve2", &["metrics"]).run().code(0);
    metrics.stdout_has(&format!("\npve_cpuguard_refusals_total {N}\n"));
}

/// Runs `cmd` to its end; kills it and fails if it is still running after
/// 20 s (a hook that hangs).
fn finish(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("hung: {cmd:?}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// `cmd` runs as `nobody` with `RLIMIT_NPROC` 1: its own process is all it
/// may have, so no thread can be started (root is exempt from the limit).
fn without_threads(cmd: &mut Command) {
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &one) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A hook whose watchdog thread cannot be started reads nothing the
/// deadline was to bound: with `/etc/pve` hanging for every user it still
/// answers at once, by its policy (from the environment or from its
/// configuration file), and a VM the check would refuse starts under the
/// default policy, unchecked.
#[test]
fn hook_that_cannot_arm_its_deadline_reads_nothing_and_follows_the_policy() {
    let c = cluster();
    // `nobody` may read the cluster's files and count into `state`.
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = c.path("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let strict_conf = c.path("strict.conf");
    std::fs::write(&strict_conf, "policy = strict\n").unwrap();
    // The control: with its watchdog, the hook checks and refuses.
    let out = finish(hook(&c, "pve2"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let counted = || pve_cpuguard::guard::refusals::read(&state).count;
    assert_eq!(counted(), 1);
    let tally = pve_cpuguard::guard::refusals::tally(&state);
    std::fs::set_permissions(&tally, std::fs::Permissions::from_mode(0o666)).unwrap();

    // `nobody` runs a copy in the test's own directory: the build's may lie
    // below a directory only root may enter (a checkout in a 0700 home or
    // `mktemp -d`), where exec fails with EACCES before the hook runs.
    let bin = c.path("pve-cpuguard-hook");
    std::fs::copy(harness::hook_binary(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hung = Fuse::hanging_for_everyone(&c.path("hung"));
    let run = |phase: &str, env: &[(&str, &std::path::Path)]| {
        let mut cmd = hook_in(&bin, &c, "pve2", phase);
        without_threads(&mut cmd);
        cmd.envs(env.iter().copied());
        finish(cmd)
    };
    let says = |out: &Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(harness::has(&stderr, needle), "{needle:?}: {out:?}");
    };
    for pve in [hung.path("pve"), c.pve()] {
        let pve = pve.as_path();
        let out = run("pre-start", &[("PVE_CPUGUARD_PVE_DIR", pve)]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        says(&out, "the hook's deadline cannot be armed");
        says(&out, "its watchdog thread cannot be started");
        says(&out, &format!("nothing under {} was read", pve.display()));
        says(&out, "allowed unchecked (policy default)");
        for strict in [
            ("PVE_CPUGUARD_POLICY", std::path::Path::new("strict")),
            ("PVE_CPUGUARD_CONFIG", strict_conf.as_path()),
        ] {
            let out = run("pre-start", &[("PVE_CPUGUARD_PVE_DIR", pve), strict]);
            assert_eq!(out.status.code(), Some(1), "{out:?}");
            says(&out, "refused (policy strict)");
            assert!(
                !harness::has(&String::from_utf8_lossy(&out.stderr), "not counted"),
                "{out:?}"
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.starts_with("QEMU: pve-cpuguard: VM 100:"), "{out:?}");
        }
        let out = run("post-start", &[("PVE_CPUGUARD_PVE_DIR", pve)]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        says(&out, "no chained hookscript was run");
    }
    // Both strict refusals, twice, were counted beside the control's.
    assert_eq!(counted(), 5);
    drop(hung);
}

/// How one run under a memory limit ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The program never ran: the dynamic loader could not map it (exit
    /// 127 with its message) or the kernel could not finish `execve` (a
    /// signal, nothing said). No program can answer there.
    NotLoaded,
    /// The check's own answer (`refused:`).
    Checked,
    /// The policy's answer because memory ran out.
    OutOfMemory,
    /// The policy's answer for another reason (its watchdog, say).
    Policy,
    /// Anything else: an abort, a crash, a wrong code.
    Wrong,
}

/// Runs `cmd` under `RLIMIT_AS` `limit` and says how it ended, `strict`
/// saying which policy it runs under.
fn under_limit(mut cmd: Command, limit: u64, strict: bool) -> (Ended, Output) {
    // SAFETY: only an async-signal-safe system call between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &r) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let policy = if strict {
        "(policy strict)"
    } else {
        "(policy default)"
    };
    let code = if strict { Some(1) } else { Some(0) };
    let ended = if out.status.code() == Some(127)
        && (stderr.contains("error while loading shared libraries")
            || stderr.contains("cannot allocate TLS data structures"))
        || out.status.code().is_none() && stderr.is_empty()
    {
        Ended::NotLoaded
    } else if out.status.code() == Some(1) && stderr.starts_with("pve-cpuguard: refused: ") {
        Ended::Checked
    } else if out.status.code() == code && harness::has(&stderr, policy) {
        if harness::has(&stderr, "ran out of memory") || harness::has(&stderr, "SIGSEGV") {
            Ended::OutOfMemory
        } else {
            Ended::Policy
        }
    } else {
        Ended::Wrong
    };
    (ended, out)
}

/// Runs `make()` under memory limits from too little to load it up to
/// enough for its check, under both policies, and asserts that every run
/// the program itself ran gave the check's answer or the policy's, never
/// an abort (exit 134) or a crash; and that some ran out of memory.
fn sweep_memory_limits(make: impl Fn() -> Command) {
    // The least memory the check needs (4 KiB steps): below it, less.
    let checks = |limit: u64| under_limit(make(), limit, false).0 == Ended::Checked;
    let (mut low, mut high) = (1 << 20, 256 << 20);
    assert!(checks(high), "the check runs with {} MiB", high >> 20);
    while high - low > 4096 {
        let mid = (low + high) / 2 / 4096 * 4096;
        if checks(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    let mut seen = Vec::new();
    for strict in [false, true] {
        // A margin above: what a run needs varies a little between runs.
        let mut limit = high.saturating_sub(1 << 20);
        while limit <= high + (256 << 10) {
            let mut cmd = make();
            if strict {
                cmd.env("PVE_CPUGUARD_POLICY", "strict");
            }
            let (ended, out) = under_limit(cmd, limit, strict);
            assert_ne!(
                ended,
                Ended::Wrong,
                "{} KiB, strict={strict}: {out:?}",
                limit >> 10
            );
            seen.push(ended);
            limit += 8192;
        }
    }
    for want in [Ended::NotLoaded, Ended::OutOfMemory, Ended::Checked] {
        assert!(seen.contains(&want), "{want:?} among {seen:?}");
    }
}

/// Under a memory limit (`RLIMIT_AS`) the hook used to abort (exit 134)
/// wherever an allocation failed, before its policy could answer: in
/// Rust's start, parsing its arguments, reading its inputs. Now every
/// limit that lets the program load gets the check's answer or the
/// policy's (default: allowed with a warning; strict: refused), from the
/// hook binary and from `pve-cpuguard hook` alike.
#[test]
fn hook_under_a_memory_limit_follows_the_policy_and_never_aborts() {
    let c = cluster();
    sweep_memory_limits(|| hook(&c, "pve2"));
    sweep_memory_limits(|| {
        let mut cmd = harness::command(harness::binary());
        cmd.args(["hook", "100", "pre-start"])
            .envs(c.node_env("pve2"))
            .env("PVE_MIGRATED_FROM", "pve1");
        cmd
    });
}
