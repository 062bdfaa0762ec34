//! Every line of every command's text output, errors and notes included,
//! fits 100 columns (issue 23), on a cluster as diverse as the samples
//! allow: each x86 sample a node, VMs of every kind of CPU, a never-scanned
//! node; `inspect` also on every sample with virtualisation off, and with
//! QEMU's answer beside. `metrics` is left out: its lines are Prometheus's
//! format (a `# HELP` line is one line by definition), read by a machine.

use crate::harness;
use crate::harness::cluster::Cluster;
use crate::harness::exec::Recorder;
use crate::harness::Run;

/// A long `cpu:` value, a hostile one, and every kind of VM.
const VMS: &[&str] = &[
    "cpu: host",
    "cpu: x86-64-v4",
    "cpu: x86-64-v2-AES,flags=+pdpe1gb;+spec-ctrl;+ssbd;+md-clear;+pcid;+aes",
    "cpu: Skylake-Server-v4,flags=+hv-evmcs\nostype: win11\nmachine: pc-q35-11.0+pve2",
    "cpu: EPYC-Milan\nsockets: 4\ncores: 64",
    "cpu: NoSuchModelWithAVeryLongNameThatGoesOnAndOnAndOnForeverAndEverAndEverAndEverAndEverAndEver",
    "cpu: host,phys-bits=host,flags=+nested-virt\nhugepages: 1024",
    "cpu: kvm64\ntemplate: 1",
    "arch: aarch64",
    "cpu: x86-64-v3\n[PENDING]\ncpu: x86-64-v4",
    "cpu: max\nkvm: 0",
];

fn cluster() -> Cluster {
    let samples: Vec<String> = harness::all_samples()
        .into_iter()
        .filter(|n| pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n)).is_ok())
        .collect();
    let names: Vec<String> = (1..=samples.len()).map(|i| format!("pve{i}")).collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .zip(&samples)
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let mut c = Cluster::new(&pairs);
    // A node of the cluster that was never scanned.
    std::fs::create_dir_all(c.pve().join("nodes/pve-new/qemu-server")).unwrap();
    for (i, conf) in VMS.iter().enumerate() {
        let node = &names[i % names.len()];
        let vmid = 100 + u32::try_from(i).unwrap();
        c.vm(vmid, node, &format!("{conf}\nname: vm{vmid}\n"));
    }
    c
}

fn check_width(what: &str, text: &str, bad: &mut Vec<String>) {
    for l in text.lines() {
        let n = l.chars().count();
        if n > 100 {
            bad.push(format!("{what}: {n} columns: {l}"));
        }
    }
}

#[test]
fn every_line_of_every_command_fits_100_columns() {
    let c = cluster();
    let qm = Recorder::new(c.dir.path(), "qm", "");
    let ha = Recorder::new(c.dir.path(), "ha-manager", "");
    let mut bad = Vec::new();
    let runs: Vec<Vec<&str>> = vec![
        vec!["inspect"],
        vec!["why-not", "x86-64-v4"],
        vec!["why-not", "Skylake-Server-v4,flags=+hv-evmcs;+pdpe1gb"],
        vec!["status"],
        vec!["baseline"],
        vec!["audit"],
        vec!["audit", "--all"],
        vec!["check", "100"],
        vec!["check", "101", "--mode", "live"],
        vec!["check", "103", "--mode", "start"],
        vec!["attach", "--all", "--dry-run"],
        vec!["detach", "--all", "--dry-run"],
        vec!["ha-rules", "--dry-run"],
        vec!["proxlb-tags", "--dry-run"],
        vec!["plan", "--remove-node", "pve1"],
        vec!["plan", "--need"],
        vec!["migrate", "100", "pve2", "--online"],
        vec!["migrate", "105", "pve3"],
        vec!["hook", "101", "pre-start"],
        vec!["check", "999"],
        vec!["audit", "--finding", "nonsense"],
        vec!["baseline", "--custom-model", "evc"],
        vec!["baseline", "--custom-model", "evc", "--dry-run"],
    ];
    for args in &runs {
        let done = c
            .on("pve1", args)
            .env("PVE_CPUGUARD_QM", &qm.program)
            .env("PVE_CPUGUARD_HA_MANAGER", &ha.program)
            .run();
        let what = args.join(" ");
        check_width(&format!("{what} (stdout)"), &done.stdout, &mut bad);
        check_width(&format!("{what} (stderr)"), &done.stderr, &mut bad);
    }
    // inspect on every sample, and with a live migration from each node.
    for s in harness::all_samples() {
        let done = Run::new(["inspect"])
            .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(&s))
            .run();
        check_width(&format!("inspect {s}"), &done.stdout, &mut bad);
        check_width(&format!("inspect {s} (stderr)"), &done.stderr, &mut bad);
    }
    // inspect on every sample with virtualisation off, and with QEMU's
    // answer (a recorded transcript replayed) beside /proc/cpuinfo's.
    let off = tempfile::tempdir().unwrap();
    for s in harness::all_samples() {
        let path = harness::without_kvm(&s, off.path());
        let done = Run::new(["inspect"])
            .env("PVE_CPUGUARD_CPUINFO", &path)
            .run();
        check_width(&format!("inspect {s} without KVM"), &done.stdout, &mut bad);
        check_width(
            &format!("inspect {s} without KVM (stderr)"),
            &done.stderr,
            &mut bad,
        );
    }
    let qemu = off.path().join("qemu");
    crate::harness::cluster::script(
        &qemu,
        &format!(
            "#!/bin/sh\nexec cat '{}'\n",
            harness::data("qmp/qemu-7.2-pvm-epyc-tcg.jsonl").display()
        ),
    );
    for cpuinfo in [
        "qmp/pvm-epyc-cpuinfo.txt",
        "cpuinfo/hwloc-xeon-gold-6230-cascadelake.txt",
    ] {
        let mut done = None;
        // Again while a test thread's fork still holds the fresh script.
        for _ in 0..20 {
            let d = Run::new(["inspect", "--probe", "tcg"])
                .env("PVE_CPUGUARD_QEMU", &qemu)
                .env("PVE_CPUGUARD_CPUINFO", harness::data(cpuinfo))
                .run();
            if !d.stderr.contains("Text file busy") {
                done = Some(d);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let done = done.expect("the script ran");
        assert_eq!(done.code, 0, "{}", done.stderr);
        check_width(
            &format!("inspect --probe tcg {cpuinfo}"),
            &done.stdout,
            &mut bad,
        );
    }
    for from in ["pve2", "pve3", "pve5"] {
        let done = c
            .on("pve1", &["hook", "100", "pre-start"])
            .env("PVE_MIGRATED_FROM", from)
            .run();
        check_width(&format!("hook from {from}"), &done.stderr, &mut bad);
    }
    // The custom model on clusters of one vendor (the diverse one mixes
    // them, so no model is built there), the newest CPUs together for the
    // longest flag list. A cpu-models.conf section's `flags` line is one
    // line by the file's format, copied into the file as it is, like
    // metrics' lines: it alone may be wider (its command form fits).
    for nodes in [
        &[
            ("pve1", "archspec-linux-unknown-sapphirerapids"),
            ("pve2", "hwloc-core-i7-1370p-raptorlake"),
        ][..],
        &[
            ("pve1", "archspec-linux-rocky8.5-zen4"),
            ("pve2", "util-linux-epyc-7451-naples"),
        ],
        &[
            ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
            ("pve2", "hwloc-qemu-guest-qemu64"),
        ],
    ] {
        let c = Cluster::new(nodes);
        let pvesh = Recorder::new(c.dir.path(), "pvesh", "");
        for extra in [&[][..], &["--dry-run"], &["--apply"]] {
            // The longest name Proxmox VE takes.
            let mut args = vec![
                "baseline",
                "--custom-model",
                "a-long-model-name-of-33-character",
            ];
            args.extend(extra);
            let done = c
                .on("pve1", &args)
                .env("PVE_CPUGUARD_PVESH", &pvesh.program)
                .run();
            let what = format!("{} on {nodes:?}", args.join(" "));
            assert!(
                done.stdout
                    .contains("\nCustom model custom-a-long-model-name-of-33-character: "),
                "{what}: {}{}",
                done.stdout,
                done.stderr
            );
            let text: String = done
                .stdout
                .lines()
                .filter(|l| !l.starts_with("\tflags "))
                .map(|l| format!("{l}\n"))
                .collect();
            check_width(&format!("{what} (stdout)"), &text, &mut bad);
            check_width(&format!("{what} (stderr)"), &done.stderr, &mut bad);
        }
    }
    assert!(
        bad.is_empty(),
        "{} lines too wide:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Every stdout and stderr line of `done` that is wider than 100 columns
/// (`stdout` false: metrics' Prometheus lines are exempt).
fn check_run(what: &str, done: &crate::harness::Done, stdout: bool, bad: &mut Vec<String>) {
    if stdout {
        check_width(&format!("{what} (stdout)"), &done.stdout, bad);
    }
    check_width(&format!("{what} (stderr)"), &done.stderr, bad);
}

/// The review's cases (issue 23): HA rules and their commands, a stale
/// node whose refresh fails, a missing VM, an override, metrics over an
/// old cache, and a node joining a cluster of many VMs.
#[test]
fn the_reviewed_cases_fit_100_columns() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    // Many VMs, generated: most of them a CPU a Sandy Bridge cannot start.
    let mut resources = String::new();
    for vmid in 100..700 {
        let node = ["pve1", "pve2", "pve3"][vmid as usize % 3];
        // x86-64-v4 on pve2 (Cascade Lake) cannot go to pve3 (Haswell).
        let cpu = match (vmid % 5, vmid % 3) {
            (0, _) => "kvm64",
            (_, 1) => "x86-64-v4",
            _ => "x86-64-v3",
        };
        c.vm(vmid, node, &format!("cpu: {cpu}\nname: vm{vmid}\n"));
        if vmid < 160 {
            resources.push_str(&format!("vm: {vmid}\n\tstate started\n\n"));
        }
    }
    std::fs::create_dir_all(c.pve().join("ha")).unwrap();
    std::fs::write(c.pve().join("ha/resources.cfg"), resources).unwrap();
    c.write_members(
        "pve1",
        true,
        &[
            ("pve1", "10.0.0.1", true),
            ("pve2", "10.0.0.2", true),
            ("pve3", "10.0.0.3", true),
        ],
    );
    // The node that joins later (its directory made then).
    c.samples
        .insert("pve4".into(), "hwloc-xeon-e5-2680-sandybridge-ep".into());
    let qm = Recorder::new(c.dir.path(), "qm", "");
    let ha = Recorder::new(c.dir.path(), "ha-manager", "");
    let mut bad = Vec::new();
    let run = |args: &[&str]| {
        c.on("pve1", args)
            .env("PVE_CPUGUARD_QM", &qm.program)
            .env("PVE_CPUGUARD_HA_MANAGER", &ha.program)
            .run()
    };
    for args in [
        &["ha-rules"][..],
        &["ha-rules", "--dry-run"],
        &["plan", "--remove-node", "pve3"],
        &["detach", "99999"],
        &[
            "migrate",
            "101",
            "pve3",
            "--online",
            "--force-unsafe",
            "--reason",
            "test",
        ],
        &["audit"],
        &["status"],
    ] {
        check_run(&args.join(" "), &run(args), true, &mut bad);
    }
    // The --dry-run commands, copied into a shell, are the calls --apply runs.
    let dry = run(&["ha-rules", "--dry-run"]);
    let shown: String = dry
        .stdout
        .split_once("would run:\n")
        .map_or("", |(_, rest)| rest)
        .lines()
        .take_while(|l| !l.starts_with("note:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let read = crate::harness::shell_reads(&shown, &ha.program.display().to_string());
    let dry_json = c
        .on("pve1", &["-o", "json", "ha-rules", "--dry-run"])
        .env("PVE_CPUGUARD_HA_MANAGER", &ha.program)
        .run()
        .json();
    let calls: Vec<Vec<String>> = dry_json["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array().unwrap()[1..]
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert!(!calls.is_empty(), "{}", dry.stdout);
    assert_eq!(read, calls, "{}", dry.stdout);

    // pve4 joins, a Sandy Bridge: hundreds of VMs can no longer go there.
    for n in ["pve1", "pve2", "pve3"] {
        c.on(n, &["publish", "--probe", "off"]).run();
    }
    std::fs::create_dir_all(c.pve().join("nodes/pve4/qemu-server")).unwrap();
    let publish = c.on("pve4", &["publish", "--probe", "off"]).run();
    assert!(
        crate::harness::has(
            &publish.stdout,
            "VMs can no longer start or live-migrate there, e.g. 101, 102, 103, 104, 106, …; \
             `pve-cpuguard audit --finding node-admission` lists them"
        ),
        "{}{}",
        publish.stdout,
        publish.stderr
    );
    check_run("publish pve4 (admission)", &publish, true, &mut bad);

    // Records three days old; pve3's last refresh failed.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.cache()).unwrap()).unwrap();
    let then = pve_cpuguard::cache::now() - 3 * 86_400;
    for (name, n) in v["nodes"].as_object_mut().unwrap() {
        n["scanned_at"] = then.into();
        if name == "pve3" {
            n["last_error"] = "connect: 10.0.0.3:22: Connection refused (os error 111), \
                               after three attempts over the last hour and a half"
                .into();
        }
    }
    std::fs::write(c.cache(), serde_json::to_vec(&v).unwrap()).unwrap();
    let metrics = run(&["metrics"]);
    assert!(
        metrics.stderr.contains("warning"),
        "an old cache is warned about: {}",
        metrics.stderr
    );
    check_run("metrics (old cache)", &metrics, false, &mut bad);
    check_run("status (old cache)", &run(&["status"]), true, &mut bad);
    check_run("audit (old cache)", &run(&["audit"]), true, &mut bad);
    // pve3 has no record to read: the scan tries SSH, which fails.
    c.write_corosync(&[
        ("pve1", "127.0.0.1"),
        ("pve2", "127.0.0.1"),
        ("pve3", "127.0.0.1"),
        ("pve4", "127.0.0.1"),
    ]);
    std::fs::remove_file(c.pve().join("nodes/pve3/pve-cpuguard.json")).unwrap();
    let scan = run(&["scan", "--timeout", "1"]);
    assert!(
        scan.stdout.contains("last known: "),
        "{}{}",
        scan.stdout,
        scan.stderr
    );
    check_run("scan --timeout 1 (stale, failing)", &scan, true, &mut bad);
    assert!(
        bad.is_empty(),
        "{} lines too wide:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// `--dry-run` with `--apply` is refused by the argument parser.
#[test]
fn dry_run_and_apply_together_are_refused() {
    for args in [
        &["ha-rules", "--apply", "--dry-run"][..],
        &["proxlb-tags", "--dry-run", "--apply"],
        &["baseline", "--custom-model", "evc", "--dry-run", "--apply"],
    ] {
        let done = Run::new(args).run();
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.contains("cannot be used with"),
            "{}",
            done.stderr
        );
    }
}
