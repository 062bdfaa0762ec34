//! Human output: a summary first, lines that fit 100 columns, one vendor
//! note instead of one per model, and colour only on a terminal without
//! NO_COLOR (a real pseudo-terminal from util-linux `script`).

use crate::harness;
use crate::harness::cluster::Cluster;
use crate::harness::{cpuinfo, Run};

#[test]
fn inspect_starts_with_a_summary_fits_100_columns_and_says_the_vendor_note_once() {
    let done = Run::new(["inspect"])
        .env(
            "PVE_CPUGUARD_CPUINFO",
            cpuinfo("archspec-linux-ubuntu20.04-zen3"),
        )
        .run()
        .code(0);
    let s = &done.stdout;
    let mut lines = s.lines();
    assert_eq!(
        lines.next(),
        Some("Summary:    AuthenticAMD AMD Ryzen 9 5950X 16-Core Processor"),
        "{s}"
    );
    let second = lines.next().unwrap();
    assert!(
        second.starts_with("            level x86-64-v3 (view: cpuinfo); ")
            && second.ends_with(" Proxmox CPU types start here"),
        "{s}"
    );
    for l in s.lines() {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    // Intel models that run here are starred, and said once.
    assert!(!s.contains("runs it with vendor="), "{s}");
    assert_eq!(
        s.matches(
            "* a GenuineIntel model: the guest sees vendor=GenuineIntel on this AuthenticAMD host"
        )
        .count(),
        1,
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Nehalem", "yes", "*"]),
        "{s}"
    );
    // AMD's own models carry no star.
    assert!(
        s.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["EPYC", "yes"]),
        "{s}"
    );
}

/// Runs the binary under a pseudo-terminal (`script`), with `env`.
fn on_a_terminal(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> String {
    let bin = harness::binary();
    let cmd = std::iter::once(bin.to_str().unwrap())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = harness::command("script");
    script.args(["-qec", &cmd, "/dev/null"]);
    for (k, _) in std::env::vars() {
        if k == "NO_COLOR" || k.starts_with("CLICOLOR") {
            script.env_remove(k);
        }
    }
    script.env("TERM", "xterm");
    for (k, v) in c.node_env("pve1") {
        script.env(k, v);
    }
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script.output().expect("run script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nname: big\n");
    // On a terminal: the refusal and the flagged section are coloured.
    let tty = on_a_terminal(&c, &["check", "100"], &[]);
    // An SGR sequence (`ESC [ … m`) right before the word, a reset after.
    assert!(tty.contains("mrefused\x1b[0m"), "{tty:?}");
    assert!(tty.contains(": \x1b["), "{tty:?}");
    let tty = on_a_terminal(&c, &["audit", "--all"], &[]);
    assert!(tty.contains("mFlagged VMs\x1b[0m"), "{tty:?}");
    // NO_COLOR set (any value): none, on the same terminal.
    for cmd in [&["check", "100"][..], &["audit", "--all"]] {
        let plain = on_a_terminal(&c, cmd, &[("NO_COLOR", "1")]);
        assert!(!plain.contains('\x1b'), "{cmd:?}: {plain:?}");
        assert!(
            plain.contains("refused") || plain.contains("Flagged VMs"),
            "{plain}"
        );
    }
    // A pipe: none.
    let piped = c.on("pve1", &["check", "100"]).run().code(1);
    assert!(!piped.stdout.contains('\x1b'), "{:?}", piped.stdout);
    piped.stdout_has("pve2: refused");
}
