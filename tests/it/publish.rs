//! `publish` and the gather in `scan`: every node's own record read from a
//! fixture /etc/pve tree, real sshd processes only for the fallback.

use crate::harness;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::{expected_level, Done, SshCluster};
use pve_cpuguard::cache::published;
use pve_cpuguard::cache::Cache;

const HASWELL: &str = "archspec-linux-rhel7-haswell";
const ZEN3: &str = "archspec-linux-ubuntu20.04-zen3";
const IVY: &str = "archspec-linux-rhel7-ivybridge";
const CASCADE: &str = "hwloc-xeon-gold-6230-cascadelake";

fn record_path(c: &SshCluster, node: &str) -> PathBuf {
    published::path(&c.pve(), node)
}

/// `pve-cpuguard publish` as `node` would run it, reading `cpuinfo`.
fn publish_file(c: &SshCluster, node: &str, cpuinfo: &std::path::Path) -> Done {
    c.cmd(&["publish"])
        .env("PVE_CPUGUARD_NODE", node)
        .env("PVE_CPUGUARD_CPUINFO", cpuinfo)
        .run()
}

fn publish(c: &SshCluster, node: &str, sample: &str) -> Done {
    publish_file(c, node, &harness::cpuinfo(sample))
}

/// Nodes `closed` (nothing answers SSH) of which `published` (node,
/// sample) published their records.
fn published(closed: &[&str], published: &[(&str, &str)]) -> SshCluster {
    let mut c = SshCluster::new();
    for n in closed {
        c.closed(n);
    }
    c.write_config();
    for (n, s) in published {
        publish(&c, n, s).code(0);
    }
    c
}

/// Rewrites a published record's JSON.
fn edit(path: &std::path::Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A listener on a node's SSH address: whether anything connected.
struct Witness(TcpListener);

impl Witness {
    fn at(c: &SshCluster, node: &str) -> Witness {
        let l = TcpListener::bind((c.node(node).addr.as_str(), c.port)).unwrap();
        l.set_nonblocking(true).unwrap();
        Witness(l)
    }
    fn contacted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn every_node_published_so_no_ssh_is_tried() {
    let mut c = SshCluster::new();
    c.closed("pve1");
    c.closed("pve2");
    c.closed("pve3");
    c.write_config();
    let samples = [("pve1", HASWELL), ("pve2", ZEN3), ("pve3", IVY)];
    for (n, s) in samples {
        let run = publish(&c, n, s).code(0);
        assert!(
            run.stdout.starts_with(&format!(
                "Published {n}'s CPU record: {} (",
                record_path(&c, n).display()
            )),
            "{}",
            run.stdout
        );
        run.stdout_has(&format!("level {}", expected_level(s)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(record_path(&c, n))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640, "{mode:o}");
    }
    // Something listening at every node's SSH address sees no connection.
    let witnesses: Vec<Witness> = ["pve1", "pve2", "pve3"]
        .iter()
        .map(|n| Witness::at(&c, n))
        .collect();
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    for (n, s) in samples {
        let j = harness::scanned_node(&v, n);
        assert_eq!(j["via"], "pmxcfs", "{j}");
        assert_eq!(j["source"], "pmxcfs");
        assert_eq!(j["status"], "ok");
        assert_eq!(j["level"], expected_level(s));
        assert_eq!(j["published"]["used"], true);
        assert_eq!(
            j["published"]["path"],
            record_path(&c, n).display().to_string()
        );
        assert!(j["age_seconds"].as_u64().unwrap() < 60, "{j}");
        assert_eq!(j["record"]["source"], "pmxcfs");
    }
    assert!(witnesses.iter().all(|w| !w.contacted()), "SSH was tried");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "{v}");

    // Text: ProxCLMC's lines, then where each node's data came from.
    let run = c.run(&["scan"]).code(0);
    for (n, s) in samples {
        assert!(
            crate::harness::has(
                &run.stdout,
                &format!("{n} | {} | {}\n", c.node(n).addr, expected_level(s))
            ),
            "{}",
            run.stdout
        );
        run.stdout_has(&format!("  {n}: scanned "))
            .stdout_has(" ago via pmxcfs\n");
    }
    assert!(witnesses.iter().all(|w| !w.contacted()), "SSH was tried");

    // status, audit and metrics show the source.
    let st = c.run(&["status"]).code(0);
    st.stdout_has(" ago via pmxcfs");
    let st = c.run(&["--output", "json", "status"]);
    assert_eq!(
        harness::scanned_node(&st.json(), "pve2")["source"],
        "pmxcfs"
    );
    let audit = c.run(&["--output", "json", "audit"]);
    assert_eq!(
        harness::scanned_node(&audit.json(), "pve3")["source"],
        "pmxcfs",
        "{}",
        audit.stdout
    );
    let audit = c.run(&["audit", "--all"]);
    assert!(
        crate::harness::has(&audit.stdout, " via pmxcfs)"),
        "{}",
        audit.stdout
    );
    let m = c.run(&["metrics"]).code(0);
    m.stdout_has("pve_cpuguard_record_source{node=\"pve1\",source=\"pmxcfs\"} 1");
}

#[test]
fn mixed_cluster_published_records_and_real_sshd() {
    let mut c = SshCluster::new();
    c.closed("pve1");
    c.sshd("pve2", ZEN3);
    c.sshd("pve3", IVY);
    c.write_config();
    publish(&c, "pve1", HASWELL).code(0);
    // pve3 published long ago: stale, so it is read over SSH.
    publish(&c, "pve3", HASWELL).code(0);
    edit(&record_path(&c, "pve3"), |v| {
        let old = v["published_at"].as_u64().unwrap() - 3 * 3600;
        v["published_at"] = old.into();
        v["record"]["scanned_at"] = old.into();
    });
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    assert_eq!(harness::scanned_node(&v, "pve1")["via"], "pmxcfs");
    assert_eq!(
        harness::scanned_node(&v, "pve1")["level"],
        expected_level(HASWELL)
    );
    let p2 = harness::scanned_node(&v, "pve2");
    assert_eq!(p2["via"], "ssh");
    assert_eq!(p2["published"]["problem"], "missing");
    let p3 = harness::scanned_node(&v, "pve3");
    assert_eq!(p3["via"], "ssh", "{p3}");
    assert_eq!(p3["published"]["problem"], "stale");
    assert_eq!(
        p3["level"],
        expected_level(IVY),
        "the live node, not its old record"
    );
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    let expected = format!(
        "{}: published record is 3h 0m old",
        record_path(&c, "pve3").display()
    );
    assert!(w[0].as_str().unwrap().starts_with(&expected), "{w:?}");
    // The staleness limit is the cache_max_age setting.
    let run = c.run(&["--output", "json", "scan", "--cache-max-age", "4h"]);
    assert_eq!(harness::scanned_node(&run.json(), "pve3")["via"], "pmxcfs");

    // The cache records the source of each node; status shows it.
    let cache = Cache::load(&c.cache()).unwrap();
    assert_eq!(cache.node("pve2").unwrap().source.as_deref(), Some("ssh"));
    assert_eq!(
        cache.node("pve1").unwrap().source.as_deref(),
        Some("pmxcfs")
    );
    let st = c.run(&["status"]);
    assert!(st
        .stdout
        .contains(&format!("pve2 | {} | ", c.node("pve2").addr)));
    st.stdout_has(" ago via ssh\n");
}

#[test]
fn bad_records_are_reported_and_those_nodes_read_over_ssh() {
    let mut c = SshCluster::new();
    let bad = [
        "corrupt",
        "oversized",
        "misnamed",
        "hostile",
        "schema",
        "fifo",
        "symlink",
    ];
    for n in bad {
        c.sshd(n, ZEN3);
    }
    c.write_config();
    // Good records from another node, then broken in each way.
    for n in bad {
        publish(&c, n, HASWELL).code(0);
    }
    std::fs::write(record_path(&c, "corrupt"), "{\"schema\": 1, \"node\": ").unwrap();
    std::fs::write(
        record_path(&c, "oversized"),
        vec![b' '; usize::try_from(published::MAX_SIZE).unwrap() + 10],
    )
    .unwrap();
    std::fs::copy(record_path(&c, "hostile"), record_path(&c, "misnamed")).unwrap();
    edit(&record_path(&c, "hostile"), |v| {
        v["record"]["model_name"] = "\u{1b}[2J\u{1b}[Hpwned".into();
        v["record"]["flags"] = "fpu sse2 $(reboot)".into();
    });
    edit(&record_path(&c, "schema"), |v| v["schema"] = 99.into());
    std::fs::remove_file(record_path(&c, "fifo")).unwrap();
    let st = Command::new("mkfifo")
        .arg(record_path(&c, "fifo"))
        .status()
        .unwrap();
    assert!(st.success());
    let elsewhere = c.dir.path().join("elsewhere.json");
    std::fs::rename(record_path(&c, "symlink"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, record_path(&c, "symlink")).unwrap();

    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    for n in bad {
        let j = harness::scanned_node(&v, n);
        assert_eq!(j["via"], "ssh", "{n}: {j}");
        assert_eq!(j["level"], expected_level(ZEN3), "{n}");
        assert_eq!(j["published"]["problem"], "invalid", "{n}: {j}");
    }
    let why = |n: &str| {
        harness::scanned_node(&v, n)["published"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let path = |n: &str| record_path(&c, n).display().to_string();
    assert!(
        why("corrupt").starts_with(&format!(
            "{}: invalid published record: not a pve-cpuguard record",
            path("corrupt")
        )),
        "{}",
        why("corrupt")
    );
    // (node, how its message must end or what it must contain)
    for (n, ends, want) in [
        ("oversized", false, "more than the 262144 a record may have"),
        (
            "misnamed",
            true,
            "it names node 'hostile' but lies in the directory of node 'misnamed'",
        ),
        ("hostile", false, "model_name contains control characters"),
        ("schema", false, "schema 99 (this version reads schema 1)"),
        ("fifo", true, "not a regular file"),
        ("symlink", true, "a symbolic link, not a file"),
    ] {
        let why = why(n);
        let ok = if ends {
            why.ends_with(want)
        } else {
            why.contains(want)
        };
        assert!(ok, "{n}: {why}");
    }
    assert_eq!(v["warnings"].as_array().unwrap().len(), bad.len());
    // The text form warns on stderr, naming each file; stdout stays clean.
    let run = c.run(&["scan"]).code(0);
    for n in bad {
        run.stderr_has(&format!(
            "pve-cpuguard: warning: {}: invalid published record: ",
            path(n)
        ));
    }
    assert!(!run.stdout.contains('\u{1b}'));
    // A hostile flag only in the model: each flag is checked too.
    edit(&record_path(&c, "misnamed"), |v| {
        v["node"] = "misnamed".into();
        v["record"]["name"] = "misnamed".into();
        v["record"]["flags"] = "fpu sse2 $(reboot)".into();
    });
    let run = c.run(&["--output", "json", "scan"]);
    let j = harness::scanned_node(&run.json(), "misnamed").clone();
    assert!(
        j["published"]["message"]
            .as_str()
            .unwrap()
            .contains("flags holds an invalid name '$(reboot)'"),
        "{j}"
    );
}

#[test]
fn a_bad_record_never_replaces_good_data() {
    let c = published(&["pve1", "pve2"], &[("pve1", HASWELL), ("pve2", ZEN3)]);
    c.run(&["scan"]).code(0);
    let before = Cache::load(&c.cache())
        .unwrap()
        .node("pve1")
        .unwrap()
        .clone();
    // pve1's record turns bad and pve1 has no SSH: the node fails, and its
    // last good record is kept (marked stale), not replaced.
    edit(&record_path(&c, "pve1"), |v| {
        v["record"]["family"] = 4096.into()
    });
    let run = c.run(&["scan"]).code(1);
    run.stderr_has("family 4096 (at most 270)");
    run.stdout_has("last known: ");
    let after = Cache::load(&c.cache())
        .unwrap()
        .node("pve1")
        .unwrap()
        .clone();
    assert_eq!(after.cpu.flags, before.cpu.flags);
    assert_eq!(after.cpu.family, Some(6));
    assert_eq!(after.scanned_at, before.scanned_at);
    assert!(after.last_refresh_failed());
}

#[test]
fn no_ssh_reports_nodes_without_a_record_with_the_command_to_run() {
    let c = published(&["pve1", "pve2"], &[("pve1", HASWELL)]);
    let witness = Witness::at(&c, "pve2");
    let run = c.run(&["scan", "--no-ssh"]).code(1);
    assert!(
        crate::harness::has(&run.stdout, &format!(
            "  pve2 ({}): no-record: {}: no published record (SSH is off: --no-ssh)\n    note: run `pve-cpuguard publish` on pve2",
            c.node("pve2").addr,
            record_path(&c, "pve2").display()
        )),
        "{}",
        run.stdout
    );
    assert!(!witness.contacted(), "SSH was tried");
    // The same from the configuration file.
    let conf = c.dir.path().join("pve-cpuguard.conf");
    std::fs::write(&conf, "no_ssh = yes\n").unwrap();
    let run = c
        .cmd(&["--output", "json", "scan"])
        .env("PVE_CPUGUARD_CONFIG", &conf)
        .run()
        .code(1);
    let v = run.json();
    assert_eq!(harness::scanned_node(&v, "pve1")["via"], "pmxcfs");
    assert_eq!(
        harness::scanned_node(&v, "pve2")["error"]["stage"],
        "no-record"
    );
    assert_eq!(v["nodes_without_data"], serde_json::json!(["pve2"]));
    assert!(!witness.contacted(), "SSH was tried");
}

/// `publish` inside a private mount namespace where the fixture /etc/pve
/// is a read-only bind mount: the kernel answers EROFS, even to root.
#[test]
fn read_only_pve_dir_warns_exits_1_and_keeps_the_last_record() {
    let c = published(&["pve1"], &[("pve1", HASWELL)]);
    let path = record_path(&c, "pve1");
    let before = std::fs::read(&path).unwrap();

    let base = c.command(&["publish"]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg("mount --bind -o ro \"$1\" \"$1\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(c.pve())
        .arg(harness::binary())
        .arg("publish");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("PVE_CPUGUARD_NODE", "pve1")
        .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(IVY));
    let run = Done::of(cmd).code(1);
    assert!(
        run.stderr.starts_with(&format!(
            "pve-cpuguard: warning: cannot publish pve1's CPU record: {}: ",
            path.parent().unwrap().display()
        )),
        "{}",
        run.stderr
    );
    run.stderr_has("Read-only file system (os error 30)");
    assert!(
        crate::harness::has(&run.stderr, "\nnote: ")
            && crate::harness::has(&run.stderr, "no quorum"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the last record stays"
    );
    // And a scan still uses it.
    c.run(&["scan"]).code(0);
}

#[test]
fn a_changed_record_is_reported_as_drift() {
    let c = published(&["pve1", "pve2"], &[("pve1", HASWELL), ("pve2", ZEN3)]);
    let run = c.run(&["scan"]).code(0);
    run.stdout_lacks("Drift");
    // pve1 now has another CPU and published it.
    publish(&c, "pve1", IVY).code(0);
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    let drift = v["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{v}");
    assert_eq!(drift[0]["node"], "pve1");
    assert!(
        drift[0]["lost"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "avx2"),
        "{v}"
    );
    assert_eq!(
        harness::scanned_node(&v, "pve1")["level"],
        expected_level(IVY)
    );
    let st = c.run(&["status"]);
    st.stdout_has("Drift found by the last scan:\n  pve1 ");
}

#[test]
fn this_nodes_out_of_date_record_is_read_locally_and_published_again() {
    let mut c = SshCluster::new();
    c.local("pve1", HASWELL);
    c.closed("pve2");
    c.write_config();
    publish(&c, "pve1", HASWELL).code(0);
    publish(&c, "pve2", ZEN3).code(0);
    // Current: this node's record is used as published.
    let run = c.run(&["--output", "json", "scan"]).code(0);
    assert_eq!(harness::scanned_node(&run.json(), "pve1")["via"], "pmxcfs");
    // A microcode update since: read locally, and published again with
    // QEMU's answer (real QEMU, under TCG: there is no /dev/kvm here).
    edit(&record_path(&c, "pve1"), |v| {
        v["record"]["microcode"] = "0x1".into()
    });
    let run = c
        .cmd(&["--output", "json", "scan"])
        .env("PVE_CPUGUARD_PROBE", "tcg")
        .run()
        .code(0);
    let v = run.json();
    let j = harness::scanned_node(&v, "pve1");
    assert_eq!(j["via"], "local", "{j}");
    assert_eq!(j["published"]["problem"], "outdated");
    assert!(
        j["published"]["message"]
            .as_str()
            .unwrap()
            .ends_with("published record is out of date: microcode 0x1 -> 0x3c"),
        "{j}"
    );
    assert_eq!(
        v["republished"]["path"],
        record_path(&c, "pve1").display().to_string()
    );
    let p = published::load(&c.pve(), "pve1", pve_cpuguard::cache::now(), 60).unwrap();
    assert_eq!(p.record.cpu.microcode.as_deref(), Some("0x3c"));
    assert!(p.record.kvm.is_some(), "QEMU's answer is published");
    // Without QEMU's answer (--probe off) the record is not replaced by a
    // poorer one: this node is read locally and the file stays.
    edit(&record_path(&c, "pve1"), |v| {
        v["record"]["microcode"] = "0x2".into()
    });
    let before = std::fs::read(record_path(&c, "pve1")).unwrap();
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    assert_eq!(harness::scanned_node(&v, "pve1")["via"], "local");
    assert_eq!(
        harness::scanned_node(&v, "pve1")["record"]["source"],
        "local"
    );
    assert!(v["republished"].is_null(), "{v}");
    assert_eq!(std::fs::read(record_path(&c, "pve1")).unwrap(), before);
    edit(&record_path(&c, "pve1"), |v| {
        v["record"]["microcode"] = "0x3c".into()
    });
    let run = c.run(&["--output", "json", "scan"]);
    assert_eq!(harness::scanned_node(&run.json(), "pve1")["via"], "pmxcfs");
}

#[test]
fn a_256_thread_host_with_qemus_answer_publishes_a_small_record() {
    // 256 processor blocks, as a 2-socket 64-core SMT host prints.
    let text = std::fs::read_to_string(harness::cpuinfo(CASCADE)).unwrap();
    let block = text.split("\n\n").next().unwrap();
    let mut big = String::new();
    for i in 0..256 {
        big.push_str(&block.replacen("processor\t: 0", &format!("processor\t: {i}"), 1));
        big.push_str("\n\n");
    }
    let c = published(&["big"], &[]);
    let file = c.dir.path().join("cpuinfo-256");
    std::fs::write(&file, &big).unwrap();
    assert!(
        big.len() > 256 * 1024,
        "the cpuinfo itself is {} bytes",
        big.len()
    );
    // QEMU's answer under TCG (no /dev/kvm here) lists every model QEMU
    // defines, as under KVM: the same size of record.
    let run = c
        .cmd(&["--output", "json", "publish"])
        .env("PVE_CPUGUARD_NODE", "big")
        .env("PVE_CPUGUARD_CPUINFO", &file)
        .env("PVE_CPUGUARD_PROBE", "tcg")
        .run();
    let run = run.code(0);
    let v = run.json();
    let size = v["bytes"].as_u64().unwrap();
    eprintln!("published record of a 256-thread host with QEMU's answer: {size} bytes");
    let p = published::load(&c.pve(), "big", pve_cpuguard::cache::now(), 60).unwrap();
    assert_eq!(p.record.cpu.processors, 256);
    let kvm = p
        .record
        .kvm
        .as_ref()
        .expect("QEMU's answer is in the record");
    assert!(kvm.models.len() > 20, "{}", kvm.models.len());
    assert_eq!(
        size,
        std::fs::metadata(record_path(&c, "big")).unwrap().len()
    );
    assert!(size < 64 * 1024, "{size} bytes");
}

#[test]
fn publish_errors_name_the_file_and_exit_2() {
    let c = published(&["pve1"], &[]);
    let missing = c.dir.path().join("no-cpuinfo");
    let run = publish_file(&c, "pve1", &missing).code(2);
    run.stderr_has(&missing.display().to_string());
    assert!(!record_path(&c, "pve1").exists());
    // Not a Proxmox VE node: no nodes/ directory below the pve dir.
    let run = c
        .cmd(&["publish"])
        .env("PVE_CPUGUARD_PVE_DIR", c.dir.path().join("empty"))
        .env("PVE_CPUGUARD_NODE", "pve1")
        .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(HASWELL))
        .run();
    let run = run.code(2);
    run.stderr_has("empty/nodes: no such directory; is this a Proxmox VE node");
    let run = publish(&c, "../etc", HASWELL).code(2);
    run.stderr_has("invalid node name '../etc'");
    // JSON says what was written.
    let run = c
        .cmd(&["--output", "json", "publish"])
        .env("PVE_CPUGUARD_NODE", "pve1")
        .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(HASWELL))
        .run();
    let run = run.code(0);
    let v = run.json();
    assert_eq!(v["written"], true);
    assert_eq!(v["level"], expected_level(HASWELL));
    assert_eq!(v["path"], record_path(&c, "pve1").display().to_string());
    assert_eq!(v["microcode"], "0x3c");
}

/// Admission at publish: a node whose capability dropped since its last
/// record, or a new one, says which VMs can no longer start or
/// live-migrate there; a node that merely publishes for the first time
/// while it holds VMs (pve-cpuguard just installed) is not new.
#[test]
fn publish_says_which_vms_a_new_or_weaker_node_no_longer_takes() {
    use crate::harness::cluster::Cluster;
    let mut c = Cluster::new(&[("pve1", CASCADE), ("pve2", CASCADE), ("pve3", CASCADE)]);
    c.vm(100, "pve1", "cpu: x86-64-v4\n")
        .vm(101, "pve1", "cpu: x86-64-v3\n")
        .vm(102, "pve2", "cpu: kvm64\n");
    let publish = |node: &str, sample: &str, json: bool| {
        let mut args = vec!["publish", "--probe", "off"];
        if json {
            args.extend(["-o", "json"]);
        }
        c.on(node, &args)
            .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(sample))
            .run()
            .code(0)
    };
    publish("pve1", CASCADE, false).stdout_lacks("Admission");
    publish("pve2", CASCADE, false).stdout_lacks("Admission");
    // pve2's firmware now hides AVX-512: it looks like a Haswell.
    let out = publish("pve2", HASWELL, false);
    out.stdout_has("Admission (this node is new, or its CPU capability dropped):")
        .stdout_has("VM 100 can no longer start or live-migrate there");
    let j = publish("pve2", HASWELL, true).json();
    assert_eq!(j["admissions"], serde_json::json!([]), "no new drop: {j}");
    // pve3 joins, without guests, a Sandy Bridge.
    let j = publish("pve3", "hwloc-xeon-e5-2680-sandybridge-ep", true).json();
    let a = &j["admissions"][0];
    assert_eq!(
        (&a["node"], &a["new"]),
        (&"pve3".into(), &true.into()),
        "{j}"
    );
    assert_eq!(a["vms"], serde_json::json!([100, 101]));
}
