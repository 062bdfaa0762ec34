//! `baseline --custom-model NAME` end to end: fixture clusters (an
//! `/etc/pve` tree, a cache from real /proc/cpuinfo samples), and `pvesh`
//! replaced at the exec boundary by a script that records its exact argv
//! and, for `create`, appends the section to cpu-models.conf as Proxmox VE
//! would. One table of clusters (accepted everywhere, refused on a weaker
//! node, mixed vendors), then --dry-run, --apply and its idempotency, a
//! model of that name that differs, and `plan` once the model is there.

use crate::harness::cluster::{script, Cluster};
use crate::harness::exec::{argv, Recorder};
use crate::harness::{self, Done};
use pve_cpuguard::cpu::custom_models::CustomModels;

const SKYLAKE: &str = "hwloc-xeon-silver-4108-skylake-sp";
const CASCADE: &str = "hwloc-xeon-gold-6230-cascadelake";
const HASWELL: &str = "archspec-linux-rhel7-haswell";
const SANDY: &str = "hwloc-xeon-e5-2680-sandybridge-ep";
/// An Intel CPU that shows no `vmx`: KVM is off there (a BIOS setting).
const NO_KVM: &str = "hwloc-qemu-guest-qemu64";
const ZEN3: &str = "archspec-linux-ubuntu20.04-zen3";

/// What the fake `pvesh create` does: append the section it was asked for
/// (cputype, reported-model and flags are arguments 4, 6 and 8).
const PVESH_CREATE: &str = r#"[ "$1" = create ] || exit 2
[ -n "$PVESH_FAIL" ] && { echo "No 'create' handler defined for '$2'" >&2; exit 255; }
printf '\ncpu-model: %s\n\tflags %s\n\treported-model %s\n' "${4#custom-}" "$8" "$6" \
    >> "$PVE_CPUGUARD_PVE_DIR/virtual-guest/cpu-models.conf"
"#;

/// An administrator's model, which nothing here may change.
const OTHER: &str =
    "cpu-model: avx\n\tflags +avx;+avx2\n\tphys-bits host\n\treported-model kvm64\n";

/// pve1 Skylake-SP, pve2 Cascade Lake, pve3 Haswell; VMs 100 x86-64-v4
/// (pve1), 101 x86-64-v3 (pve2); cpu-models.conf with another model.
fn intel() -> Cluster {
    let mut c = Cluster::new(&[("pve1", SKYLAKE), ("pve2", CASCADE), ("pve3", HASWELL)]);
    c.vm(100, "pve1", "cpu: x86-64-v4\n")
        .vm(101, "pve2", "cpu: x86-64-v3\n");
    c.cpu_models(OTHER);
    c
}

fn pvesh(c: &Cluster) -> Recorder {
    Recorder::new(c.dir.path(), "pvesh", PVESH_CREATE)
}

fn baseline(c: &Cluster, p: &Recorder, args: &[&str]) -> harness::Run {
    let mut all = vec!["baseline", "--custom-model", "evc"];
    all.extend_from_slice(args);
    c.on("pve1", &all).env("PVE_CPUGUARD_PVESH", &p.program)
}

fn models(c: &Cluster) -> (String, CustomModels) {
    let path = c.pve().join("virtual-guest/cpu-models.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    let m = pve_cpuguard::pve::custom_models::parse(&text, &path).unwrap();
    (text, m)
}

/// The argv `--apply` must run for the model in `j` (baseline's JSON).
fn expected_argv(j: &serde_json::Value) -> Vec<String> {
    let m = &j["custom_model"];
    let mut a = argv(&[
        "create",
        "/cluster/qemu/custom-cpu-models",
        "--cputype",
        "custom-evc",
        "--reported-model",
        m["reported_model"].as_str().unwrap(),
    ]);
    let flags = m["flags"].as_str().unwrap();
    if !flags.is_empty() {
        a.extend(argv(&["--flags", flags]));
    }
    a
}

/// Each cluster: whether the model is built and accepted, the exit code,
/// the nodes refusing a start, and lines of the text.
#[test]
fn table_of_clusters() {
    struct Row {
        what: &'static str,
        nodes: &'static [(&'static str, &'static str)],
        code: i32,
        refusing: &'static [&'static str],
        text: &'static [&'static str],
    }
    let rows = [
        Row {
            what: "three Intel generations",
            nodes: &[("pve1", SKYLAKE), ("pve2", CASCADE), ("pve3", HASWELL)],
            code: 0,
            refusing: &[],
            text: &[
                "Custom model custom-evc: Haswell",
                "\ncpu-model: evc\n\tflags +",
                "starts on every node (pve1, pve2, pve3) and live-migrates between any two",
                "invtsc: QEMU refuses to live-migrate a guest that has it",
                "vmx: nested virtualization, a per-VM choice",
                "ran:",
                "pve-cpuguard plan --set-cpu-all custom-evc",
            ],
        },
        Row {
            what: "a node without KVM",
            nodes: &[("pve1", SKYLAKE), ("pve2", HASWELL), ("pve3", NO_KVM)],
            code: 1,
            refusing: &["pve3"],
            text: &[
                "(no named model fits every node)",
                "Refused by the verdict as `cpu: custom-evc`:",
                "pve3: cannot start it (nor receive it live): the node has no usable KVM",
                "Not added: the verdict refuses it on some node (above).",
            ],
        },
        Row {
            what: "two vendors",
            nodes: &[("pve1", SKYLAKE), ("pve2", ZEN3)],
            code: 1,
            refusing: &[],
            text: &["Custom model custom-evc: not built: the nodes have different CPU vendors"],
        },
    ];
    for row in rows {
        let mut c = Cluster::new(row.nodes);
        c.vm(100, "pve1", "cpu: kvm64\n");
        let p = pvesh(&c);
        let out = baseline(&c, &p, &["--apply"]).run();
        assert_eq!(out.code, row.code, "{}: {out:?}", row.what);
        for t in row.text {
            out.stdout_has(t);
        }
        let j = baseline(&c, &p, &["-o", "json"])
            .run()
            .code(row.code)
            .json();
        let m = &j["custom_model"];
        let refusing: Vec<&str> = m["start"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter(|v| v["verdict"] != "compatible")
                    .map(|v| v["node"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(refusing, row.refusing, "{}", row.what);
        if row.code == 0 {
            // The model reports the cluster's best named model.
            assert_eq!(m["reported_model"], j["model"], "{}", row.what);
            assert_eq!(p.calls(), [expected_argv(&j)], "{}", row.what);
        } else {
            assert!(p.calls().is_empty(), "{}: {:?}", row.what, p.calls());
        }
    }
}

/// --dry-run runs nothing and prints the command; that text, given to a
/// shell as it is, runs exactly the argv --apply runs.
#[test]
fn dry_run_prints_the_exact_command() {
    let c = intel();
    let p = pvesh(&c);
    let j = baseline(&c, &p, &["-o", "json"]).run().code(0).json();
    let out = baseline(&c, &p, &["--dry-run"]).run().code(0);
    out.stdout_has("dry run: nothing is changed; --apply would run:");
    assert!(p.calls().is_empty());
    let start = out.stdout.find(&p.program.display().to_string()).unwrap();
    let end = out.stdout[start..].find("\nWhat moving").unwrap() + start;
    let command = &out.stdout[start..=end];
    for l in command.lines() {
        assert!(l.chars().count() <= 100, "{l}");
    }
    let sh = Done::of({
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", command]).envs(c.env(Some("pve1")));
        cmd
    });
    assert_eq!(sh.code, 0, "{sh:?}");
    assert_eq!(p.calls(), [expected_argv(&j)]);
}

/// --apply adds the model once, next to the administrator's model, which
/// stays byte for byte; a second --apply sees the same model and runs
/// nothing; `plan --set-cpu-all custom-evc` then judges every VM on it.
#[test]
fn apply_adds_it_once_and_plan_uses_it() {
    let c = intel();
    let p = pvesh(&c);
    let out = baseline(&c, &p, &["--apply"]).run().code(0);
    out.stdout_has("ran:").stdout_has("custom-evc is in ");
    assert_eq!(p.calls().len(), 1);
    let (text, m) = models(&c);
    assert!(text.starts_with(OTHER), "{text}");
    assert!(m.get("custom-evc").is_some());
    let again = baseline(&c, &p, &["--apply"]).run().code(0);
    again.stdout_has("the same model: nothing to do");
    assert_eq!(p.calls().len(), 1, "no second call");
    assert_eq!(models(&c).0, text);

    let plan = c
        .on(
            "pve1",
            &["plan", "--set-cpu-all", "custom-evc", "-o", "json"],
        )
        .run()
        .code(0)
        .json();
    for v in plan["vms"].as_array().unwrap() {
        assert_eq!(v["cpu"]["after"], "custom-evc", "{v}");
        assert_eq!(v["movable"]["after"], true, "{v}");
    }
    // VM 100 (x86-64-v4) gains the Haswell.
    let vm100 = &plan["vms"].as_array().unwrap()[0];
    assert_eq!(vm100["start"]["gained"], serde_json::json!(["pve3"]));
}

/// Without quorum /etc/pve is read-only: `--apply` says so and calls
/// nothing (pvesh would fail without saying why); with quorum back, the
/// same command adds the model.
#[test]
fn apply_without_quorum_calls_nothing_and_says_why() {
    let c = intel();
    let p = pvesh(&c);
    let nodes = [
        ("pve1", "10.0.0.1", true),
        ("pve2", "10.0.0.2", false),
        ("pve3", "10.0.0.3", false),
    ];
    c.write_members("pve1", false, &nodes);
    let before = models(&c).0;
    baseline(&c, &p, &["--apply"])
        .run()
        .code(1)
        .stdout_has("not quorate")
        .stdout_has("pvecm status");
    assert!(p.calls().is_empty(), "{:?}", p.calls());
    assert_eq!(models(&c).0, before);
    c.write_members("pve1", true, &nodes);
    baseline(&c, &p, &["--apply"]).run().code(0);
    assert_eq!(p.calls().len(), 1);
}

/// A node of the cluster the cache has never seen (it joined after the
/// last scan) is a node without data: no model is added without it, and
/// the check says it covered the nodes with data only.
#[test]
fn a_node_the_cache_never_saw_keeps_the_model_out() {
    let c = intel();
    let now = pve_cpuguard::cache::now();
    c.write_records([
        Cluster::record("pve1", "10.0.0.1", SKYLAKE, now),
        Cluster::record("pve2", "10.0.0.2", CASCADE, now),
    ]);
    let p = pvesh(&c);
    let out = baseline(&c, &p, &["--apply"]).run().code(1);
    out.stdout_has("starts on every node with data (pve1, pve2)")
        .stdout_has("(pve3: no data)")
        .stdout_lacks("Near miss");
    assert!(p.calls().is_empty(), "{:?}", p.calls());
}

/// A model of that name that differs is never changed: no call, exit 1,
/// the differences and how to go on. Here it was added before a weaker
/// node joined: the verdict (through `audit`) refuses a VM on it there.
#[test]
fn a_weaker_node_refuses_the_old_model_which_is_never_changed() {
    let mut c = Cluster::new(&[("pve1", SKYLAKE), ("pve2", HASWELL)]);
    c.vm(100, "pve1", "cpu: custom-evc\n");
    let p = pvesh(&c);
    baseline(&c, &p, &["--apply"]).run().code(0);
    p.clear();
    let (before, _) = models(&c);
    // pve3, a Sandy Bridge, joins.
    c.samples.insert("pve3".into(), SANDY.into());
    std::fs::create_dir_all(c.pve().join("nodes/pve3/qemu-server")).unwrap();
    c.write_cache(&["pve1".into(), "pve2".into(), "pve3".into()]);
    let out = baseline(&c, &p, &["--apply"]).run().code(1);
    out.stdout_has("already has a custom-evc that differs (")
        .stdout_has("flags only there: +")
        .stdout_has("pve-cpuguard baseline --custom-model evc2 --apply");
    assert!(p.calls().is_empty());
    assert_eq!(models(&c).0, before);
    let audit = c.on("pve1", &["audit", "-o", "json"]).run().json();
    let vms = crate::harness::audit_json::vms(&audit);
    let vm = &vms[0];
    let refused = crate::harness::audit_json::nodes(&vm["start"]["refused"]);
    assert_eq!(refused, ["pve3"], "{vm}");
    assert_eq!(vm["start"]["allowed"], serde_json::json!(["pve1", "pve2"]));
}

#[test]
fn a_failing_pvesh_stale_data_and_bad_names() {
    let c = intel();
    let p = pvesh(&c);
    let out = baseline(&c, &p, &["--apply"])
        .env("PVESH_FAIL", "1")
        .run()
        .code(1);
    out.stdout_has("error: `")
        .stdout_has("No 'create' handler defined")
        .stdout_has("Proxmox VE before 9.2");
    assert!(models(&c).1.get("custom-evc").is_none());
    // Stale data: printed, not applied. pve3, left out of the cache, is a
    // node without data (it is in the cluster file system), not ignored.
    let old = pve_cpuguard::cache::now() - 3 * 86_400;
    c.write_records([
        Cluster::record("pve1", "10.0.0.1", SKYLAKE, old),
        Cluster::record("pve2", "10.0.0.2", HASWELL, old),
    ]);
    p.clear();
    let out = baseline(&c, &p, &["--apply"]).run().code(1);
    out.stdout_has(
        "Not added: not every node has fresh data of what KVM gives (pve1: stale, pve2: stale, \
         pve3: no data)",
    );
    assert!(p.calls().is_empty());
    for (name, says) in [("9x", "invalid custom model name '9x'"), ("a.b", "invalid")] {
        c.on("pve1", &["baseline", "--custom-model", name])
            .run()
            .code(2)
            .stderr_has(says);
    }
    c.on("pve1", &["baseline", "--apply"]).run().code(2);
}

/// The fake `pvesh` is a real script: it must not hide a shell error.
#[test]
fn the_fake_pvesh_appends_what_it_is_given() {
    let c = intel();
    let p = pvesh(&c);
    let s = c.path("call.sh");
    script(
        &s,
        &format!(
            "#!/bin/sh\nexec '{}' create /x --cputype custom-t --reported-model kvm64 --flags '+a;-b'\n",
            p.program.display()
        ),
    );
    let done = Done::of({
        let mut cmd = std::process::Command::new(&s);
        cmd.envs(c.env(None));
        cmd
    });
    assert_eq!(done.code, 0, "{done:?}");
    let (_, m) = models(&c);
    assert_eq!(m.get("t").unwrap().flags.len(), 2);
}

/// A node judged from QEMU's emulator (`scan --probe tcg`) gives TCG's
/// flags, not what KVM gives its guests: the model is shown, not added.
#[test]
fn a_node_known_only_from_qemus_tcg_answer_is_not_a_base_to_add() {
    use pve_cpuguard::reach::kvm_probe::{self, Accel};
    let c = Cluster::new(&[("pve1", ZEN3)]);
    let mut info =
        pve_cpuguard::reach::local::cpuinfo(&harness::data("qmp/pvm-epyc-cpuinfo.txt")).unwrap();
    // A Proxmox VE node with KVM shows it (the recording machine did not).
    info.flags.insert("svm");
    let bytes = std::fs::read(harness::data("qmp/qemu-7.2-pvm-epyc-tcg.jsonl")).unwrap();
    let view = kvm_probe::interpret(&bytes, b"", Accel::Tcg, "recorded").unwrap();
    let now = pve_cpuguard::cache::now();
    let rec = pve_cpuguard::cache::NodeRecord::new("pve1", "10.0.0.1", &info, None, now)
        .with_kvm(Some(Ok(view)));
    c.write_records([rec]);
    let p = pvesh(&c);
    let out = baseline(&c, &p, &["--apply"]).run().code(1);
    out.stdout_has("Custom model custom-evc: ")
        .stdout_lacks("under KVM")
        .stdout_has("warning: pve1 judged from QEMU's emulator (TCG)")
        .stdout_has("(pve1: QEMU's TCG answer, not KVM's)");
    assert!(p.calls().is_empty());
}
