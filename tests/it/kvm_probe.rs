//! The KVM probe against a real `qemu-system-x86_64` (Debian package
//! `qemu-system-x86`, installed by `.ci/run`), and against small fake
//! "QEMU" scripts that hang, babble or fail.
//!
//! The real-QEMU tests run under KVM where /dev/kvm works and fall back to
//! TCG otherwise, decided at run time by trying; both branches assert. Every
//! answer is compared with QEMU's own, fetched independently by the test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use pve_cpuguard::cpu::flags;
use pve_cpuguard::reach::kvm_probe::{self, Accel, ProbeError, ProbeOptions, QemuReport};

use crate::harness::Run;

/// Generous: the machine running the tests may be busy.
const REAL_TIMEOUT: Duration = Duration::from_secs(60);

fn real_qemu() -> PathBuf {
    kvm_probe::find_qemu(None).unwrap_or_else(|e| {
        panic!("these tests need a real QEMU (apt-get install qemu-system-x86; .ci/run does): {e}")
    })
}

/// Probes the real QEMU under KVM if that works here, else under TCG.
fn probe_real() -> QemuReport {
    let opts = ProbeOptions {
        timeout: REAL_TIMEOUT,
        ..ProbeOptions::new(Accel::Kvm)
    };
    match kvm_probe::probe_local(&opts) {
        Ok(v) => {
            assert_eq!(v.accel, Accel::Kvm);
            // Under KVM QEMU expands the real host CPU.
            assert!(!v.host.vendor.is_empty(), "{:?}", v.host);
            assert!(v.models.contains_key("host"), "host model needs KVM");
            v
        }
        Err(ProbeError::NoKvm { detail }) => {
            eprintln!("KVM not usable here ({detail}); using TCG");
            let v = kvm_probe::probe_local(&ProbeOptions {
                accel: Accel::Tcg,
                ..opts
            })
            .unwrap();
            assert_eq!(v.accel, Accel::Tcg);
            v
        }
        Err(e) => panic!("probing the real QEMU failed: {e}"),
    }
}

/// The real QEMU (for at most 60 s) with `args` and QMP on stdio, fed
/// `input`.
fn qemu_qmp(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(real_qemu())
        .args(args)
        .args(["-display", "none", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// QEMU's answers fetched without the library: raw QMP commands written by
/// hand, the replies taken in order.
fn raw_qmp(accel: Accel) -> Vec<Value> {
    let model = if accel == Accel::Kvm { "host" } else { "max" };
    let input = format!(
        "{{\"execute\": \"qmp_capabilities\"}}\n\
         {{\"execute\": \"query-version\"}}\n\
         {{\"execute\": \"query-cpu-model-expansion\", \"arguments\": {{\"type\": \"full\", \"model\": {{\"name\": \"{model}\"}}}}}}\n\
         {{\"execute\": \"query-cpu-definitions\"}}\n\
         {{\"execute\": \"quit\"}}\n"
    );
    let out = qemu_qmp(
        &["-machine", "none", "-accel", accel.as_str(), "-nodefaults"],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v.get("return").cloned())
        .collect()
}

#[test]
fn real_qemu_answers_parse_to_exactly_what_qemu_said() {
    let view = probe_real();
    let raw = raw_qmp(view.accel);
    assert_eq!(raw.len(), 5, "five commands, five answers");

    let q = &raw[1]["qemu"];
    let version = format!("{}.{}.{}", q["major"], q["minor"], q["micro"]);
    assert_eq!(view.qemu_version, version);
    let banner = Command::new(real_qemu()).arg("--version").output().unwrap();
    let banner = String::from_utf8_lossy(&banner.stdout);
    assert!(banner.contains(&format!("version {version}")), "{banner}");

    // Host features: every true property QEMU calls a CPU feature (under any
    // spelling pve-cpuguard knows), in canonical spelling; nothing else.
    let props = raw[2]["model"]["props"].as_object().unwrap();
    let truthy: BTreeSet<&str> = props
        .iter()
        .filter(|(_, v)| v == &&Value::Bool(true))
        .map(|(k, _)| k.as_str())
        .collect();
    let want: BTreeSet<String> = truthy
        .iter()
        .filter_map(|k| flags::canonical(k))
        .map(str::to_string)
        .collect();
    assert_eq!(view.host_features, want);
    assert!(view.host_features.contains("lm") && view.host_features.contains("fpu"));
    for f in &view.host_features {
        assert!(
            truthy.contains(f.as_str())
                || truthy
                    .iter()
                    .any(|k| flags::canonical(k) == Some(f.as_str())),
            "{f} is not true in QEMU's answer"
        );
    }
    // Properties that are no CPU feature stay out.
    for not_a_feature in [
        "kvm",
        "pmu",
        "migratable",
        "check",
        "enforce",
        "host-phys-bits",
    ] {
        assert!(!view.host_features.contains(not_a_feature));
    }
    assert_eq!(view.host.vendor, props["vendor"].as_str().unwrap());

    // Models: every definition, with its unavailable features canonicalised.
    let defs = raw[3].as_array().unwrap();
    assert_eq!(view.models.len(), defs.len());
    let mut want_models = BTreeMap::new();
    for d in defs {
        let mut u: Vec<String> = d["unavailable-features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let f = f.as_str().unwrap();
                flags::canonical(f).unwrap_or(f).to_string()
            })
            .collect();
        u.sort();
        u.dedup();
        want_models.insert(d["name"].as_str().unwrap().to_string(), u);
    }
    assert_eq!(view.models, want_models);

    // And the model list matches `-cpu help`, a third source.
    let help = Command::new(real_qemu())
        .args(["-cpu", "help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let listed: BTreeSet<&str> = help
        .lines()
        .take_while(|l| !l.starts_with("Recognized"))
        .filter_map(|l| l.strip_prefix("x86 "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(listed.len() > 50, "{help}");
    for name in &listed {
        assert!(view.models.contains_key(*name), "-cpu help lists {name}");
    }
}

/// `unavailable-features` means exactly what `enforce` refuses: start a real
/// (paused) guest with kvm64 and check QEMU agrees with the view.
#[test]
fn unavailable_features_predict_enforce() {
    let view = probe_real();
    let missing = &view.models["kvm64"];
    let out = qemu_qmp(
        &[
            "-machine",
            "pc",
            "-accel",
            view.accel.as_str(),
            "-cpu",
            "kvm64,enforce",
            "-m",
            "64",
            "-nodefaults",
            "-S",
        ],
        b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"quit\"}\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if missing.is_empty() {
        assert!(out.status.success(), "kvm64 should start: {stderr}");
    } else {
        assert!(
            !out.status.success(),
            "kvm64 should be refused: {missing:?}"
        );
        for f in missing {
            let linux = flags::linux_name(f).unwrap_or(f);
            assert!(
                stderr.contains(&format!(".{f} [")) || stderr.contains(&format!(".{linux} [")),
                "QEMU did not name {f}: {stderr}"
            );
        }
    }
}

#[test]
fn remote_command_gives_the_same_view() {
    let local = probe_real();
    let cmd = kvm_probe::remote_command(local.accel, 60);
    let out = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
    let remote = kvm_probe::interpret(&out.stdout, &out.stderr, local.accel, "sh").unwrap();
    // QEMU's answer is the same; only the local probe knows which binary
    // gave it (the record check of src/cache/current.rs uses that).
    let binary = local
        .binary
        .clone()
        .expect("the local probe names its binary");
    assert!(
        binary.contains("qemu") || binary.contains("kvm"),
        "{binary}"
    );
    assert_eq!(remote.binary, None);
    let local = QemuReport {
        binary: None,
        ..local
    };
    assert_eq!(remote, local);
}

#[test]
fn inspect_probe_shows_both_views() {
    let view = probe_real();
    let accel = view.accel.as_str();
    let done = Run::new([
        "inspect",
        "--probe",
        accel,
        "--probe-timeout",
        "60",
        "-o",
        "json",
    ])
    .run()
    .code(0);
    let j = done.json();
    assert_eq!(j["kvm"]["qemu_version"], view.qemu_version.as_str());
    assert_eq!(j["kvm"]["accel"], accel);
    assert_eq!(
        j["kvm"]["models"]["kvm64"],
        serde_json::json!(view.models["kvm64"])
    );
    let types = j["cpu_types"].as_array().unwrap();
    let kvm64 = types.iter().find(|t| t["name"] == "kvm64").unwrap();
    assert_eq!(
        kvm64["kvm"]["verdict"] == "compatible",
        view.models["kvm64"].is_empty(),
        "{kvm64}"
    );
    assert!(kvm64["kvm"]["checked_with"]
        .as_str()
        .unwrap()
        .contains(&view.qemu_version));
    // The cpuinfo view is still there, unchanged in shape.
    assert!(kvm64["verdict"].is_string());

    let label = view.accel.label();
    let done = Run::new(["inspect", "--probe", accel, "--probe-timeout", "60"])
        .run()
        .code(0);
    done.stdout_has(&format!("{label} view:   QEMU {}", view.qemu_version))
        .stdout_has("Disagree:");
    // Long flag lists are wrapped: every line fits 100 columns.
    for l in done.stdout.lines() {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    assert!(done.stdout.starts_with("Summary:    "), "{}", done.stdout);
}

// --- fake QEMU binaries -------------------------------------------------

/// Writes an executable shell script.
fn fake(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Probes `qemu` (TCG, so /dev/kvm does not matter), retrying the rare
/// ETXTBSY of executing a script another test thread's fork still holds.
fn probe_fake(qemu: &Path, timeout: Duration) -> Result<QemuReport, ProbeError> {
    let opts = ProbeOptions {
        qemu: Some(qemu.to_path_buf()),
        timeout,
        ..ProbeOptions::new(Accel::Tcg)
    };
    for _ in 0..20 {
        match kvm_probe::probe_local(&opts) {
            Err(ProbeError::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
    panic!("{} stayed busy", qemu.display())
}

fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // Killed and waiting for its new parent to reap it.
        Ok(stat) => stat.split_whitespace().nth(2) == Some("Z"),
    }
}

/// A fake QEMU that starts `sleep 300` in the background, then runs
/// `then`: the probe (1 s) must fail, and the `sleep` (the `what`) must be
/// gone within 5 s. Returns the error and how long the
/// probe took.
fn probe_leaving(then: &str, what: &str) -> (ProbeError, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleep.pid");
    let qemu = fake(
        dir.path(),
        "qemu",
        &format!("sleep 300 &\necho $! > '{}'\n{then}", pidfile.display()),
    );
    let t = Instant::now();
    let e = probe_fake(&qemu, Duration::from_secs(1)).unwrap_err();
    let took = t.elapsed();
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let t = Instant::now();
    while !gone(pid) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(pid), "the {what} {pid} survived");
    (e, took)
}

#[test]
fn hanging_qemu_is_killed_with_its_children_within_the_timeout() {
    let (e, took) = probe_leaving("wait", "grandchild");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(e
        .to_string()
        .contains("did not answer within 1.0 s and was killed"));
}

#[test]
fn qemu_exiting_but_leaving_a_child_on_its_pipes_is_cleaned_up() {
    // The orphan holds the pipes open, but QEMU itself has exited: its
    // (missing) answer is judged at once, not after the timeout (issue 21).
    let (e, took) = probe_leaving("exit 0", "orphan");
    assert!(matches!(e, ProbeError::Protocol { .. }), "{e}");
    assert!(took < Duration::from_millis(900), "{took:?}");
}

#[test]
fn greeting_then_silence_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = fake(
        dir.path(),
        "qemu",
        "echo '{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}}}'\nexec sleep 300",
    );
    let t = Instant::now();
    let e = probe_fake(&qemu, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, ProbeError::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn garbage_output_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = fake(
        dir.path(),
        "qemu",
        "echo 'Segmentation fault (core dumped)'\necho 'oops' >&2\nexit 139",
    );
    let e = probe_fake(&qemu, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, ProbeError::Protocol { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("not a JSON object: Segmentation fault"),
        "{msg}"
    );
    assert!(msg.contains("note: QEMU's stderr: oops"), "{msg}");
}

#[test]
fn endless_output_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = fake(dir.path(), "qemu", "exec yes garbage");
    let t = Instant::now();
    let e = probe_fake(&qemu, Duration::from_secs(30)).unwrap_err();
    assert!(matches!(e, ProbeError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("more than 8388608 bytes"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn qemu_that_cannot_use_kvm_is_no_kvm() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = fake(
        dir.path(),
        "qemu",
        "echo 'Could not access KVM kernel module: Permission denied' >&2\n\
         echo 'qemu-system-x86_64: failed to initialize kvm: Permission denied' >&2\nexit 1",
    );
    let opts = ProbeOptions {
        qemu: Some(qemu),
        // Stands in for a device that opens: QEMU itself then refuses.
        kvm_device: PathBuf::from("/dev/null"),
        ..ProbeOptions::new(Accel::Kvm)
    };
    let mut result = kvm_probe::probe_local(&opts);
    for _ in 0..20 {
        if !matches!(&result, Err(ProbeError::Spawn { .. })) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        result = kvm_probe::probe_local(&opts);
    }
    let e = result.unwrap_err();
    assert!(matches!(e, ProbeError::NoKvm { .. }), "{e}");
    assert!(e.to_string().contains("Permission denied"));
    assert!(e.is_setup());
}

#[test]
fn missing_kvm_device_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ProbeOptions {
        qemu: Some(fake(dir.path(), "qemu", "exit 0")),
        kvm_device: dir.path().join("kvm"),
        ..ProbeOptions::new(Accel::Kvm)
    };
    let e = kvm_probe::probe_local(&opts).unwrap_err();
    assert!(matches!(e, ProbeError::NoKvm { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("cannot open {}", dir.path().join("kvm").display())));
    assert!(msg.contains("load kvm_intel or kvm_amd"), "{msg}");
}

#[test]
fn missing_binary_says_what_to_install() {
    let e = kvm_probe::probe_local(&ProbeOptions {
        qemu: Some(PathBuf::from("/nonexistent/qemu-system-x86_64")),
        ..ProbeOptions::new(Accel::Tcg)
    })
    .unwrap_err();
    assert!(matches!(e, ProbeError::NoQemu { .. }), "{e}");
    assert!(e
        .to_string()
        .contains("install the Debian package qemu-system-x86"));

    Run::new(["inspect", "--probe", "kvm"])
        .env("PVE_CPUGUARD_QEMU", "/nonexistent/qemu-system-x86_64")
        .run()
        .code(2)
        .stderr_has("/nonexistent/qemu-system-x86_64 does not exist")
        .stderr_has("qemu-system-x86");

    // Nothing in PATH either.
    let empty = tempfile::tempdir().unwrap();
    Run::new(["inspect", "--probe", "tcg"])
        .env("PATH", empty.path())
        .run()
        .code(2)
        .stderr_has("neither qemu-system-x86_64 nor kvm found in PATH");
}

#[test]
fn cli_hang_ends_with_exit_3_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = fake(dir.path(), "qemu", "exec sleep 300");
    let t = Instant::now();
    let mut done = Run::new(["inspect", "--probe", "tcg", "--probe-timeout", "1"])
        .env("PVE_CPUGUARD_QEMU", &qemu)
        .run();
    for _ in 0..20 {
        if !done.stderr.contains("Text file busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        done = Run::new(["inspect", "--probe", "tcg", "--probe-timeout", "1"])
            .env("PVE_CPUGUARD_QEMU", &qemu)
            .run();
    }
    assert!(t.elapsed() < Duration::from_secs(8));
    done.code(3).stderr_has("did not answer within 1.0 s");
}
