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
