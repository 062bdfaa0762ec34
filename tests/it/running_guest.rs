//! The CPU a running guest really has (issue 22): a process stands in for
//! QEMU, with the argv qemu-server gives it; the hookscript's `post-start`
//! records its `-cpu` and cold start, live migrations are judged by that,
//! and `post-stop` removes it.

use std::process::{Child, Command};

use crate::harness::cluster::Cluster;
use crate::harness::exec::Recorder;

/// A process whose command line is a QEMU's (`/proc/PID/cmdline`), with its
/// PID file where qemu-server keeps it; killed when dropped.
struct FakeQemu(Child);

impl FakeQemu {
    fn start(c: &Cluster, vmid: u32, cpu: &str) -> FakeQemu {
        let child = Command::new("sh")
            .args(["-c", "sleep 120", "/usr/bin/kvm", "-id"])
            .arg(vmid.to_string())
            .args(["-machine", "type=pc-i440fx-10.1+pve0", "-cpu", cpu])
            .spawn()
            .unwrap();
        std::fs::create_dir_all(c.path("run")).unwrap();
        std::fs::write(
            c.path(&format!("run/{vmid}.pid")),
            format!("{}\n", child.id()),
        )
        .unwrap();
        FakeQemu(child)
    }
}

impl Drop for FakeQemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Haswell (pve1) ⊂ Cascade Lake (pve2); Skylake-SP (pve3) ⊇ Haswell but
/// lacks what Cascade Lake adds (avx512-vnni); an AMD node (pve4).
fn cluster(conf: &str) -> Cluster {
    let mut c = Cluster::new(&[
        ("pve1", "archspec-linux-rhel7-haswell"),
        ("pve2", "hwloc-xeon-gold-6230-cascadelake"),
        ("pve3", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve4", "archspec-linux-ubuntu20.04-zen3"),
    ]);
    c.vm(
        100,
        "pve1",
        &format!("cores: 2\n{conf}\nname: web\nostype: l26\n"),
    );
    c
}

fn record(c: &Cluster, node: &str) -> Option<serde_json::Value> {
    let p = c
        .pve()
        .join(format!("nodes/{node}/pve-cpuguard-running/100.json"));
    std::fs::read(p)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

fn hook(c: &Cluster, node: &str, phase: &str, from: Option<&str>) -> crate::harness::Done {
    let mut run = c.on(node, &["hook", "100", phase]);
    if let Some(f) = from {
        run = run.env("PVE_MIGRATED_FROM", f);
    }
    run.run()
}

#[test]
fn the_wrapper_refuses_what_the_running_cpu_needs_although_the_config_does_not() {
    let c = cluster("cpu: kvm64");
    let qm = Recorder::new(c.dir.path(), "qm", "");
    let _qemu = FakeQemu::start(
        &c,
        100,
        "Cascadelake-Server-v2,enforce,+kvm_pv_eoi,+kvm_pv_unhalt",
    );
    // The configuration says kvm64, which starts anywhere; the guest runs
    // with Cascade Lake's CPU, which Skylake-SP cannot give it.
    c.on("pve1", &["migrate", "100", "pve3", "--online"])
        .env("PVE_CPUGUARD_QM", &qm.program)
        .run()
        .code(1)
        .stderr_has("missing flags")
        .stderr_has("avx512vnni")
        .stderr_has("CPU 'kvm64' (running: Cascadelake-Server-v2,");
    assert!(qm.calls().is_empty());
    let v = c
        .on("pve1", &["check", "100", "--mode", "live", "-o", "json"])
        .run()
        .code(1)
        .json();
    assert_eq!(
        v["running_cpu"],
        "Cascadelake-Server-v2,enforce,+kvm_pv_eoi,+kvm_pv_unhalt"
    );
    assert!(v["not_allowed_nodes"].get("pve3").is_some(), "{v}");
    // A cold start there is fine: the configuration is what starts.
    c.on("pve1", &["check", "100", "--mode", "start", "-o", "json"])
        .run()
        .code(0);
}

#[test]
fn a_host_guest_is_judged_by_the_node_it_was_cold_started_on() {
    let c = cluster("cpu: host");
    let qemu = FakeQemu::start(&c, 100, "host,+kvm_pv_eoi,+kvm_pv_unhalt");
    // Cold start on pve1 (Haswell).
    hook(&c, "pve1", "post-start", None).code(0);
    let rec = record(&c, "pve1").expect("post-start recorded the guest");
    assert_eq!(rec["cold_start_node"], "pve1");
    assert_eq!(rec["cpu"], "host,+kvm_pv_eoi,+kvm_pv_unhalt");
    assert_eq!(rec["machine"], "pc-i440fx-10.1+pve0");
    // Live to pve2 (a superset of Haswell): allowed, and the record travels.
    hook(&c, "pve2", "pre-start", Some("pve1")).code(0);
    hook(&c, "pve2", "post-start", Some("pve1")).code(0);
    assert_eq!(record(&c, "pve2").unwrap()["cold_start_node"], "pve1");
    // Live on to pve3: a superset of pve1, where the guest's CPU came from,
    // not of pve2. Allowed, and said why.
    hook(&c, "pve3", "pre-start", Some("pve2"))
        .code(0)
        .stderr_lacks("refused");
    // Without the record, the guard can only compare with pve2: refused.
    std::fs::remove_file(c.pve().join("nodes/pve2/pve-cpuguard-running/100.json")).unwrap();
    hook(&c, "pve3", "pre-start", Some("pve2"))
        .code(1)
        .stderr_has("the source CPU gives the guest flags the target lacks")
        .stderr_has("not recorded");
    drop(qemu);
}

#[test]
fn a_record_survives_a_migration_and_disappears_at_stop() {
    let c = cluster("cpu: x86-64-v2-AES");
    let _qemu = FakeQemu::start(
        &c,
        100,
        "qemu64,+aes,enforce,+pni,+popcnt,+sse4.1,+sse4.2,+ssse3",
    );
    hook(&c, "pve1", "post-start", None).code(0);
    hook(&c, "pve2", "post-start", Some("pve1")).code(0);
    let moved = record(&c, "pve2").unwrap();
    assert_eq!(moved["cold_start_node"], "pve1");
    assert_eq!(
        moved["cold_started_at"],
        record(&c, "pve1").unwrap()["cold_started_at"]
    );
    hook(&c, "pve2", "post-stop", None).code(0);
    assert!(record(&c, "pve2").is_none());
    // pre-stop and a second post-stop change nothing and fail nothing.
    hook(&c, "pve2", "pre-stop", None).code(0);
    hook(&c, "pve2", "post-stop", None).code(0);
}

#[test]
fn recording_under_faults_never_changes_the_starts_outcome() {
    let c = cluster("cpu: kvm64");
    let _qemu = FakeQemu::start(&c, 100, "kvm64,enforce");
    // The record's directory cannot be made (a file is in its place).
    std::fs::write(c.pve().join("nodes/pve1/pve-cpuguard-running"), "x").unwrap();
    hook(&c, "pve1", "post-start", None)
        .code(0)
        .stderr_has("could not be recorded");
    // A PID file that is a FIFO (a read that would block forever).
    let c = cluster("cpu: kvm64");
    std::fs::create_dir_all(c.path("run")).unwrap();
    let fifo = c.path("run/100.pid");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    hook(&c, "pve1", "post-start", None)
        .code(0)
        .stderr_has("no running QEMU found");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // No QEMU at all: nothing recorded, and no earlier record stands.
    let c = cluster("cpu: kvm64");
    let dir = c.pve().join("nodes/pve1/pve-cpuguard-running");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("100.json"),
        r#"{"vmid":100,"cpu":"host","cold_start_node":"pve3","cold_started_at":1}"#,
    )
    .unwrap();
    hook(&c, "pve1", "post-start", None).code(0);
    assert!(record(&c, "pve1").is_none());
    // A record a node should never write is not used, and says so.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("100.json"), "{ not json").unwrap();
    hook(&c, "pve2", "pre-start", Some("pve1"))
        .code(0)
        .stderr_has("cannot be used");
}

#[test]
fn audit_and_metrics_show_the_cpu_a_guest_runs_with() {
    let c = cluster("cpu: kvm64");
    let _qemu = FakeQemu::start(&c, 100, "Cascadelake-Server-v2,enforce");
    hook(&c, "pve2", "post-start", None).code(0);
    // The VM's config is on pve1 in this fixture; move the record there, as
    // the node it runs on keeps it.
    let from = c.pve().join("nodes/pve2/pve-cpuguard-running");
    let to = c.pve().join("nodes/pve1/pve-cpuguard-running");
    std::fs::rename(&from, &to).unwrap();
    let v = c.on("pve1", &["audit", "-o", "json"]).run().json();
    let vm = &crate::harness::audit_json::vms(&v)[0];
    assert_eq!(vm["running_cpu"], "Cascadelake-Server-v2,enforce");
    assert_eq!(vm["cold_start_node"], "pve2");
    assert_eq!(vm["running_cpu_differs"], true);
    assert_eq!(v["summary"]["running_cpu_differs"], 1);
    // Live answers judge the running CPU: Skylake-SP lacks what it has...
    let refused = crate::harness::audit_json::nodes(&vm["live_migration"]["refused"]);
    assert!(refused.iter().any(|n| n == "pve3"), "{refused:?}");
    // ...while a start anywhere Intel is fine (the config is kvm64).
    assert!(vm["start"]["allowed"].to_string().contains("pve3"), "{vm}");
    c.on("pve1", &["audit", "--all"])
        .run()
        .stdout_has("Running with another CPU than their configuration gives (1):")
        .stdout_has("cold-started on pve2");
    c.on("pve1", &["metrics"])
        .run()
        .stdout_has("pve_cpuguard_vms_running_cpu_differs 1");
}
