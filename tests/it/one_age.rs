//! One age and one staleness for a record in every command, text and JSON,
//! and no cluster-wide claim while some node was never scanned (issue 23:
//! `status` called this node's record STALE while `audit` called it 0 s
//! old and fresh; the audit's node block had an unindented `note:` line;
//! `check` and `audit` announced a baseline and a CPU type "that works on
//! every node with data" with most nodes never scanned, and called a
//! never-scanned node "STALE: older than cache_max_age or last refresh
//! failed").

use pve_cpuguard::cache::{Cache, Unscanned};
use serde_json::Value;

use crate::harness::cluster::Cluster;

const DAYS_3: u64 = 3 * 86_400;

/// pve1 (where the commands run) and pve2, pve1's record three days old.
fn stale_here() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    let mut cache = Cache::load(&c.cache()).unwrap();
    cache.nodes.get_mut("pve1").unwrap().scanned_at -= DAYS_3;
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    c.vm(100, "pve2", "cpu: x86-64-v3\nname: web\n");
    c
}

fn node<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// The same record read by `status`, `audit` (on the node itself, which
/// reads its own /proc/cpuinfo), `check`, `baseline` and `metrics`.
#[test]
fn this_nodes_stale_record_has_one_age_and_one_staleness_everywhere() {
    let c = stale_here();
    let status = c.on("pve1", &["status", "-o", "json"]).run().code(1).json();
    let want = &node(&status["nodes"], "pve1")["freshness"];
    assert_eq!(want["state"], "stale", "{status}");
    let age = want["age_seconds"].as_u64().unwrap();
    assert!((DAYS_3..DAYS_3 + 60).contains(&age), "{want}");
    let same = |what: &str, got: &Value| {
        assert_eq!(got["state"], want["state"], "{what}: {got}");
        assert_eq!(got["why"], want["why"], "{what}: {got}");
        let a = got["age_seconds"].as_u64().unwrap();
        assert!(a.abs_diff(age) < 60, "{what}: {got}");
    };
    assert_eq!(node(&status["nodes"], "pve1")["stale"], true);

    let audit = c.on("pve1", &["audit", "-o", "json"]).run().json();
    let n = node(&audit["nodes"], "pve1");
    same("audit", &n["freshness"]);
    // Within one command, `age_secs` is the freshness's age exactly; the
    // two commands ran a moment apart (a second may pass between them).
    assert_eq!(
        (n["stale"].clone(), n["age_secs"].clone()),
        (Value::Bool(true), n["freshness"]["age_seconds"].clone()),
        "{n}"
    );
    assert!(!n["problem"].as_str().unwrap().contains('\n'), "{n}");

    let check = c
        .on("pve1", &["check", "100", "--mode", "start", "-o", "json"])
        .run()
        .json();
    same("check", &check["decisions"]["pve1"]["freshness"]);

    let baseline = c.on("pve1", &["baseline", "-o", "json"]).run().json();
    same(
        "baseline",
        &node(&baseline["node_levels"], "pve1")["freshness"],
    );

    // Text: the same words, never "0s".
    let why = want["why"].as_str().unwrap();
    c.on("pve1", &["status"]).run().stdout_has(why);
    for args in [&["audit"][..], &["audit", "--all"], &["baseline"]] {
        c.on("pve1", args)
            .run()
            .stdout_has(why)
            .stdout_lacks("0s old");
    }
    c.on("pve1", &["audit", "--all"])
        .run()
        .stdout_has("read now; its record: scanned 3d 0h ago, STALE: ");
    let metrics = c.on("pve1", &["metrics"]).run().code(0);
    let line = metrics
        .stdout
        .lines()
        .find(|l| l.starts_with("pve_cpuguard_cache_age_seconds{node=\"pve1\"}"))
        .unwrap();
    let m: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(m.abs_diff(age) < 60, "{line}");
}

/// The audit's node block: every line indented, the hint said once.
#[test]
fn the_audit_node_block_has_no_unindented_note() {
    let c = stale_here();
    for args in [&["audit"][..], &["audit", "--all"]] {
        let out = c.on("pve1", args).run();
        let block: Vec<&str> = out
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("Nodes"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!block.is_empty(), "{}", out.stdout);
        for l in &block {
            assert!(
                l.starts_with("  "),
                "unindented in {args:?}: {l:?}\n{}",
                out.stdout
            );
        }
        let notes = block
            .iter()
            .filter(|l| l.trim_start().starts_with("note: run"))
            .count();
        assert_eq!(notes, 1, "{}", out.stdout);
    }
}

/// pve1 and pve2 scanned; pve3 tried and failed; pve4 and pve5 only in
/// /etc/pve.
fn mostly_unscanned() -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    for n in ["pve3", "pve4", "pve5"] {
        std::fs::create_dir_all(c.pve().join(format!("nodes/{n}/qemu-server"))).unwrap();
    }
    let mut cache = Cache::load(&c.cache()).unwrap();
    cache.unscanned.insert(
        "pve3".into(),
        Unscanned {
            name: "pve3".into(),
            address: "10.0.0.3".into(),
            error: "ssh: connection refused".into(),
            attempted_at: cache.updated_at,
        },
    );
    std::fs::write(c.cache(), cache.to_json()).unwrap();
    c.vm(100, "pve1", "cpu: x86-64-v2-AES\nname: web\n").vm(
        101,
        "pve1",
        "cpu: x86-64-v4\nname: big\nhookscript: local:snippets/pve-cpuguard-hook\n",
    );
    c
}

const MISSING: &str = "pve3, pve4, pve5 were never scanned";

#[test]
fn no_baseline_or_type_for_every_node_is_claimed_while_nodes_were_never_scanned() {
    let c = mostly_unscanned();
    // audit: which nodes are missing, what holds on the others.
    let out = c.on("pve1", &["audit"]).run();
    out.stdout_has(&format!(
        "no baseline while {MISSING}; x86-64-v3 on the 2 nodes scanned"
    ))
    .stdout_lacks("with data");
    let j = c.on("pve1", &["audit", "-o", "json"]).run().json();
    assert_eq!(
        (j["baseline"].clone(), j["works_everywhere"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        node(&j["nodes"], "pve4")["freshness"]["state"],
        "never-scanned"
    );
    c.on("pve1", &["audit", "--all"]).run().stdout_has(
        "makes it movable on the 2 nodes scanned (pve3, pve4, pve5 were never scanned)",
    );

    // check: never scanned is "never scanned", not STALE.
    let out = c.on("pve1", &["check", "100"]).run().code(3);
    out.stdout_has("pve3: unknown (view: none): never scanned (last attempt: ssh: connection refused)")
        .stdout_has("pve4: unknown (view: none): never scanned\n")
        .stdout_has(&format!(
            "CPU type that works on every node: unknown while {MISSING}; x86-64-v3 on the 2 nodes scanned"
        ))
        .stdout_lacks("STALE")
        .stdout_lacks("with data");
    let j = c.on("pve1", &["check", "100", "-o", "json"]).run().json();
    assert_eq!(j["works_everywhere"], Value::Null, "{j}");

    // The hook's refusal (x86-64-v4 on the Haswell node) says it too; it
    // reads the cache only, which knows of pve3 alone.
    c.on("pve2", &["hook", "101", "pre-start"])
        .run()
        .code(1)
        .stderr_has(
            "CPU type that works on every node: unknown while pve3 was never scanned; x86-64-v3 \
             on the 2 nodes scanned",
        );

    // status and baseline know pve3 from the cache, and pve4 and pve5
    // (not in it: they joined after the last scan) from the cluster file
    // system, as audit does: the cluster CPU type is not claimed either.
    for cmd in ["status", "baseline"] {
        c.on("pve1", &[cmd])
            .run()
            .code(1)
            .stdout_has(&format!("Cluster CPU type: unknown\nnote: no baseline while {MISSING}; x86-64-v3 on the 2 nodes scanned"));
    }
    c.on("pve1", &["status"])
        .run()
        .stdout_has("  pve3 (10.0.0.3): never scanned (last attempt: ssh: connection refused)")
        .stdout_has("  pve4: never scanned\n");
    let j = c.on("pve1", &["status", "-o", "json"]).run().json();
    assert_eq!(j["cluster_cpu_type"], Value::Null, "{j}");
    assert_eq!(
        j["nodes_without_data"][0]["freshness"]["state"],
        "never-scanned"
    );
    let j = c.on("pve1", &["baseline", "-o", "json"]).run().json();
    assert_eq!(
        (j["level"].clone(), j["model"].clone()),
        (Value::Null, Value::Null),
        "{j}"
    );
    c.on("pve1", &["metrics"])
        .run()
        .stdout_has("pve_cpuguard_cluster_level{level=\"unknown\"} -1\n");
}

/// Once every node has data, the claims come back as before.
#[test]
fn with_every_node_scanned_the_baseline_is_said() {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v2-AES\n");
    c.on("pve1", &["audit"])
        .run()
        .stdout_has("(baseline x86-64-v3; CPU vendors");
    c.on("pve1", &["check", "100"])
        .run()
        .stdout_has("CPU type that works on every node: x86-64-v3\n");
    c.on("pve1", &["status"])
        .run()
        .stdout_has("\nCluster CPU type: x86-64-v3\n\n");
}

/// `inspect`, when this node's recorded QEMU answer decides, says how old
/// that record is in the words of `status`.
#[test]
fn inspect_says_the_age_of_the_record_whose_qemu_answer_decides() {
    use pve_cpuguard::reach::kvm_probe::{self, Accel};
    let c = Cluster::new(&[("pve1", "hwloc-xeon-silver-4108-skylake-sp")]);
    let cpuinfo = crate::harness::data("qmp/pvm-epyc-cpuinfo.txt");
    let info = pve_cpuguard::reach::local::cpuinfo(&cpuinfo).unwrap();
    let transcript =
        std::fs::read(crate::harness::data("qmp/qemu-7.2-pvm-epyc-kvm.jsonl")).unwrap();
    let answer = kvm_probe::interpret(&transcript, b"", Accel::Kvm, "recorded").unwrap();
    let then = pve_cpuguard::cache::now() - DAYS_3;
    let rec = pve_cpuguard::cache::NodeRecord::new("pve1", "10.0.0.1", &info, None, then)
        .with_kvm(Some(Ok(answer)));
    c.write_records([rec]);
    let status = c.on("pve1", &["status", "-o", "json"]).run().json();
    let why = node(&status["nodes"], "pve1")["freshness"]["why"]
        .as_str()
        .unwrap()
        .to_string();
    let text = c
        .on("pve1", &["inspect"])
        .env("PVE_CPUGUARD_CPUINFO", &cpuinfo)
        .run();
    text.stdout_has("(view: kvm)").stdout_has(&format!(
        "from this node's record: scanned 3d 0h ago, STALE: {why}"
    ));
    let j = c
        .on("pve1", &["inspect", "-o", "json"])
        .env("PVE_CPUGUARD_CPUINFO", &cpuinfo)
        .run()
        .json();
    assert_eq!(j["freshness"]["why"], why.as_str(), "{j}");
    // Judged from /proc/cpuinfo alone, no record is involved.
    let plain = c.on("pve1", &["inspect", "-o", "json"]).run().json();
    assert_eq!(plain["freshness"], Value::Null);
}
