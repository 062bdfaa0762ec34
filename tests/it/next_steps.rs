//! Every error a person can meet says what to do next: a `note:` line, asserted
//! here for each case on a fixture `/etc/pve` tree and the real binary.

use crate::harness;
use crate::harness::cluster::Cluster;
use crate::harness::exec::Recorder;

const GUARD: &str = "hookscript: local:snippets/pve-cpuguard-hook\n";

/// pve1 Skylake-SP (x86-64-v4), pve2 Haswell-EP (x86-64-v3).
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", &format!("cpu: x86-64-v4\nname: big\n{GUARD}"));
    c
}

/// The last line of stderr starts with `note:` and contains `want`.
fn ends_with_note(stderr: &str, want: &str) {
    // The note is the last paragraph: its first line starts with `note: `,
    // the lines it wraps onto are indented.
    let text = stderr.trim_end();
    let start = text.rfind("\nnote: ").map_or(0, |i| i + 1);
    let note = &text[start..];
    let continued = note.lines().skip(1).all(|l| l.starts_with(' '));
    assert!(
        note.starts_with("note: ") && continued && harness::unwrapped(note).contains(want),
        "last line is not a note with {want:?}:\n{stderr}"
    );
}

/// Nothing on stdout; stderr holds each of `want` and ends with a note
/// containing `note`.
fn error_only(done: &harness::Done, want: &[&str], note: &str) {
    assert!(done.stdout.is_empty(), "{}: {}", done.command, done.stdout);
    for w in want {
        done.stderr_has(w);
    }
    ends_with_note(&done.stderr, note);
}

#[test]
fn not_a_proxmox_node_audit_attach_detach_say_so() {
    let c = cluster();
    for dir in [c.path("no-such-dir"), c.path("cache")] {
        for args in [
            &["audit"][..],
            &["audit", "--output", "json"],
            &["attach", "--all"],
            &["detach", "100"],
        ] {
            let done = c
                .on("pve1", args)
                .env("PVE_CPUGUARD_PVE_DIR", &dir)
                .run()
                .code(2);
            error_only(
                &done,
                &["error: not a Proxmox VE node: "],
                "PVE_CPUGUARD_PVE_DIR",
            );
        }
    }
}

#[test]
fn scan_from_a_host_not_in_corosync_conf_hints_node() {
    let c = cluster();
    c.write_corosync(&[("pve1", "127.0.0.1"), ("pve2", "127.0.0.2")]);
    // pve1's cpuinfo, on a host that does not name its node.
    let run = |args: &[&str]| {
        let mut cmd = c.command(None, args);
        cmd.env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(&c.samples["pve1"]));
        harness::Done::of(cmd)
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(!["pve1", "pve2"].contains(&host.trim()), "hostname {host}");
    let done = run(&["scan", "--no-ssh"]);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        crate::harness::has(
            &done.stderr,
            &format!(
                "warning: this host ('{}') is not a node in {} (nodes: pve1, pve2)",
                host.trim(),
                c.pve().join("corosync.conf").display()
            )
        ),
        "{}",
        done.stderr
    );
    done.stderr_has("\nnote: run the scan on a cluster node; if this is one under another host name, name it with --node NAME (PVE_CPUGUARD_NODE)\n");
    // A --node that is not in the list: a usage error with the names.
    let done = run(&["scan", "--no-ssh", "--node", "pve9"]);
    assert_eq!(done.code, 2, "{}", done.stderr);
    done.stderr_has("(nodes: pve1, pve2)");
    ends_with_note(&done.stderr, "use one of the names listed");
}

#[test]
fn no_cache_says_run_scan() {
    let c = cluster();
    std::fs::remove_file(c.cache()).unwrap();
    for cmd in ["status", "baseline"] {
        let done = c.on("pve1", &[cmd]).run().code(3);
        assert!(
            crate::harness::has(&done.stdout, "note: run `pve-cpuguard scan`"),
            "{cmd}: {}",
            done.stdout
        );
    }
    // audit reads this node itself; the other node has no data at all.
    let done = c.on("pve2", &["audit", "--all"]).run();
    done.stdout_has("pve1  unknown: never scanned\n")
        .stdout_has("  note: run `pve-cpuguard scan`\n");
    // With no node data at all (this host is not pve1 or pve2): a note.
    let done = c
        .on("pve1", &["audit"])
        .env("PVE_CPUGUARD_NODE", "elsewhere")
        .run()
        .code(3);
    ends_with_note(&done.stderr, "pve-cpuguard scan");
}

#[test]
fn no_snippets_storage_says_how_to_add_one() {
    let c = cluster();
    std::fs::write(
        c.pve().join("storage.cfg"),
        format!(
            "dir: local\n\tpath {}\n\tcontent iso,backup\n",
            c.path("vz").display()
        ),
    )
    .unwrap();
    let done = c.on("pve1", &["attach", "100"]).run().code(2);
    done.stderr_has("does not hold snippets");
    ends_with_note(
        &done.stderr,
        "pvesm set local --content iso,backup,snippets",
    );
    let done = c
        .on("pve1", &["attach", "100", "--storage", "nfs1"])
        .run()
        .code(2);
    done.stderr_has("storage 'nfs1' is not defined in");
    ends_with_note(&done.stderr, "no storage holds snippets yet");
}

#[test]
fn vm_not_found_says_where_it_looked() {
    let c = cluster();
    for args in [&["check", "999"][..], &["migrate", "999", "pve2"]] {
        let done = c.on("pve1", args).run().code(2);
        done.stderr_has("VM 999 does not exist");
        ends_with_note(&done.stderr, "`qm list` on each node shows its VMs");
    }
}

/// A `qm` that must never run: it leaves a mark.
/// `args` on pve1, exit code `code`, with `qm` replaced by a recorder
/// that must not be called.
fn without_qm(c: &Cluster, args: &[&str], code: i32) -> harness::Done {
    let qm = Recorder::new(c.dir.path(), "qm", "");
    let done = c
        .on("pve1", args)
        .env("PVE_CPUGUARD_QM", &qm.program)
        .run()
        .code(code);
    assert!(qm.calls().is_empty(), "qm ran: {:?}", qm.calls());
    done
}

#[test]
fn migrate_to_a_node_outside_the_cluster_says_so() {
    let c = cluster();
    let done = without_qm(&c, &["migrate", "100", "pve7", "--online"], 2);
    assert!(
        done.stderr
            .contains("error: 'pve7' is not a node of this cluster (nodes in"),
        "{}",
        done.stderr
    );
    assert!(
        crate::harness::has(&done.stderr, ": pve1, pve2)"),
        "{}",
        done.stderr
    );
    done.stderr_lacks("cached record");
    ends_with_note(&done.stderr, "`pvecm nodes`");
}

#[test]
fn migrate_online_of_a_stopped_vm_says_why_it_is_offline() {
    let c = cluster();
    let done = without_qm(&c, &["migrate", "100", "pve2", "--online"], 1);
    done.stderr_has("offline migration");
    assert!(
        crate::harness::has(&done.stderr, &format!(
            "VM 100 is not running on 'pve1' (no live QEMU process in {}), so `--online` moves it offline: it is checked as a cold start on 'pve2'",
            c.path("run/100.pid").display()
        )),
        "{}",
        done.stderr
    );
}

#[test]
fn usage_errors_do_not_list_options_from_the_environment() {
    let c = cluster();
    let done = c
        .on("pve1", &["attach"])
        .env("PVE_CPUGUARD_STORAGE", "local")
        .run()
        .code(2);
    done.stderr_has("Usage: pve-cpuguard attach --all [VMID]...\n");
    for env_only in ["--storage", "--pve-dir", "--config", "--state-dir"] {
        assert!(
            !crate::harness::has(&done.stderr, env_only),
            "{env_only}: {}",
            done.stderr
        );
    }
}

#[test]
fn output_formats_a_command_cannot_honour_are_usage_errors() {
    let c = cluster();
    for (args, why) in [
        (&["metrics", "--output", "json"][..], "Prometheus"),
        (&["migrate", "100", "pve2", "-o", "json"], "qm migrate"),
        (&["hook", "100", "pre-start", "-o", "json"], "exit status"),
        (
            &["status", "-o", "html"],
            "only `audit` and `plan` have an HTML page",
        ),
    ] {
        let done = without_qm(&c, args, 2);
        error_only(&done, &["does not apply to", why], "drop --output");
    }
}

#[test]
fn a_node_without_a_record_is_unknown_and_migrate_says_how_to_get_one() {
    let c = cluster();
    c.write_cache(&["pve1".to_string()]);
    let done = c.on("pve1", &["check", "100"]).run().code(3);
    let joined = done.stdout.replace("\n      ", " ");
    assert!(
        joined.contains("pve2: unknown (view: none): never scanned\n"),
        "{}",
        done.stdout
    );
    // Not claimed for every node while pve2 has no data (issue 23).
    done.stdout_has(
        "CPU type that works on every node: unknown while pve2 was never scanned; x86-64-v4 on \
         the node scanned",
    );
    let done = without_qm(&c, &["migrate", "100", "pve2"], 2);
    assert!(
        crate::harness::has(
            &done.stderr,
            "error: no CPU data for node 'pve2': no cached record, and could not read 'pve2' again ("
        ),
        "{}",
        done.stderr
    );
    done.stderr_lacks("using its cached record");
    assert_eq!(done.stderr.matches("note: ").count(), 1, "{}", done.stderr);
    ends_with_note(&done.stderr, "`pve-cpuguard publish` on 'pve2'");
}

#[test]
fn every_error_ends_with_a_note_even_without_its_own() {
    let c = cluster();
    let bad = c.path("bad-cpuinfo");
    std::fs::write(&bad, "x\n").unwrap();
    let conf = c.path("bad.conf");
    std::fs::write(&conf, "policy = sometimes\n").unwrap();
    for (args, env, want) in [
        (
            &["inspect", "--cpuinfo", "/nonexistent/cpuinfo"][..],
            None,
            "listed by `pve-cpuguard help inspect`",
        ),
        (
            &["inspect", "--cpuinfo", bad.to_str().unwrap()],
            None,
            "fix that line",
        ),
        (
            &["migrate", "100", "bad!"],
            None,
            "`pve-cpuguard help migrate`",
        ),
        (&["status"], Some(("PVE_CPUGUARD_CONFIG", &conf)), ""),
    ] {
        let mut run = c.on("pve1", args);
        if let Some((k, v)) = env {
            run = run.env(k, v);
        }
        let done = run.run();
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.starts_with("pve-cpuguard: error: "),
            "{args:?}: {}",
            done.stderr
        );
        ends_with_note(&done.stderr, want);
    }
}

/// One bad line in cpu-models.conf keeps no VM from being judged but
/// those using that model (it kept every VM from being judged: every
/// start went unchecked): as Proxmox VE does, the line's model is in
/// doubt, lines outside every model are ignored, each named with its line.
#[test]
fn a_bad_custom_model_line_leaves_the_other_vms_judged() {
    let mut c = cluster();
    c.vm(101, "pve1", "cpu: custom-broken\n");
    c.cpu_models("cpu-model: broken\n\tflags +aes\n\tnonsense\n\ngarbage here\n");
    // VM 100 (x86-64-v4) is judged: refused on the Haswell node, exit 1.
    let done = c.on("pve1", &["check", "100"]).run().code(1);
    done.stderr_has("cpu-models.conf:3: unknown cpu option")
        .stderr_has("VMs with cpu: custom-broken cannot be judged")
        .stderr_has("cpu-models.conf:5: expected a section header");
    c.on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(1);
    // VM 101, on the broken model: unknown (exit 3), naming the line; the
    // hook leaves it to the policy.
    c.on("pve1", &["check", "101"])
        .run()
        .code(3)
        .stdout_has("cpu-models.conf:3");
    c.on("pve2", &["hook", "101", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(0)
        .stderr_has("cannot be read");
    c.on("pve2", &["hook", "101", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .env("PVE_CPUGUARD_POLICY", "strict")
        .run()
        .code(1);
}

/// What clap itself refuses (an unknown value, a subcommand, a flag
/// combination) reads like every other error: `pve-cpuguard: error:`
/// first and a `note:` naming the help to read, not "For more
/// information, try '--help'".
#[test]
fn parser_errors_end_with_a_note() {
    let c = cluster();
    for (args, want) in [
        (
            &["check", "--mode", "bogus", "100"][..],
            "`pve-cpuguard help check`",
        ),
        (&["bogus"], "`pve-cpuguard help` lists the commands"),
        (
            &["baseline", "--custom-model", "evc", "--dry-run", "--apply"],
            "`pve-cpuguard help baseline`",
        ),
    ] {
        let done = c.on("pve1", args).run();
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.starts_with("pve-cpuguard: error: "),
            "{args:?}: {}",
            done.stderr
        );
        done.stderr_lacks("For more information");
        ends_with_note(&done.stderr, want);
    }
}

/// A corrupt cache is said by every command that judges with it (check,
/// plan, ha-rules said nothing), with its note, and inside audit's node
/// block the note stays indented.
#[test]
fn a_corrupt_cache_is_said_by_every_command_that_judges() {
    let c = cluster();
    std::fs::write(c.cache(), "{\n  \"schema\": 2,\n  \"nodes\": {").unwrap();
    for args in [&["check", "100"][..], &["plan"], &["ha-rules"]] {
        let done = c.on("pve1", args).run();
        done.stderr_has("warning: cache: ")
            .stderr_has("unusable cache");
        ends_with_note(&done.stderr, "`pve-cpuguard scan`");
    }
    let done = c.on("pve1", &["audit"]).run();
    done.stdout_has("unusable cache");
    let nodes = done
        .stdout
        .split("\n\n")
        .find(|b| b.contains("unusable cache"))
        .unwrap();
    for line in nodes.lines().skip(1) {
        assert!(
            line.starts_with("  "),
            "unindented in the node block: {line:?}\n{nodes}"
        );
    }
    assert!(
        !c.cache().with_extension("json.corrupt").exists(),
        "audit moves nothing"
    );
}
