//! `ha-rules` end to end: the real binary on a fixture `/etc/pve` tree with
//! `ha/resources.cfg` and `ha/rules.cfg` in Proxmox's format, a cache from
//! real /proc/cpuinfo samples, and `ha-manager` replaced at the exec
//! boundary by a script that records its argv (one argument per line, a
//! `--` line after each call).

use crate::harness;

use crate::harness::cluster::Cluster;
use crate::harness::exec::Recorder;
use pve_cpuguard::guard::ha_rules::{rule_id, COMMENT};

struct Fixture {
    c: Cluster,
    ha: Recorder,
}

/// pve1 Skylake-SP and pve2 Cascade Lake (both x86-64-v4), pve3 Haswell
/// (x86-64-v3). VMs: 100 (pve1) and 101 (pve2) x86-64-v4, 102 x86-64-v3,
/// 104 Cascadelake-Server on pve2, 106 x86-64-v4 outside HA.
fn fixture() -> Fixture {
    let mut c = Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nname: db\n")
        .vm(101, "pve2", "cpu: x86-64-v4\n")
        .vm(102, "pve1", "cpu: x86-64-v3\n")
        .vm(104, "pve2", "cpu: Cascadelake-Server\n")
        .vm(106, "pve1", "cpu: x86-64-v4\n");
    std::fs::create_dir_all(c.pve().join("ha")).unwrap();
    // pve-ha-manager's resources.cfg, as it writes it.
    std::fs::write(
        c.pve().join("ha/resources.cfg"),
        "vm: 100\n\tstate started\n\nvm: 101\n\tstate started\n\tmax_relocate 1\n\n\
         vm: 102\n\tstate started\n\nvm: 104\n\tstate started\n\nct: 300\n\tstate started\n",
    )
    .unwrap();
    members(&c, true);
    let ha = Recorder::new(
        c.dir.path(),
        "ha-manager",
        "[ -n \"$HA_FAIL\" ] && { echo \"rule 'x' already exists\" >&2; exit 255; }\nexit 0\n",
    );
    Fixture { c, ha }
}

/// `.members` as pve1 sees it, every node online.
fn members(c: &Cluster, quorate: bool) {
    c.write_members(
        "pve1",
        quorate,
        &[
            ("pve1", "10.0.0.1", true),
            ("pve2", "10.0.0.2", true),
            ("pve3", "10.0.0.3", true),
        ],
    );
}

fn id(nodes: &[&str]) -> String {
    rule_id(&nodes.iter().map(|s| ((*s).to_string(), None)).collect())
}

/// A rule of ours as `ha-manager rules add` leaves it in rules.cfg.
fn ours(nodes: &[&str], resources: &str) -> String {
    format!(
        "node-affinity: {}\n\tcomment {COMMENT}\n\tnodes {}\n\tresources {resources}\n\tstrict 1\n\n",
        id(nodes),
        nodes.join(",")
    )
}

fn add(verb: &str, nodes: &[&str], resources: &str) -> Vec<String> {
    [
        "rules",
        verb,
        "node-affinity",
        &id(nodes),
        "--resources",
        resources,
        "--nodes",
        &nodes.join(","),
        "--strict",
        "1",
        "--comment",
        COMMENT,
    ]
    .map(str::to_string)
    .to_vec()
}

impl Fixture {
    fn rules(&self, text: &str) {
        std::fs::write(self.c.pve().join("ha/rules.cfg"), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> harness::Run {
        self.c
            .on("pve1", args)
            .env("PVE_CPUGUARD_HA_MANAGER", &self.ha.program)
    }
}

#[test]
fn new_rules_then_a_second_run_makes_no_call() {
    let f = fixture();
    let out = f.run(&["ha-rules", "--apply"]).run().code(0);
    let want = vec![
        add("add", &["pve1", "pve2"], "vm:100,vm:101"),
        add("add", &["pve2"], "vm:104"),
    ];
    let mut got = f.ha.calls();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted, "{}", out.stdout);
    out.stdout_has("ran: ");

    // ha-manager wrote them (its format); nothing changed: no call.
    f.rules(&(ours(&["pve1", "pve2"], "vm:100,vm:101") + &ours(&["pve2"], "vm:104")));
    std::fs::remove_file(&f.ha.log).unwrap();
    let out = f.run(&["ha-rules", "--apply"]).run().code(0);
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new());
    out.stdout_has("rules.cfg is current: no call needed");
}

#[test]
fn dry_run_prints_exactly_the_calls_and_runs_none() {
    let f = fixture();
    let out = f.run(&["ha-rules", "--dry-run"]).run().code(1);
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new());
    // The commands as printed, copied into a shell, are exactly the calls.
    let shown: String = out
        .stdout
        .split_once("would run:\n")
        .unwrap()
        .1
        .lines()
        .take_while(|l| !l.starts_with("note:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut read = crate::harness::shell_reads(&shown, &f.ha.program.display().to_string());
    read.sort();
    assert_eq!(
        read,
        [
            add("add", &["pve1", "pve2"], "vm:100,vm:101"),
            add("add", &["pve2"], "vm:104")
        ],
        "{}",
        out.stdout
    );
    for l in out.stdout.lines() {
        assert!(l.chars().count() <= 100, "{l}");
    }
    let json = f
        .run(&["-o", "json", "ha-rules", "--dry-run"])
        .run()
        .code(1)
        .json();
    assert_eq!(json["calls"].as_array().unwrap().len(), 2);
    assert_eq!(json["applied"], false);
}

#[test]
fn an_administrators_rule_is_left_alone_and_its_conflict_named() {
    let f = fixture();
    let admin =
        "node-affinity: keep-db\n\tnodes pve1:2,pve2:1,pve3\n\tresources vm:100\n\tstrict 1\n\n\
                 resource-affinity: apart\n\taffinity negative\n\tresources vm:101,vm:102\n";
    f.rules(admin);
    let out = f.run(&["ha-rules", "--apply"]).run().code(1);
    let mut got = f.ha.calls();
    got.sort();
    // 100 is in keep-db: no rule of ours for it, keep-db itself untouched.
    assert_eq!(
        got,
        [
            add("add", &["pve1", "pve2"], "vm:101"),
            add("add", &["pve2"], "vm:104")
        ]
    );
    assert!(out
        .stdout
        .contains("VM 100: in the administrator's rule 'keep-db': left alone"));
    out.stdout_has("conflict: administrator's rule 'keep-db' (rules.cfg:1) lets HA pick pve3 for VM 100, whose CPU cannot start there");
    let fix = format!(
        "note: change it with:\n  {} rules set node-affinity keep-db --nodes pve1:2,pve2:1 --strict 1\n",
        f.ha.program.display()
    );
    assert!(out.stdout.contains(&fix), "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(f.c.pve().join("ha/rules.cfg")).unwrap(),
        admin
    );
}

#[test]
fn a_vm_leaving_ha_is_dropped_from_its_rule() {
    let f = fixture();
    f.rules(&(ours(&["pve1", "pve2"], "vm:100,vm:101") + &ours(&["pve2"], "vm:104")));
    std::fs::write(
        f.c.pve().join("ha/resources.cfg"),
        "vm: 100\n\tstate started\n\nvm: 101\n\tstate ignored\n\nvm: 102\n\tstate started\n",
    )
    .unwrap();
    f.run(&["ha-rules", "--apply"]).run().code(0);
    assert_eq!(
        f.ha.calls(),
        [
            add("set", &["pve1", "pve2"], "vm:100"),
            vec!["rules".into(), "remove".into(), id(&["pve2"])],
        ]
    );
}

#[test]
fn a_node_losing_a_flag_leaves_the_rules() {
    let mut f = fixture();
    f.rules(&(ours(&["pve1", "pve2"], "vm:100,vm:101") + &ours(&["pve2"], "vm:104")));
    // After a microcode update pve2 lost AVX-512 (its record now reads as a
    // Haswell): 100 may stay on pve1 only. 101 runs on pve2 and keeps it
    // (a strict rule without the current node would make HA move it at
    // once); 104 likewise.
    f.c.samples
        .insert("pve2".into(), "archspec-linux-rhel7-haswell".into());
    f.c.write_cache(&["pve1".into(), "pve2".into(), "pve3".into()]);
    let out = f.run(&["ha-rules", "--apply"]).run().code(0);
    assert_eq!(
        f.ha.calls(),
        [
            add("set", &["pve1", "pve2"], "vm:101"),
            add("add", &["pve1"], "vm:100"),
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn no_quorum_no_call_and_a_failed_call_stops_the_run() {
    let f = fixture();
    members(&f.c, false);
    let out = f.run(&["ha-rules", "--apply"]).run().code(1);
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new());
    out.stdout_has("refused: the cluster is not quorate");

    members(&f.c, true);
    let out = f
        .run(&["ha-rules", "--apply"])
        .env("HA_FAIL", "1")
        .run()
        .code(1);
    assert_eq!(f.ha.calls().len(), 1, "{}", out.stdout);
    out.stdout_has("rule 'x' already exists");
    out.stdout_has("1 later call(s) not run");
}

/// With no node data at all, no rule is worked out, and nothing is said of
/// "every node" (it read "no rule needed: … on every node", exit 3).
#[test]
fn an_empty_cache_claims_nothing_for_every_node() {
    let f = fixture();
    f.c.write_records([]);
    // Run from a machine outside the cluster: no node is read locally.
    let out = f
        .run(&["ha-rules"])
        .env("PVE_CPUGUARD_NODE", "elsewhere")
        .run()
        .code(3);
    out.stdout_has("the cache holds no node data")
        .stdout_has("note: run `pve-cpuguard scan` first")
        .stdout_lacks("every node");
    assert!(f.ha.calls().is_empty());
}

#[test]
fn a_malformed_rules_file_names_file_and_line() {
    let f = fixture();
    f.rules("node-affinity: x\n\tresources vm:100\n\tstrict maybe\n");
    let out = f.run(&["ha-rules"]).run().code(2);
    out.stderr_has("ha/rules.cfg:3: invalid strict 'maybe'");
}

/// Issue 21, item 9: rules.cfg read as Proxmox VE reads it: `vm:0100` is
/// VM 100 and `strict true` a boolean (the administrator's rule still
/// keeps VM 100 out of ours); `node-affinity : keep` is no header.
#[test]
fn rules_cfg_is_read_with_proxmox_grammar() {
    let f = fixture();
    f.rules("node-affinity: keep-db\n\tnodes pve1,pve2\n\tresources vm:0100\n\tstrict true\n");
    f.run(&["ha-rules", "--apply"]).run().code(0);
    let mut got = f.ha.calls();
    got.sort();
    // 100 is in keep-db (strict, allowed nodes only): no rule of ours for
    // it, which ha-manager would refuse (a resource in two rules).
    assert_eq!(
        got,
        [
            add("add", &["pve1", "pve2"], "vm:101"),
            add("add", &["pve2"], "vm:104")
        ]
    );
    f.ha.clear();
    f.rules("node-affinity : keep\n\tresources vm:100\n");
    f.run(&["ha-rules"])
        .run()
        .code(2)
        .stderr_has("ha/rules.cfg:1: expected a section header `TYPE: ID`");
    assert!(f.ha.calls().is_empty());
}

/// `ha_rules = apply`: the refresh service's `scan` keeps the rules, on
/// the first online node of `.members` only.
#[test]
fn scan_keeps_the_rules_on_the_first_online_node_only() {
    let f = fixture();
    f.c.write_corosync(&[
        ("pve1", "127.0.0.1"),
        ("pve2", "127.0.0.1"),
        ("pve3", "127.0.0.1"),
    ]);
    let conf = f.c.path("pve-cpuguard.conf");
    std::fs::write(&conf, "ha_rules = apply\nno_ssh = yes\n").unwrap();
    let scan = |node: &str| {
        f.c.on(node, &["scan", "--probe", "off"])
            .env("PVE_CPUGUARD_CONFIG", &conf)
            .env("PVE_CPUGUARD_HA_MANAGER", &f.ha.program)
            .run()
    };
    let out = scan("pve2");
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new(), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("ha_rules: kept by node pve1 (the first online node), not here"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let out = scan("pve1");
    assert_eq!(f.ha.calls().len(), 2, "{}\n{}", out.stdout, out.stderr);
    out.stdout_has("ha_rules: ran ");
    // Off (the default): no call.
    std::fs::write(&conf, "no_ssh = yes\n").unwrap();
    std::fs::remove_file(&f.ha.log).unwrap();
    scan("pve1");
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new());
}

/// Issue 25: a `cpu: host` HA VM is not pinned to its node. HA recovery
/// after a node failure is a cold start, which works on every node: every
/// node is in its rule, its own (Cascade Lake: the only one it can
/// live-migrate to) at the higher priority, so HA places and rebalances it there and falls
/// back to the others only when its node is down.
#[test]
fn a_host_vm_keeps_recovery_on_every_node() {
    let mut f = fixture();
    f.c.vm(105, "pve2", "cpu: host\n");
    std::fs::write(
        f.c.pve().join("ha/resources.cfg"),
        "vm: 105\n\tstate started\n",
    )
    .unwrap();
    let out = f.run(&["ha-rules", "--apply"]).run().code(0);
    let nodes = "pve1:1,pve2:2,pve3:1";
    let rid = rule_id(
        &[("pve1", 1), ("pve2", 2), ("pve3", 1)]
            .map(|(n, p)| (n.to_string(), Some(p)))
            .into(),
    );
    let want = [
        "rules",
        "add",
        "node-affinity",
        &rid,
        "--resources",
        "vm:105",
        "--nodes",
        nodes,
        "--strict",
        "1",
        "--comment",
        COMMENT,
    ]
    .map(str::to_string)
    .to_vec();
    assert_eq!(f.ha.calls(), [want], "{}", out.stdout);
    out.stdout_has(&format!("{rid}: vm:105 -> {nodes}"));
    let json = f.run(&["-o", "json", "ha-rules"]).run().json();
    assert_eq!(
        json["rules"][0]["nodes"],
        serde_json::json!(["pve1", "pve2", "pve3"])
    );
    assert_eq!(json["rules"][0]["priorities"]["pve2"], 2);
    assert_eq!(json["rules"][0]["priorities"]["pve1"], 1);

    // As ha-manager writes it back: a second --apply calls nothing.
    f.ha.clear();
    f.rules(&format!(
        "node-affinity: {rid}\n\tcomment {COMMENT}\n\tnodes pve2:2,pve1:1,pve3:1\n\t\
         resources vm:105\n\tstrict 1\n\n"
    ));
    f.run(&["ha-rules", "--apply"]).run().code(0);
    assert_eq!(f.ha.calls(), Vec::<Vec<String>>::new());
}

/// A node that joins (its record appears: an admission) and cannot start
/// some HA-managed VMs stays out of their rules: the rules already
/// applied keep it out (no call adds it), a VM that ran everywhere before
/// gets a rule without it, and a VM that can start there gets none. The
/// VMs `audit` flags `node-admission` for it are those kept off it.
#[test]
fn a_node_that_joins_stays_out_of_the_rules_of_the_vms_it_cannot_take() {
    use pve_cpuguard::cache::{Cache, Update};
    let mut f = fixture();
    f.c.vm(105, "pve3", "cpu: kvm64\n");
    std::fs::write(
        f.c.pve().join("ha/resources.cfg"),
        "vm: 100\n\tstate started\n\nvm: 101\n\tstate started\n\nvm: 102\n\tstate started\n\n\
         vm: 104\n\tstate started\n\nvm: 105\n\tstate started\n",
    )
    .unwrap();
    // The rules as `ha-rules --apply` left them before pve4.
    f.rules(&(ours(&["pve1", "pve2"], "vm:100,vm:101") + &ours(&["pve2"], "vm:104")));
    f.run(&["ha-rules", "--apply"]).run().code(0);
    assert!(f.ha.calls().is_empty());
    // pve4, a Sandy Bridge (x86-64-v2-AES), joins; the refresh admits it.
    std::fs::create_dir_all(f.c.pve().join("nodes/pve4/qemu-server")).unwrap();
    f.c.samples
        .insert("pve4".into(), "hwloc-xeon-e5-2680-sandybridge-ep".into());
    let now = pve_cpuguard::cache::now();
    let updates: Vec<Update> =
        f.c.samples
            .iter()
            .enumerate()
            .map(|(i, (n, s))| {
                Update::Scanned(Box::new(Cluster::record(
                    n,
                    &format!("10.0.0.{}", i + 1),
                    s,
                    now,
                )))
            })
            .collect();
    let next = Cache::load(&f.c.cache())
        .unwrap()
        .merge(None, &updates, now);
    assert!(next.admissions["pve4"].is_new());
    std::fs::write(f.c.cache(), next.to_json()).unwrap();

    let audit = f.run(&["-o", "json", "audit"]).run().json();
    let mut admitted: Vec<u64> = crate::harness::audit_json::vms(&audit)
        .iter()
        .filter(|v| {
            v["flags"].as_array().unwrap().iter().any(|fl| {
                fl["code"] == "node-admission"
                    && fl["finding"]["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n == "pve4")
            })
        })
        .map(|v| v["vmid"].as_u64().unwrap())
        .collect();
    admitted.sort_unstable();
    assert_eq!(admitted, [100, 101, 102, 104, 106], "{audit}");

    let out = f.run(&["ha-rules", "--apply"]).run().code(0);
    assert_eq!(
        f.ha.calls(),
        [add("add", &["pve1", "pve2", "pve3"], "vm:102")],
        "{}",
        out.stdout
    );
    let j = f.run(&["-o", "json", "ha-rules", "--dry-run"]).run().json();
    let rules = j["rules"].as_array().unwrap();
    for vm in ["vm:100", "vm:101", "vm:102", "vm:104"] {
        let rule = rules
            .iter()
            .find(|r| r["resources"].as_array().unwrap().iter().any(|x| x == vm))
            .unwrap_or_else(|| panic!("no rule for {vm}: {j}"));
        assert!(
            !rule["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "pve4"),
            "{vm}: {rule}"
        );
    }
    assert!(
        !rules.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "vm:105")),
        "VM 105 starts on pve4 too: no rule: {j}"
    );
}
