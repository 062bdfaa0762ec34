//! The guard end to end: the real binary as Proxmox runs it (hookscript
//! `pre-start` on the target, with `PVE_MIGRATED_FROM`), as the `qm migrate`
//! wrapper with a recording fake `qm`, and as `check`, all on fixture
//! `/etc/pve` trees and caches built from real /proc/cpuinfo samples.

use crate::harness;

use crate::harness::cluster::{script, Cluster};
use crate::harness::exec::{argv, Recorder};

/// pve1 Skylake-SP (Intel, v4), pve2 Haswell-EP with TSX off (Intel, v3),
/// pve3 Ryzen 5950X (AMD, v3), pve4 Cascade Lake (Intel, v4, TSX on).
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
        ("pve3", "archspec-linux-ubuntu20.04-zen3"),
        ("pve4", "hwloc-xeon-gold-6230-cascadelake"),
    ]);
    c.cpu_models("cpu-model: avx512\n\tflags +avx512f;+avx512vl\n\treported-model Haswell-noTSX\n\ncpu-model: tsx\n\tflags +hle;+rtm\n\treported-model kvm64\n");
    let vms: &[(u32, &str)] = &[
        (100, "cpu: x86-64-v4"),
        (101, "cpu: host"),
        (102, "cpu: Haswell"),
        (103, "cpu: cputype=x86-64-v3,flags=+nested-virt"),
        (104, "cpu: custom-avx512"),
        (105, "memory: 2048"),
        (106, "cpu: x86-64-v3\n\n[PENDING]\ncpu: x86-64-v4"),
        (107, "cpu: x86-64-v2-AES,phys-bits=host"),
        (108, "cpu: NoSuchModel"),
        (109, "cpu: max"),
        (110, "cpu: Skylake-Server-IBRS,flags=+pcid;+pdpe1gb"),
        (111, "cpu: custom-tsx"),
        (112, "cpu: EPYC-Rome"),
    ];
    for (vmid, cpu) in vms {
        let node = if *vmid == 102 || *vmid == 111 {
            "pve4"
        } else if *vmid == 112 {
            "pve3"
        } else {
            "pve1"
        };
        c.vm(
            *vmid,
            node,
            &format!(
                "boot: order=scsi0\ncores: 2\n{cpu}\nlock: migrate\nname: vm{vmid}\nostype: l26\n"
            ),
        );
    }
    c
}

/// Runs the hookscript on `target` for an incoming live migration of
/// `vmid` from its owner `source`.
fn hook(c: &Cluster, vmid: u32, source: &str, target: &str) -> harness::Done {
    c.on(target, &["hook", &vmid.to_string(), "pre-start"])
        .env("PVE_MIGRATED_FROM", source)
        .run()
}

#[test]
fn live_migration_table() {
    let c = cluster();
    // (vmid, source, target, exit code, what the refusal must name)
    let table: &[(u32, &str, &str, i32, &[&str])] = &[
        (100, "pve1", "pve4", 0, &[]),
        (
            100,
            "pve1",
            "pve2",
            1,
            &["missing flags: avx512bw, avx512cd, avx512dq, avx512f, avx512vl"],
        ),
        (
            100,
            "pve1",
            "pve3",
            1,
            &["vendor change GenuineIntel -> AuthenticAMD", "avx512f"],
        ),
        (101, "pve1", "pve4", 0, &[]),
        (
            101,
            "pve1",
            "pve2",
            1,
            &[
                "the source CPU gives the guest flags the target lacks",
                "avx512f",
                "hle",
                "rtm",
            ],
        ),
        (101, "pve1", "pve3", 1, &["vendor change"]),
        (102, "pve4", "pve1", 0, &[]),
        (102, "pve4", "pve2", 1, &["missing flags: hle, rtm"]),
        (103, "pve1", "pve2", 0, &[]),
        (
            103,
            "pve1",
            "pve3",
            1,
            &["nested-virt across vendors", "vendor change"],
        ),
        (104, "pve1", "pve4", 0, &[]),
        (
            104,
            "pve1",
            "pve2",
            1,
            &["missing flags: avx512f, avx512vl"],
        ),
        (105, "pve1", "pve2", 0, &[]),
        (
            105,
            "pve1",
            "pve3",
            1,
            &["vendor change GenuineIntel -> AuthenticAMD"],
        ),
        (106, "pve1", "pve2", 0, &[]),
        (107, "pve1", "pve2", 0, &[]),
        (
            107,
            "pve1",
            "pve3",
            1,
            &["phys-bits=host with different widths: source 46 bits, target 48 bits"],
        ),
        (109, "pve1", "pve4", 0, &[]),
        (109, "pve1", "pve2", 1, &["flags the target lacks"]),
        (110, "pve1", "pve4", 0, &[]),
        (110, "pve1", "pve2", 1, &["missing flags: "]),
        (111, "pve4", "pve1", 0, &[]),
        (111, "pve4", "pve2", 1, &["missing flags: hle, rtm"]),
        (112, "pve3", "pve1", 1, &["missing flags: "]),
    ];
    for (vmid, source, target, code, needles) in table {
        let done = hook(&c, *vmid, source, target);
        assert_eq!(
            done.code, *code,
            "VM {vmid} {source} -> {target}\n{}",
            done.stderr
        );
        for n in *needles {
            assert!(
                done.stderr.contains(n),
                "VM {vmid} {source} -> {target}: stderr lacks {n:?}\n{}",
                done.stderr
            );
        }
        if *code == 1 {
            // One line for the source's migration log, explanation in the task log.
            let qemu_lines: Vec<&str> = done
                .stdout
                .lines()
                .filter(|l| l.starts_with("QEMU: pve-cpuguard: refused"))
                .collect();
            assert_eq!(qemu_lines.len(), 1, "{}", done.stdout);
            assert!(
                qemu_lines[0].contains(&format!("VM {vmid} (vm{vmid})")),
                "{}",
                qemu_lines[0]
            );
            done.stderr_has(&format!("{source} -> {target}"));
            done.stderr_has("nodes that would accept it:");
            // A vendor change or a differing width under the running guest
            // is fixed by no CPU type: no `qm set --cpu` that would be
            // refused again.
            let unfixable = needles
                .iter()
                .any(|n| n.contains("vendor change") || n.contains("phys-bits=host"));
            if unfixable {
                done.stderr_has("  no CPU type can fix this: ");
                done.stderr_lacks("qm set");
            } else if done.stderr.contains("vendor change") {
                // The VM's own type keeps its vendor, but the suggestion
                // would change it: put through the verdict and dropped.
                assert!(
                    done.stderr.contains("no CPU type makes this possible")
                        && !done.stderr.contains("qm set"),
                    "{}",
                    done.stderr
                );
            } else {
                done.stderr_has("CPU type that works on every node: x86-64-v3");
            }
        } else {
            assert!(
                done.stdout.is_empty(),
                "allowed migration printed {}",
                done.stdout
            );
        }
    }
}

#[test]
fn refusal_names_the_nodes_that_would_accept() {
    let c = cluster();
    let done = hook(&c, 100, "pve1", "pve2").code(1);
    done.stderr_has("nodes that would accept it: pve4\n");
    done.stderr_has("qm set 100 --cpu x86-64-v3");
}

#[test]
fn migrated_from_empty_or_absent_means_an_ordinary_start() {
    let mut c = cluster();
    // An ordinary start has no `lock: migrate` (with it and no
    // PVE_MIGRATED_FROM it is a migration from another cluster:
    // tests/it/remote_migration.rs).
    c.vm(105, "pve1", "memory: 2048\n")
        .vm(100, "pve1", "cpu: x86-64-v4\n");
    // VM 105 (kvm64) lives on pve1; as a start on pve3 it is fine (vendor
    // changes only matter to a running guest).
    for env in [Some(""), None] {
        let mut run = c.on("pve3", &["hook", "105", "pre-start"]);
        if let Some(v) = env {
            run = run.env("PVE_MIGRATED_FROM", v);
        }
        run.run().code(0);
    }
    // A start refuses only what the node cannot give at all: x86-64-v4 on pve2.
    let done = c
        .on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "")
        .run()
        .code(1);
    done.stderr_has("start on pve2");
    done.stderr_has("avx512f");
}

#[test]
fn start_above_the_baseline_warns_but_allows() {
    let mut c = cluster();
    c.vm(100, "pve1", "cpu: x86-64-v4\n");
    let done = c.on("pve1", &["hook", "100", "pre-start"]).run().code(0);
    done.stderr_has("this VM cannot start on: pve2");
    done.stderr_has("pve3");
}

#[test]
fn pending_changes_are_ignored() {
    let c = cluster();
    // 106 runs x86-64-v3; its [PENDING] x86-64-v4 is not what migrates.
    let done = hook(&c, 106, "pve1", "pve2").code(0);
    done.stderr_lacks("x86-64-v4");
}

#[test]
fn other_phases_exit_zero_at_once() {
    let c = cluster();
    for phase in ["post-start", "pre-stop", "post-stop", "no-such-phase"] {
        // Even for a VM the guard would refuse, and even with a broken config.
        hook(&c, 100, "pve1", "pve2").code(1);
        c.on("pve2", &["hook", "100", phase])
            .env("PVE_MIGRATED_FROM", "pve1")
            .run()
            .code(0);
        c.on("pve2", &["hook", "999", phase])
            .env("PVE_CPUGUARD_CONFIG", c.path("bad.conf"))
            .run()
            .code(0);
    }
}

#[test]
fn unknown_allows_by_default_and_refuses_in_strict_mode() {
    let c = cluster();
    let done = hook(&c, 108, "pve1", "pve2").code(0);
    done.stderr_has("unknown CPU type 'NoSuchModel'");
    done.stderr_has("allowed without proof");
    let done = hook_env(&c, 108, "PVE_CPUGUARD_POLICY", "strict").code(1);
    assert!(
        done.stdout.starts_with("QEMU: pve-cpuguard: refused"),
        "{}",
        done.stdout
    );
    // Strict mode from the configuration file too.
    std::fs::write(c.path("strict.conf"), "# site policy\npolicy = strict\n").unwrap();
    hook_env(
        &c,
        108,
        "PVE_CPUGUARD_CONFIG",
        c.path("strict.conf").to_str().unwrap(),
    )
    .code(1);
    // No cache record of the source: kvm64 needs the source's vendor.
    std::fs::remove_file(c.cache()).unwrap();
    let done = hook(&c, 105, "pve1", "pve2").code(0);
    done.stderr_has("source node's CPU is not known");
    hook_env(&c, 105, "PVE_CPUGUARD_POLICY", "strict").code(1);
}

fn hook_env(c: &Cluster, vmid: u32, key: &str, value: &str) -> harness::Done {
    c.on("pve2", &["hook", &vmid.to_string(), "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .env(key, value)
        .run()
}

#[test]
fn vendor_change_policy_warn_allows_with_a_warning() {
    let c = cluster();
    let done = c
        .on("pve3", &["hook", "105", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .env("PVE_CPUGUARD_VENDOR_CHANGE", "warn")
        .run()
        .code(0);
    done.stderr_has("allowed: vendor_change = warn");
}

#[test]
fn node_without_vmx_or_svm_refuses_kvm_guests_and_starts_kvm_0_ones() {
    // An Opteron 865 (K8, no AMD-V): no KVM there.
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("old", "hwloc-opteron-865-k8"),
    ]);
    c.vm(200, "old", "cpu: kvm64\nname: kvm\n");
    c.vm(201, "old", "kvm: 0\ncpu: x86-64-v3\nname: tcg\n");
    let done = c.on("old", &["hook", "200", "pre-start"]).run().code(1);
    done.stderr_has("lists neither vmx nor svm");
    done.stderr_has("no CPU type can fix this");
    done.stderr_lacks("qm set");
    let done = c.on("old", &["hook", "201", "pre-start"]).run().code(0);
    done.stderr_lacks("refused");
    // And the other way: a KVM guest moves to the KVM node, the TCG one anywhere.
    let v = c
        .on("old", &["check", "201", "--mode", "start", "-o", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(v["allowed_nodes"], serde_json::json!(["pve1"]));
}

#[test]
fn unparseable_cpu_value_is_an_input_error_naming_the_file_and_value() {
    let mut c = cluster();
    c.vm(150, "pve1", "name: typo\ncpu: x86-64-v3,flags=avx2\n");
    let done = c.on("pve1", &["check", "150"]).run().code(2);
    let file = c.pve().join("nodes/pve1/qemu-server/150.conf");
    done.stderr_has(&format!(
        "{}:2: cannot parse cpu 'x86-64-v3,flags=avx2': flag 'avx2' must start with '+' or '-'",
        file.display()
    ));
    done.stderr_has("note: ");
    c.on("pve1", &["why-not", "x86-64-v3,,"])
        .run()
        .code(2)
        .stderr_has("cannot parse CPU 'x86-64-v3,,'");
}

#[test]
fn cpuinfo_without_an_x86_vendor_is_unknown_not_a_level() {
    let c = cluster();
    let text =
        std::fs::read_to_string(harness::cpuinfo("hwloc-xeon-gold-6230-cascadelake")).unwrap();
    let no_vendor: String = text
        .lines()
        .filter(|l| !l.starts_with("vendor_id"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(c.path("cpuinfo-no-vendor"), no_vendor).unwrap();
    c.on("pve1", &["why-not", "kvm64"])
        .env("PVE_CPUGUARD_CPUINFO", c.path("cpuinfo-no-vendor"))
        .run()
        .code(3)
        .stdout_has("no x86 CPU vendor");
    c.on("pve1", &["inspect"])
        .env("PVE_CPUGUARD_CPUINFO", c.path("cpuinfo-no-vendor"))
        .run()
        .code(3)
        .stdout_has("Level:      unknown: /proc/cpuinfo names no x86 CPU vendor");
}

#[test]
fn invalid_config_file_names_file_and_line() {
    let c = cluster();
    std::fs::write(
        c.path("bad.conf"),
        "policy = strict\nvendor_change = maybe\n",
    )
    .unwrap();
    let done = c
        .on("pve1", &["check", "100"])
        .env("PVE_CPUGUARD_CONFIG", c.path("bad.conf"))
        .run()
        .code(2);
    done.stderr_has("bad.conf:2: invalid vendor_change 'maybe' (valid: refuse or warn)");
}

#[test]
fn chained_hookscript_runs_after_an_allow_and_its_exit_code_counts() {
    let c = cluster();
    let log = c.path("chain.log");
    script(
        &c.path("old-hook"),
        &format!(
            "#!/bin/sh\necho \"$1 $2 $PVE_MIGRATED_FROM\" >> {}\nexit 7\n",
            log.display()
        ),
    );
    std::fs::create_dir_all(c.pve().join("pve-cpuguard")).unwrap();
    std::fs::write(
        c.pve().join("pve-cpuguard/chain.conf"),
        format!("100 {}\n", c.path("old-hook").display()),
    )
    .unwrap();
    hook(&c, 100, "pve1", "pve4").code(7);
    hook(&c, 100, "pve1", "pve2").code(1); // refused: the chained script does not run
    c.on("pve4", &["hook", "100", "post-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(7);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "100 pre-start pve1\n100 post-start pve1\n"
    );
}

/// Issue 21, item 3: `PVE_CPUGUARD_CHAINED` ends only the guard's own
/// re-entry (same VM, same phase, a descendant of the guard that set it);
/// inherited by whatever the chained script starts, or set by anyone
/// else, it switches nothing off.
#[test]
fn the_chaining_guard_matches_only_its_own_reentry() {
    let c = cluster();
    let hook_bin = harness::hook_binary();
    let log = c.path("chain.log");
    let chain = |line: &str| {
        std::fs::create_dir_all(c.pve().join("pve-cpuguard")).unwrap();
        std::fs::write(c.pve().join("pve-cpuguard/chain.conf"), line).unwrap();
    };
    // A wrapper chained behind the guard that runs the guard again (as a
    // child, not exec): the loop ends at the first re-entry. The script
    // stops itself after 3 rounds so that a broken guard fails the test
    // instead of hanging it.
    script(
        &c.path("loop.sh"),
        &format!(
            "#!/bin/sh\necho \"$1 $2\" >> {log}\n[ $(wc -l < {log}) -gt 3 ] && exit 99\n{bin} \"$1\" \"$2\"\n",
            log = log.display(),
            bin = hook_bin.display()
        ),
    );
    chain(&format!("100 {}\n", c.path("loop.sh").display()));
    hook(&c, 100, "pve1", "pve4").code(0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "100 pre-start\n");
    std::fs::remove_file(&log).unwrap();

    // VM 100's chained script starts the guard for VM 101 as if on pve2
    // (Haswell), where 101's `cpu: host` from Skylake-SP is refused, and
    // then the guard for another phase of VM 100: the inherited variable
    // must switch neither off.
    script(
        &c.path("other.sh"),
        &format!(
            "#!/bin/sh\nPVE_CPUGUARD_NODE=pve2 PVE_CPUGUARD_CPUINFO={cpuinfo} {bin} 101 pre-start\necho \"101 on pve2: $?\" >> {log}\n{bin} \"$1\" post-start\necho \"post-start: $?\" >> {log}\n",
            cpuinfo = harness::cpuinfo("archspec-linux-rhel7-haswell").display(),
            bin = hook_bin.display(),
            log = log.display()
        ),
    );
    chain(&format!("100 {}\n", c.path("other.sh").display()));
    hook(&c, 100, "pve1", "pve4").code(0);
    let text = std::fs::read_to_string(&log).unwrap();
    // The guard on "pve2" refused (exit 1) although it inherited the
    // variable.
    assert!(text.starts_with("101 on pve2: 1\n"), "{text}");
    // Another phase of the same VM is no re-entry either: it ran the chain
    // (other.sh again, which logged) instead of ending at once.
    assert!(text.contains("post-start: "), "{text}");
    assert_eq!(text.matches("101 on pve2: 1").count(), 2, "{text}");

    // Set from outside, by anyone: no value switches the check off.
    chain("");
    for value in [
        "",
        "1",
        "100 pre-start",
        "100 pre-start 999999999 0",
        "100 pre-start 1 0",
    ] {
        c.on("pve2", &["hook", "100", "pre-start"])
            .env("PVE_MIGRATED_FROM", "pve1")
            .env("PVE_CPUGUARD_CHAINED", value)
            .run()
            .code(1)
            .stderr_has("refused");
    }
}

/// Issue 21, item 4: Proxmox VE fails a start whose hookscript is missing
/// (and only warns in other phases); the administrator's own hookscript,
/// chained behind the guard, gets the same, and the message says that the
/// CPU was checked.
#[test]
fn a_missing_chained_hookscript_fails_the_start_as_proxmox_does() {
    let c = cluster();
    std::fs::create_dir_all(c.pve().join("pve-cpuguard")).unwrap();
    let gone = c.path("gone.pl");
    let not_exec = c.path("not-exec.pl");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    for (script, why) in [(&gone, "does not exist"), (&not_exec, "is not executable")] {
        std::fs::write(
            c.pve().join("pve-cpuguard/chain.conf"),
            format!("100 {}\n", script.display()),
        )
        .unwrap();
        // Allowed by the CPU check (pve1 -> pve4), under either policy.
        for policy in ["default", "strict"] {
            let done = c
                .on("pve4", &["hook", "100", "pre-start"])
                .env("PVE_MIGRATED_FROM", "pve1")
                .env("PVE_CPUGUARD_POLICY", policy)
                .run()
                .code(1);
            done.stderr_has(&format!(
                "VM 100 pre-start: the CPU check allowed the start, but the chained hookscript {} {why}: refused",
                script.display()
            ))
            .stderr_has("note: restore the script")
            .stderr_lacks("cannot check the CPU")
            .stderr_lacks("unchecked");
            assert!(
                done.stdout.starts_with("QEMU: pve-cpuguard: "),
                "{}",
                done.stdout
            );
        }
        for phase in ["post-start", "pre-stop", "post-stop"] {
            c.on("pve4", &["hook", "100", phase])
                .run()
                .code(0)
                .stderr_has(&format!("warning: VM 100 {phase}: the chained hookscript"))
                .stderr_has(why);
        }
    }
}

/// Issue 21, item 4: two lines for one VM in chain.conf name both lines.
#[test]
fn two_chain_lines_for_one_vm_are_an_error_naming_both() {
    let c = cluster();
    std::fs::create_dir_all(c.pve().join("pve-cpuguard")).unwrap();
    let chain = c.pve().join("pve-cpuguard/chain.conf");
    std::fs::write(&chain, "100 /a.pl\n100 /b.pl\n").unwrap();
    let done = c
        .on("pve4", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .run()
        .code(0);
    done.stderr_has(&format!(
        "the CPU check allowed the start, but its chained hookscript cannot be looked up: {}:2: VM 100 is listed twice, on lines 1 and 2",
        chain.display()
    ))
    .stderr_has("allowed without it (policy default)");
    c.on("pve4", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .env("PVE_CPUGUARD_POLICY", "strict")
        .run()
        .code(1)
        .stderr_has("listed twice");
}

#[test]
fn refusals_go_to_the_system_log() {
    let c = cluster();
    let sock_path = c.path("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c.on("pve2", &["hook", "100", "pre-start"])
        .env("PVE_MIGRATED_FROM", "pve1")
        .env("PVE_CPUGUARD_SYSLOG_SOCKET", &sock_path)
        .run()
        .code(1);
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.starts_with("<27>pve-cpuguard["), "{msg}");
    assert!(
        msg.contains("refused live migration pve1 -> pve2 of VM 100 (vm100)"),
        "{msg}"
    );
    assert!(msg.contains("avx512f"), "{msg}");
}

/// A fake `qm` that records its argv, one argument per line.
fn fake_qm(c: &Cluster) -> Recorder {
    Recorder::new(c.dir.path(), "qm", "")
}

/// `migrate` on `node` with the fake qm.
fn migrate(c: &Cluster, qm: &Recorder, node: &str, args: &[&str]) -> harness::Done {
    let args: Vec<&str> = ["migrate"].iter().chain(args).copied().collect();
    c.on(node, &args).env("PVE_CPUGUARD_QM", &qm.program).run()
}

#[test]
fn migrate_runs_qm_with_the_exact_argv_when_allowed() {
    let c = cluster();
    let qm = fake_qm(&c);
    let args = [
        "100",
        "pve4",
        "--online",
        "--with-local-disks",
        "--targetstorage",
        "a:b c",
        "--bwlimit=1000",
    ];
    migrate(&c, &qm, "pve1", &args).code(0);
    assert_eq!(qm.calls(), [argv(&[&["migrate"][..], &args].concat())]);
}

#[test]
fn migrate_refuses_without_running_qm() {
    let c = cluster();
    let qm = fake_qm(&c);
    // Offline move of an x86-64-v4 VM to a v3 node: it could never start there.
    migrate(&c, &qm, "pve1", &["100", "pve2"])
        .code(1)
        .stderr_has("offline migration pve1 -> pve2")
        .stderr_has("qm was not run");
    assert!(qm.calls().is_empty(), "qm must not run on refusal");
}

#[test]
fn migrate_live_rules_apply_only_to_a_running_vm_with_online() {
    let c = cluster();
    let qm = fake_qm(&c);
    // kvm64 VM 105 to the AMD node: offline it may go (it will start there)...
    migrate(&c, &qm, "pve1", &["105", "pve3", "--online"]).code(0);
    assert_eq!(qm.calls().len(), 1);
    qm.clear();
    // ...but running (PID file of a live process) and --online: vendor change.
    std::fs::create_dir_all(c.path("run")).unwrap();
    std::fs::write(c.path("run/105.pid"), format!("{}\n", std::process::id())).unwrap();
    migrate(&c, &qm, "pve1", &["105", "pve3", "--online"])
        .code(1)
        .stderr_has("vendor change");
    assert!(qm.calls().is_empty());
}

/// `qm` reads its options with Getopt::Long and PVE's `parse_boolean`
/// (issue 21, item 2): every spelling it takes for a live migration is
/// judged as one, and what it cannot read is refused before it runs.
#[test]
fn migrate_reads_online_as_qm_does() {
    let c = cluster();
    let qm = fake_qm(&c);
    // VM 105 (kvm64) runs on Intel pve1; live to AMD pve3 is a vendor
    // change, offline it may go.
    std::fs::create_dir_all(c.path("run")).unwrap();
    std::fs::write(c.path("run/105.pid"), format!("{}\n", std::process::id())).unwrap();
    for live in [
        &["--online", "TRUE"][..],
        &["--ONLINE"],
        &["--onl"],
        &["--online=Yes"],
        &["-online", "on", "--with-local-disks"],
        &["--with-local-disks", "--Online="],
    ] {
        let args: Vec<&str> = ["105", "pve3"].iter().chain(live).copied().collect();
        migrate(&c, &qm, "pve1", &args)
            .code(1)
            .stderr_has("live migration pve1 -> pve3")
            .stderr_has("vendor change");
        assert!(qm.calls().is_empty(), "{live:?}: qm must not run");
    }
    for offline in [
        &["--online", "0"][..],
        &["--online=No"],
        &["--ONLINE", "off"],
        &["--migration_network", "--online"],
    ] {
        let args: Vec<&str> = ["105", "pve3"].iter().chain(offline).copied().collect();
        migrate(&c, &qm, "pve1", &args).code(0);
        let want: Vec<&str> = ["migrate"].iter().chain(&args).copied().collect();
        assert_eq!(qm.calls(), [argv(&want)], "{offline:?}");
        qm.clear();
    }
    for (bad, why) in [
        (&["--online", "maybe"][..], "option --online: 'maybe' is not a boolean"),
        (&["--with"], "option 'with' is ambiguous for `qm migrate`: it abbreviates --with-conntrack-state, --with-local-disks"),
        (&["--migration", "x"], "is ambiguous"),
        (&["--live"], "unknown option 'live'"),
        (&["--bwlimit"], "option --bwlimit needs a value"),
    ] {
        let args: Vec<&str> = ["105", "pve3"].iter().chain(bad).copied().collect();
        migrate(&c, &qm, "pve1", &args)
            .code(2)
            .stderr_has(why)
            .stderr_has("\nnote: ");
        assert!(qm.calls().is_empty(), "{bad:?}: qm must not run");
    }
}

#[test]
fn migrate_force_unsafe_needs_a_reason_and_runs_qm() {
    let c = cluster();
    let qm = fake_qm(&c);
    migrate(&c, &qm, "pve1", &["100", "pve2", "--force-unsafe"])
        .code(2)
        .stderr_has("--force-unsafe needs --reason");
    assert!(qm.calls().is_empty());
    let args = [
        "--force-unsafe",
        "--reason",
        "vendor maintenance",
        "100",
        "pve2",
        "--online",
    ];
    migrate(&c, &qm, "pve1", &args)
        .code(0)
        .stderr_has("override by")
        .stderr_has("vendor maintenance");
    assert_eq!(qm.calls(), [argv(&["migrate", "100", "pve2", "--online"])]);
}

#[test]
fn migrate_refuses_a_vm_on_another_node() {
    let c = cluster();
    let qm = fake_qm(&c);
    migrate(&c, &qm, "pve2", &["100", "pve4"])
        .code(2)
        .stderr_has("VM 100 is on node 'pve1'");
    assert!(qm.calls().is_empty());
}

#[test]
fn check_answers_like_the_migrate_precondition_api() {
    let c = cluster();
    let done = c
        .on("pve1", &["check", "100", "--mode", "live", "-o", "json"])
        .run()
        .code(1);
    let v = done.json();
    assert_eq!(v["allowed_nodes"], serde_json::json!(["pve4"]));
    let refused = v["not_allowed_nodes"].as_object().unwrap();
    assert_eq!(refused.keys().collect::<Vec<_>>(), ["pve2", "pve3"]);
    assert_eq!(
        refused["pve2"]["missing_flags"],
        serde_json::json!(["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"])
    );
    assert!(refused["pve3"]["codes"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("vendor-change")));
    assert_eq!(v["unknown_nodes"], serde_json::json!({}));
    c.on("pve1", &["check", "100", "--target", "pve4"])
        .run()
        .code(0);
    c.on(
        "pve1",
        &["check", "100", "--target", "pve2", "--target", "pve4"],
    )
    .run()
    .code(1);
    // A node with no cache record is unknown (exit 3).
    c.write_cache(&["pve1".into(), "pve4".into()]);
    let v = c
        .on(
            "pve1",
            &[
                "check", "100", "--target", "pve4", "--target", "pve2", "-o", "json",
            ],
        )
        .run()
        .code(3)
        .json();
    assert_eq!(
        v["unknown_nodes"]["pve2"]["reasons"][0], "never scanned",
        "{v}"
    );
}

#[test]
fn the_hook_file_runs_the_binary_and_never_blocks_when_it_is_gone() {
    let c = cluster();
    let hook_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pve-cpuguard-hook");
    let run = |bin: &str, target: &str| {
        let out = harness::command(&hook_file)
            .args(["100", "pre-start"])
            .env("PVE_CPUGUARD_BIN", bin)
            .env("PVE_MIGRATED_FROM", "pve1")
            .envs(c.node_env(target))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let bin = harness::hook_binary();
    let bin = bin.to_str().unwrap();
    assert_eq!(run(bin, "pve2").0, Some(1));
    assert_eq!(run(bin, "pve4").0, Some(0));
    let (code, err) = run("/nonexistent/pve-cpuguard", "pve2");
    assert_eq!(code, Some(0));
    assert!(
        err.contains("is missing; VM 100 pre-start not checked"),
        "{err}"
    );
}

#[test]
fn the_hook_never_hangs_a_start_past_its_deadline() {
    let c = cluster();
    // "/proc/cpuinfo" on a file system that never answers (a stuck FUSE
    // mount): the read waits where only a fatal signal reaches it.
    let hung = harness::fuse::Fuse::hanging(&c.path("hung"));
    let fifo = hung.path("cpuinfo");
    let sock_path = c.path("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    for (policy, code, priority) in [("default", 0, "<28>"), ("strict", 1, "<27>")] {
        let t = std::time::Instant::now();
        let done = c
            .on("pve2", &["hook", "100", "pre-start"])
            .env("PVE_MIGRATED_FROM", "pve1")
            .env("PVE_CPUGUARD_CPUINFO", &fifo)
            .env("PVE_CPUGUARD_HOOK_DEADLINE", "1s")
            .env("PVE_CPUGUARD_POLICY", policy)
            .env("PVE_CPUGUARD_SYSLOG_SOCKET", &sock_path)
            .run()
            .code(code);
        // The journal hears it too, from inside the timer's signal handler.
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(msg.starts_with(priority), "{msg}");
        assert!(
            msg.contains("VM 100: the CPU check did not finish within 1s; "),
            "{msg}"
        );
        assert!(msg.contains(&format!("(policy {policy})")), "{msg}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(8),
            "took {:?}",
            t.elapsed()
        );
        done.stderr_has("did not finish within 1s");
    }
    drop(hung);
}
