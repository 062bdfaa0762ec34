//! `scan`, `status` and `baseline` against real sshd processes.

use crate::harness;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::ssh_cluster::Trust;
use crate::harness::{expected_level, Done, SshCluster};
use pve_cpuguard::cpu::capability::Capability;
use pve_cpuguard::cpu::level;

const HASWELL: &str = "archspec-linux-rhel7-haswell";
const ZEN3: &str = "archspec-linux-ubuntu20.04-zen3";
const SAPPHIRE: &str = "archspec-linux-unknown-sapphirerapids";
const IVY: &str = "archspec-linux-rhel7-ivybridge";

fn flags(sample: &str) -> BTreeSet<String> {
    pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(sample))
        .unwrap()
        .flags
        .iter()
        .map(str::to_string)
        .collect()
}

/// The cluster CPU type over node levels as printed: a node where not even
/// kvm64 starts makes it `below-kvm64`, else the lowest level.
fn cluster_level<'a>(levels: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let levels: Vec<&str> = levels.into_iter().collect();
    if levels.contains(&level::BELOW_FLOOR) {
        return Some(level::BELOW_FLOOR);
    }
    level::lowest(levels)
}

/// The exact ProxCLMC-compatible text for nodes that all answered (byte
/// for byte), then the line saying which view decided each node (all
/// /proc/cpuinfo here: these tests do not probe QEMU).
fn proxclmc_text(c: &SshCluster) -> String {
    let mut s = String::from("Detected nodes:\n");
    let mut levels = Vec::new();
    let mut views = Vec::new();
    for n in &c.nodes {
        let l = expected_level(n.sample.as_deref().unwrap());
        levels.push(l);
        s.push_str(&format!("{} | {} | {l}\n", n.name, n.addr));
        views.push(format!("{} cpuinfo", n.name));
    }
    s.push_str(&format!(
        "\nCluster CPU type: {}\n",
        cluster_level(levels).unwrap()
    ));
    // Past 8 nodes, by view (all cpuinfo here).
    if views.len() <= 8 {
        s.push_str(&format!("\nView: {}\n", views.join(", ")));
    } else {
        s.push_str(&format!("\nView: cpuinfo on all {} nodes\n", views.len()));
    }
    for n in &c.nodes {
        if expected_level(n.sample.as_deref().unwrap()) == level::BELOW_FLOOR {
            s.push_str(&format!(
                "warning: {}: not even kvm64 (the lowest Proxmox VE type) starts here\n",
                n.name
            ));
        }
    }
    s
}

#[test]
fn three_nodes_report_their_levels_in_proxclmc_format() {
    let c = SshCluster::with_sshd(&[("pve1", HASWELL), ("pve2", ZEN3), ("pve3", SAPPHIRE)]);
    let run = c.run(&["scan"]).code(0);
    assert_eq!(run.stdout, proxclmc_text(&c), "stderr: {}", run.stderr);

    // The cache holds each node's facts, and rebuilds the same capability.
    let cache = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    for n in &c.nodes {
        let rec = cache.node(&n.name).unwrap();
        let info =
            pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n.sample.as_deref().unwrap()))
                .unwrap();
        assert_eq!(rec.cpu, info, "{}", n.name);
        assert_eq!(rec.capability(), Capability::from_cpuinfo(&info));
        assert_eq!(rec.kernel.as_deref(), Some(c.kernel.as_str()));
        assert_eq!(rec.address, n.addr);
        assert!(!rec.last_refresh_failed());
    }

    // status shows the same view from the cache, with ages.
    let st = c.run(&["status"]).code(0);
    for n in &c.nodes {
        let l = expected_level(n.sample.as_deref().unwrap());
        st.stdout_has(&format!("{} | {} | {l} | scanned ", n.name, n.addr));
    }
    st.stdout_has("\nCluster CPU type: ");
}

#[test]
fn sixteen_nodes_each_with_its_own_cpu() {
    let samples = harness::all_samples()
        .into_iter()
        .filter(|s| pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(s)).is_ok())
        .collect::<Vec<_>>();
    assert!(samples.len() >= 16, "16 samples needed");
    let mut c = SshCluster::new();
    for (i, s) in samples.iter().take(16).enumerate() {
        c.sshd(&format!("node{:02}", i + 1), s);
    }
    c.write_config();
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    for n in &c.nodes {
        let j = harness::scanned_node(&v, &n.name);
        assert_eq!(j["status"], "ok", "{j}");
        assert_eq!(j["via"], "ssh");
        assert_eq!(
            j["level"],
            expected_level(n.sample.as_deref().unwrap()),
            "{}",
            n.name
        );
        let info =
            pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(n.sample.as_deref().unwrap()))
                .unwrap();
        assert_eq!(j["record"]["model_name"], info.model_name.as_str());
    }
    let all: Vec<&str> = c
        .nodes
        .iter()
        .map(|n| expected_level(n.sample.as_deref().unwrap()))
        .collect();
    assert_eq!(v["cluster_cpu_type"], cluster_level(all).unwrap());
    // And the text form is exactly ProxCLMC's.
    assert_eq!(c.run(&["scan"]).code(0).stdout, proxclmc_text(&c));
}

#[test]
fn unknown_host_key_is_refused_with_fingerprint_and_advice() {
    let mut c = SshCluster::new();
    c.sshd("pve1", HASWELL);
    c.sshd("pve2", ZEN3).trust = Trust::Unknown;
    c.write_config();
    let run = c.run(&["scan"]).code(1);
    let s = c.node("pve2").sshd().unwrap();
    let fp = harness::sshd::fingerprint(&s.dir.join("host_ed25519.pub"));
    assert!(
        crate::harness::has(
            &run.stdout,
            &format!(
                "pve2 ({}): host-key: host key not known: ssh-ed25519 {fp}",
                c.node("pve2").addr
            )
        ),
        "{}",
        run.stdout
    );
    run.stdout_has("pvecm updatecerts");
    assert!(
        crate::harness::has(
            &run.stdout,
            &format!("pve2 {}", harness::sshd::type_and_key(&s.host_pub))
        ),
        "the line to add: {}",
        run.stdout
    );
    // The CPU data was not used: pve2 is not listed and has no record.
    run.stdout_lacks(&format!("pve2 | {}", c.node("pve2").addr));
    let cache = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    assert!(cache.node("pve2").is_none());
    assert!(cache.unscanned.contains_key("pve2"));
    assert!(cache.node("pve1").is_some());
}

#[test]
fn changed_host_key_is_refused() {
    let mut c = SshCluster::new();
    c.sshd("pve1", HASWELL).trust = Trust::Changed;
    c.sshd("pve2", ZEN3);
    c.write_config();
    let run = c.run(&["--output", "json", "scan"]).code(1);
    let v = run.json();
    let j = harness::scanned_node(&v, "pve1");
    assert_eq!(j["status"], "failed");
    assert_eq!(j["error"]["stage"], "host-key");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("HOST KEY CHANGED: pve1 offers ssh-ed25519 SHA256:"),
        "{msg}"
    );
    assert!(msg.contains("nodes/pve1/ssh_known_hosts:1"), "{msg}");
    assert!(
        j["record"].is_null(),
        "no CPU data from a node with a changed key"
    );
    assert_eq!(harness::scanned_node(&v, "pve2")["status"], "ok");
}

#[test]
fn hashed_known_hosts_file_replaces_the_list() {
    let mut c = SshCluster::new();
    c.sshd("pve1", HASWELL).trust = Trust::Unknown;
    c.sshd("pve2", IVY).trust = Trust::Unknown;
    c.write_config();
    c.run(&["scan"]).code(1);
    let kh = c.dir.path().join("hashed_known_hosts");
    c.write_known_hosts_file(&kh, true);
    assert!(
        std::fs::read_to_string(&kh).unwrap().starts_with("|1|"),
        "hashed by ssh-keygen -H"
    );
    let run = Done::of({
        let mut cmd = c.command(&["scan", "--known-hosts"]);
        cmd.arg(&kh);
        cmd
    });
    let run = run.code(0);
    assert_eq!(run.stdout, proxclmc_text(&c));
}

#[test]
fn silent_closed_and_offline_nodes_fail_within_the_timeout() {
    let mut c = SshCluster::new();
    c.timeout = 2.0;
    c.sshd("pve1", HASWELL);
    c.silent("pve2");
    c.closed("pve3");
    c.sshd("pve4", ZEN3).online = false;
    c.sshd("pve5", SAPPHIRE);
    c.write_config();
    let run = c.run(&["--output", "json", "scan"]).code(1);
    // Bounded: one timeout plus generous slack for process start-up, never
    // the sum of the failures.
    assert!(
        run.elapsed < Duration::from_secs_f64(2.0 + 4.0),
        "took {:?}",
        run.elapsed
    );
    let v = run.json();
    assert_eq!(harness::scanned_node(&v, "pve1")["status"], "ok");
    assert_eq!(harness::scanned_node(&v, "pve5")["status"], "ok");
    assert_eq!(
        harness::scanned_node(&v, "pve2")["error"]["stage"],
        "timeout"
    );
    assert!(harness::scanned_node(&v, "pve2")["error"]["message"]
        .as_str()
        .unwrap()
        .contains("handshake"));
    assert_eq!(
        harness::scanned_node(&v, "pve3")["error"]["stage"],
        "connect"
    );
    assert_eq!(
        harness::scanned_node(&v, "pve4")["error"]["stage"],
        "offline"
    );
    assert_eq!(harness::scanned_node(&v, "pve4")["via"], "skipped");
    assert_eq!(v["failed"], 3);
    // The offline node's sshd was never contacted.
    let log = std::fs::read_to_string(&c.node("pve4").sshd().unwrap().log).unwrap();
    assert!(
        !log.contains("Accepted") && !log.contains("Connection from"),
        "{log}"
    );
    // No cluster type is claimed while nodes were never scanned (issue 23):
    // the text names them and gives the type of the nodes with data.
    assert_eq!(v["cluster_cpu_type"], serde_json::Value::Null);
    let expected = cluster_level([HASWELL, SAPPHIRE].map(expected_level)).unwrap();
    let text = c.run(&["scan"]).code(1);
    text.stdout_has("Failed nodes (3 of 5):");
    text.stdout_has(&format!(
        "Cluster CPU type: unknown\nnote: no baseline while pve2, pve3, pve4 were never \
         scanned; {expected} on the 2 nodes scanned"
    ));
}

#[test]
fn a_failed_node_keeps_its_last_record_marked_stale() {
    let mut c = SshCluster::with_sshd(&[("pve1", HASWELL), ("pve2", SAPPHIRE)]);
    c.run(&["scan"]).code(0);
    let before = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    c.stop("pve2");
    let run = c.run(&["scan"]).code(1);
    run.stdout_has("last known: ");
    run.stdout_has("uses last-known data for pve2");
    let after = pve_cpuguard::cache::Cache::load(&c.cache()).unwrap();
    let (old, new) = (before.node("pve2").unwrap(), after.node("pve2").unwrap());
    assert!(new.last_refresh_failed());
    assert!(
        new.last_error.as_deref().unwrap().starts_with("connect: "),
        "{:?}",
        new.last_error
    );
    assert_eq!(new.cpu.flags, old.cpu.flags, "no data lost");
    assert_eq!(new.scanned_at, old.scanned_at, "the data keeps its own age");
    // The cluster type still counts pve2.
    let expected = cluster_level([HASWELL, SAPPHIRE].map(expected_level)).unwrap();
    assert!(run
        .stdout
        .contains(&format!("Cluster CPU type: {expected}\n")));

    let st = c.run(&["status"]).code(1);
    st.stdout_has("STALE: last refresh failed: connect: ");
    let b = c.run(&["baseline"]).code(1);
    b.stdout_has("uses last-known data for pve2");
}

#[test]
fn drift_is_reported_after_a_cpu_change() {
    let mut c = SshCluster::with_sshd(&[("pve1", HASWELL), ("pve2", HASWELL)]);
    c.cluster
        .vm(100, "pve1", "cpu: x86-64-v3\n")
        .vm(101, "pve1", "cpu: kvm64\n");
    let first = c.cmd(&["--output", "json", "scan"]).run().code(0).json();
    assert_eq!(
        first["admissions"],
        serde_json::json!([]),
        "a first scan admits nobody"
    );
    c.replace_sample("pve2", IVY);
    let sock_path = c.dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let run = c
        .cmd(&["--output", "json", "scan"])
        .env("PVE_CPUGUARD_SYSLOG_SOCKET", &sock_path)
        .run()
        .code(0);
    // The scan result and the drift go to the system log.
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let scanned = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(scanned.starts_with("<30>pve-cpuguard["), "{scanned}");
    assert!(
        scanned.contains("]: scan: 2 of 2 nodes answered; pve1 "),
        "{scanned}"
    );
    let n = sock.recv(&mut buf).unwrap();
    let drifted = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(drifted.starts_with("<29>pve-cpuguard["), "{drifted}");

    let v = run.json();
    let drift = v["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{v}");
    let (old, new) = (flags(HASWELL), flags(IVY));
    let lost: Vec<&String> = old.difference(&new).collect();
    let gained: Vec<&String> = new.difference(&old).collect();
    assert!(!lost.is_empty());
    assert_eq!(drift[0]["node"], "pve2");
    assert_eq!(drift[0]["lost"], serde_json::json!(lost));
    assert_eq!(drift[0]["gained"], serde_json::json!(gained));
    let msg = drift[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "lost {}",
            lost.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "{msg}"
    );
    let (lh, li) = (expected_level(HASWELL), expected_level(IVY));
    if lh == li {
        assert!(msg.ends_with("; level unchanged"), "{msg}");
    } else {
        assert!(msg.ends_with(&format!("; level {lh} -> {li}")), "{msg}");
    }
    assert!(drifted.contains(&format!("]: drift: {msg}")), "{drifted}");
    // Admission: the x86-64-v3 VM no longer starts on the Ivy Bridge.
    assert_eq!(
        v["admissions"],
        serde_json::json!([{"node": "pve2", "new": false, "message": msg, "vms": [100]}])
    );
    let n = sock.recv(&mut buf).unwrap();
    let admitted = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        admitted.contains(&format!(
            "]: scan: {msg}: VM 100 can no longer start or live-migrate there"
        )),
        "{admitted}"
    );
    // Text output and status show it too.
    let st = c.run(&["status"]);
    st.stdout_has(msg);
    st.stdout_has("Admission (new or weaker nodes, kept 7 days;");
    // The next scan keeps it in the cache for audit, and says it no more.
    let again = c.run(&["scan"]);
    assert!(!again.stdout.contains("Admission"), "{}", again.stdout);
    let audit = c.run(&["audit", "--finding", "node-admission"]);
    audit.stdout_has("100");
}

#[test]
fn the_local_node_is_read_locally_and_members_ip_wins() {
    let mut c = SshCluster::new();
    c.local("pve1", ZEN3);
    c.sshd("pve2", HASWELL);
    c.members = true;
    c.write_config();
    // ring0_addr that cannot be reached: the .members ip must be used.
    let conf = c.pve().join("corosync.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace(&c.node("pve2").addr, "pve2-ring.invalid"),
    )
    .unwrap();
    let run = c.run(&["--output", "json", "scan"]).code(0);
    let v = run.json();
    assert_eq!(harness::scanned_node(&v, "pve1")["via"], "local");
    assert_eq!(
        harness::scanned_node(&v, "pve1")["level"],
        expected_level(ZEN3)
    );
    assert_eq!(harness::scanned_node(&v, "pve2")["via"], "ssh");
    assert_eq!(
        harness::scanned_node(&v, "pve2")["address_source"],
        ".members"
    );
    assert_eq!(
        harness::scanned_node(&v, "pve2")["address"],
        c.node("pve2").addr.as_str()
    );
}

#[test]
fn corrupt_cache_is_reported_kept_aside_and_rebuilt() {
    let c = SshCluster::with_sshd(&[("pve1", HASWELL)]);
    std::fs::create_dir_all(c.cache().parent().unwrap()).unwrap();
    std::fs::write(c.cache(), "{\"schema\": 1, \"nodes\": {\"pve1\": 42").unwrap();
    let st = c.run(&["status"]).code(3);
    st.stderr_has("unusable cache");
    let run = c.run(&["scan"]).code(0);
    run.stderr_has("unusable cache");
    let aside = pve_cpuguard::cache::corrupt_path(&c.cache());
    assert_eq!(
        std::fs::read_to_string(aside).unwrap(),
        "{\"schema\": 1, \"nodes\": {\"pve1\": 42"
    );
    assert!(pve_cpuguard::cache::Cache::load(&c.cache())
        .unwrap()
        .node("pve1")
        .is_some());
    c.run(&["status"]).code(0);
}

#[test]
fn baseline_names_a_model_every_node_supports() {
    let c = SshCluster::with_sshd(&[("pve1", HASWELL), ("pve2", SAPPHIRE), ("pve3", IVY)]);
    c.run(&["scan"]).code(0);
    let run = c.run(&["--output", "json", "baseline"]).code(0);
    let v = run.json();
    let samples = [HASWELL, SAPPHIRE, IVY];
    assert_eq!(
        v["level"],
        cluster_level(samples.map(expected_level)).unwrap()
    );
    let caps: Vec<Capability> = samples
        .iter()
        .map(|s| {
            Capability::from_cpuinfo(
                &pve_cpuguard::reach::local::cpuinfo(&harness::cpuinfo(s)).unwrap(),
            )
        })
        .collect();
    if let Some(model) = v["model"].as_str() {
        let req = pve_cpuguard::cpu::requirement::from_cpu_value(model, &Default::default());
        for cap in &caps {
            let verdict = pve_cpuguard::cpu::verdict::judge(
                &req,
                cap,
                pve_cpuguard::cpu::verdict::Question::Start,
            );
            assert_eq!(
                verdict.outcome,
                pve_cpuguard::cpu::verdict::Outcome::Compatible,
                "{model} on {}",
                cap.model_name
            );
        }
        match req.base {
            pve_cpuguard::cpu::requirement::GuestCpu::Model {
                vendor: Some(v), ..
            } => assert_eq!(v, "GenuineIntel"),
            other => panic!("{model} is not a named model with a vendor: {other:?}"),
        }
    }
    if let Some(nm) = v["level_near_miss"].as_object() {
        let failing = nm["failing"].as_array().unwrap();
        assert!(!failing.is_empty() && failing.len() < 3);
        assert!(nm["message"].as_str().unwrap().starts_with(&format!(
            "{} on all nodes but ",
            nm["cpu_type"].as_str().unwrap()
        )));
    }
    let text = c.run(&["baseline"]).code(0);
    assert!(
        text.stdout.starts_with(&format!(
            "Cluster CPU type: {}\n",
            v["level"].as_str().unwrap()
        )),
        "{}",
        text.stdout
    );
}

#[test]
fn configuration_errors_exit_2_and_name_the_line() {
    let c = SshCluster::new();
    let run = c.run(&["scan"]).code(2);
    assert!(
        crate::harness::has(&run.stderr, "no corosync.conf")
            || crate::harness::has(&run.stderr, "corosync.conf"),
        "{}",
        run.stderr
    );
    std::fs::write(
        c.pve().join("corosync.conf"),
        "nodelist {\n  node {\n    name: a\n",
    )
    .unwrap();
    let run = c.run(&["scan"]).code(2);
    run.stderr_has("corosync.conf:2: section `node` opened here is never closed");
    std::fs::write(
        c.pve().join("corosync.conf"),
        "nodelist{ node{ name: a\nring0_addr: 127.0.0.1 } }",
    )
    .unwrap();
    let run = c.run(&["scan", "--node", "b"]).code(2);
    run.stderr_has("--node b: no node of that name");
    let run = c.run(&["scan", "--timeout", "0"]);
    run.code(2);
}

/// Issue 6 through the scan: each node's QEMU is asked over the same SSH
/// connection; its answer is recorded in the cache and then decides, while a
/// node whose probe fails keeps its /proc/cpuinfo view.
#[test]
fn the_kvm_view_is_recorded_by_scan_and_decides() {
    let mut c = SshCluster::new();
    c.sshd_with_qemu(
        "pve1",
        "../qmp/pvm-epyc-cpuinfo",
        "qemu-7.2-pvm-epyc-kvm.jsonl",
    );
    c.sshd("pve2", HASWELL);
    c.write_config();
    // The journal: a datagram socket in place of /dev/log.
    let journal_path = c.dir.path().join("journal.sock");
    let journal = std::os::unix::net::UnixDatagram::bind(&journal_path).unwrap();
    journal.set_nonblocking(true).unwrap();
    let run = c
        .cmd(&["--output", "json", "scan"])
        .env("PVE_CPUGUARD_PROBE", "kvm")
        .env("PVE_CPUGUARD_SYSLOG_SOCKET", &journal_path)
        .run();
    let run = run.code(0);
    // pve2's probe failed (its sshd serves no QEMU): a visible warning in
    // the JSON and the journal, never silent.
    let out = run.json();
    let warned = |w: &str| w.starts_with("pve2: QEMU probe failed (");
    assert!(
        out["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| warned(w.as_str().unwrap())),
        "{out}"
    );
    let mut logged = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = journal.recv(&mut buf) {
        logged.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        logged
            .iter()
            .any(|m| m.contains("pve2: QEMU probe failed (")),
        "{logged:?}"
    );
    // ...and in the text, under the node: the one answer and its view.
    let run = c
        .cmd(&["scan"])
        .env("PVE_CPUGUARD_PROBE", "kvm")
        .run()
        .code(0);
    assert!(
        crate::harness::has(&run.stderr, "warning: pve2: QEMU probe failed ("),
        "{}",
        run.stderr
    );
    assert!(
        crate::harness::has(&run.stdout, "\nnote: pve2: QEMU probe failed ("),
        "{}",
        run.stdout
    );
    run.stdout_has("| below-kvm64\n");
    assert!(
        crate::harness::has(&run.stdout, "\nView: pve1 kvm, pve2 cpuinfo\n")
            && crate::harness::has(
                &run.stdout,
                "\nwarning: pve1: not even kvm64 (the lowest Proxmox VE type) starts here\n"
            ),
        "{}",
        run.stdout
    );

    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.cache()).unwrap()).unwrap();
    let pve1 = &cache["nodes"]["pve1"];
    assert_eq!(pve1["kvm"]["accel"], "kvm", "{pve1}");
    assert!(
        pve1["kvm"]["qemu_version"]
            .as_str()
            .unwrap()
            .starts_with("7.2."),
        "{pve1}"
    );
    // The answer was QEMU's, so /proc/cpuinfo's pni is not in it.
    assert!(flags("../qmp/pvm-epyc-cpuinfo").contains("pni"));
    let kvm_features: Vec<&str> = pve1["kvm"]["host_features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(!kvm_features.contains(&"pni"), "{kvm_features:?}");
    let pve2 = &cache["nodes"]["pve2"];
    assert!(pve2["kvm"].is_null(), "{pve2}");
    assert!(!pve2["kvm_error"].as_str().unwrap().is_empty(), "{pve2}");

    // A kvm64 VM (on pve2) could not start on pve1: QEMU says pni is
    // unavailable there, although pve1's /proc/cpuinfo lists it.
    let vm_dir = c.pve().join("nodes/pve2/qemu-server");
    std::fs::create_dir_all(&vm_dir).unwrap();
    std::fs::write(vm_dir.join("100.conf"), "cpu: kvm64\nname: probe\n").unwrap();
    let run = c
        .cmd(&["check", "100", "--mode", "start", "-o", "json"])
        .env("PVE_CPUGUARD_NODE", "pve2")
        .env("PVE_CPUGUARD_CPUINFO", harness::cpuinfo(HASWELL))
        .env("PVE_CPUGUARD_CONFIG", std::path::PathBuf::from("/dev/null"))
        .run();
    let run = run.code(1);
    let v = run.json();
    let refused = &v["not_allowed_nodes"]["pve1"];
    assert!(
        refused["missing_flags"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("pni")),
        "{v}"
    );
}
