//! The refresh units pass `systemd-analyze verify` (run for real; the
//! test fails on any error or warning it prints).

use std::path::PathBuf;
use std::process::Command;

use crate::harness;

fn unit(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/systemd")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn setting<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .collect()
}

#[test]
fn refresh_units_verify() {
    let service = unit("pve-cpuguard-refresh.service");
    let timer = unit("pve-cpuguard-refresh.timer");
    // The unit runs the installed binary; verify checks that ExecStart
    // exists, so point a temporary copy at the binary this build made.
    assert_eq!(
        setting(&service, "ExecStart"),
        ["/usr/bin/pve-cpuguard scan"]
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = harness::binary();
    let bin = bin.to_str().unwrap();
    std::fs::write(
        dir.path().join("pve-cpuguard-refresh.service"),
        service.replace("/usr/bin/pve-cpuguard", bin),
    )
    .unwrap();
    std::fs::write(dir.path().join("pve-cpuguard-refresh.timer"), &timer).unwrap();
    let publish = unit("pve-cpuguard-publish.service");
    let path = unit("pve-cpuguard-publish.path");
    std::fs::write(
        dir.path().join("pve-cpuguard-publish.service"),
        publish.replace("/usr/bin/pve-cpuguard", bin),
    )
    .unwrap();
    std::fs::write(dir.path().join("pve-cpuguard-publish.path"), &path).unwrap();
    // verify also looks up the Documentation= man pages: the ones this
    // build generates (as the package ships them), found through MANPATH.
    let man = dir.path().join("man");
    harness::Done::of(
        harness::command(bin)
            .args(["generate", "man"])
            .arg(man.join("man1")),
    )
    .code(0);
    std::fs::create_dir(man.join("man5")).unwrap();
    std::fs::rename(
        man.join("man1/pve-cpuguard.conf.5"),
        man.join("man5/pve-cpuguard.conf.5"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .env("MANPATH", &man)
        .env("HOME", dir.path())
        .arg("verify")
        .arg(dir.path().join("pve-cpuguard-refresh.service"))
        .arg(dir.path().join("pve-cpuguard-refresh.timer"))
        .arg(dir.path().join("pve-cpuguard-publish.service"))
        .arg(dir.path().join("pve-cpuguard-publish.path"))
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );

    // What the issue asks of them.
    assert_eq!(setting(&service, "Type"), ["oneshot"]);
    let after = setting(&service, "After").join(" ");
    assert!(after.contains("network-online.target") && after.contains("pve-cluster.service"));
    assert_eq!(
        setting(&service, "Wants"),
        ["network-online.target pve-cpuguard-publish.service"]
    );
    // Publish first, then gather; at boot; after a QEMU upgrade.
    assert!(after.contains("pve-cpuguard-publish.service"));
    assert_eq!(
        setting(&publish, "ExecStart"),
        ["/usr/bin/pve-cpuguard publish"]
    );
    assert_eq!(setting(&publish, "WantedBy"), ["multi-user.target"]);
    assert_eq!(setting(&publish, "DeviceAllow"), ["/dev/kvm rw"]);
    assert_eq!(setting(&publish, "ReadWritePaths"), ["/etc/pve"]);
    assert_eq!(
        setting(&path, "PathChanged"),
        ["/usr/bin/qemu-system-x86_64"]
    );
    assert_eq!(setting(&path, "Unit"), ["pve-cpuguard-publish.service"]);
    assert_eq!(setting(&timer, "OnCalendar"), ["hourly"]);
    assert_eq!(setting(&timer, "Persistent"), ["true"]);
    assert_eq!(setting(&timer, "RandomizedDelaySec").len(), 1);
    assert_eq!(setting(&timer, "OnBootSec").len(), 1);

    // The timer's scan can open /dev/kvm like a scan run by hand (issue 10):
    // no private /dev (it holds only pseudo devices), a closed device
    // policy that allows /dev/kvm, and the rest still hardened.
    assert_eq!(setting(&service, "PrivateDevices"), ["no"]);
    assert_eq!(setting(&service, "DevicePolicy"), ["closed"]);
    assert_eq!(setting(&service, "DeviceAllow"), ["/dev/kvm rw"]);
    for (key, want) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectKernelModules", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(setting(&service, key), [want], "{key}");
    }
}

#[test]
fn verify_really_catches_errors() {
    // Guards the test above against a systemd-analyze that accepts anything.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.service");
    std::fs::write(
        &bad,
        "[Service]\nType=oneshot\nExecStart=no-such-relative-binary\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success() || !out.stderr.is_empty());
}
