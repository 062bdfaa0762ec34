//! The Debian package as built by `packaging/build-deb.sh` (CI runs it
//! before the tests): its files and modes, conffiles, maintainer scripts,
//! and that the packaged binary runs.
//!
//! The package is `$PVE_CPUGUARD_DEB`, else the newest
//! `target/debian/pve-cpuguard_*.deb`. Without one, the test fails when
//! `PVE_CPUGUARD_REQUIRE_DEB` is set (CI) and is skipped with a message
//! otherwise (a developer's `cargo test` does not build release packages).

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

fn deb() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PVE_CPUGUARD_DEB") {
        return Some(PathBuf::from(p));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pve-cpuguard_") && n.ends_with(".deb"))
        })
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop()
}

fn dpkg_deb(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .output()
        .expect("dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_debian_package() {
    let Some(deb) = deb() else {
        assert!(
            std::env::var_os("PVE_CPUGUARD_REQUIRE_DEB").is_none(),
            "no package in target/debian: run packaging/build-deb.sh"
        );
        eprintln!("skipped: no .deb (build one with packaging/build-deb.sh)");
        return;
    };
    let d = deb.as_os_str();

    // Files, with their modes.
    let listing = dpkg_deb(&["-c".as_ref(), d]);
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let mode = l.split_whitespace().next()?;
            let path = l.split_whitespace().last()?;
            Some((mode, path.trim_start_matches('.')))
        })
        .collect();
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
    };
    assert_eq!(mode_of("/usr/bin/pve-cpuguard"), "-rwxr-xr-x");
    assert_eq!(mode_of("/usr/bin/pve-cpuguard-hook"), "-rwxr-xr-x");
    assert_eq!(
        mode_of("/usr/share/pve-cpuguard/pve-cpuguard-hook"),
        "-rwxr-xr-x"
    );
    for f in [
        "/etc/pve-cpuguard/pve-cpuguard.conf",
        "/usr/lib/systemd/system/pve-cpuguard-refresh.service",
        "/usr/lib/systemd/system/pve-cpuguard-refresh.timer",
        "/usr/lib/systemd/system/pve-cpuguard-publish.service",
        "/usr/lib/systemd/system/pve-cpuguard-publish.path",
        "/usr/share/man/man1/pve-cpuguard.1.gz",
        "/usr/share/man/man1/pve-cpuguard-audit.1.gz",
        "/usr/share/man/man1/pve-cpuguard-attach.1.gz",
        "/usr/share/bash-completion/completions/pve-cpuguard",
        "/usr/share/zsh/vendor-completions/_pve-cpuguard",
        "/usr/share/fish/vendor_completions.d/pve-cpuguard.fish",
        "/usr/share/doc/pve-cpuguard/copyright",
    ] {
        assert_eq!(mode_of(f), "-rw-r--r--", "{f}");
    }
    // No hidden command in the manual.
    assert!(!listing.contains("pve-cpuguard-generate"), "{listing}");

    // Control data.
    let conffiles = dpkg_deb(&["--info".as_ref(), d, "conffiles".as_ref()]);
    assert_eq!(conffiles.trim(), "/etc/pve-cpuguard/pve-cpuguard.conf");
    let field = |f: &str| {
        dpkg_deb(&["--field".as_ref(), d, f.as_ref()])
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "pve-cpuguard");
    assert_eq!(field("Section"), "admin");
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));

    // Maintainer scripts: the timer is enabled and started, the cache
    // directory created, and removal says what to run first.
    let postinst = dpkg_deb(&["--info".as_ref(), d, "postinst".as_ref()]);
    assert!(
        postinst.contains("deb-systemd-helper enable pve-cpuguard-refresh.timer"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-invoke start pve-cpuguard-refresh.timer"),
        "{postinst}"
    );
    // This node's record: published at boot and after QEMU upgrades.
    for unit in ["pve-cpuguard-publish.service", "pve-cpuguard-publish.path"] {
        assert!(
            postinst.contains(&format!("deb-systemd-helper enable {unit}")),
            "{unit}: {postinst}"
        );
    }
    assert!(
        postinst.contains("deb-systemd-invoke start pve-cpuguard-publish.path"),
        "{postinst}"
    );
    assert!(
        postinst.contains("install -d -m 0755 /var/cache/pve-cpuguard /var/lib/pve-cpuguard"),
        "{postinst}"
    );
    assert!(
        !postinst.contains("cargo-deb's # Automatically"),
        "{postinst}"
    );
    let prerm = dpkg_deb(&["--info".as_ref(), d, "prerm".as_ref()]);
    assert!(prerm.contains("pve-cpuguard detach --all"), "{prerm}");
    let postrm = dpkg_deb(&["--info".as_ref(), d, "postrm".as_ref()]);
    assert!(
        !postrm.contains("snippets/"),
        "postrm must not touch snippets: {postrm}"
    );
    for script in [&postinst, &prerm, &postrm] {
        let out = Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The packaged files themselves.
    let root = tempfile::tempdir().unwrap();
    dpkg_deb(&["-x".as_ref(), d, root.path().as_os_str()]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read(root.path().join("etc/pve-cpuguard/pve-cpuguard.conf")).unwrap(),
        std::fs::read(manifest.join("packaging/pve-cpuguard.conf")).unwrap()
    );
    assert_eq!(
        std::fs::read(root.path().join("usr/share/pve-cpuguard/pve-cpuguard-hook")).unwrap(),
        std::fs::read(manifest.join("hooks/pve-cpuguard-hook")).unwrap()
    );
    let man = std::fs::read(root.path().join("usr/share/man/man1/pve-cpuguard.1.gz")).unwrap();
    assert_eq!(&man[..2], &[0x1f, 0x8b], "man page is gzip");
    let fish = std::fs::read_to_string(
        root.path()
            .join("usr/share/fish/vendor_completions.d/pve-cpuguard.fish"),
    )
    .unwrap();
    assert!(fish.contains("attach") && fish.contains("audit"), "{fish}");

    // The packaged binaries run.
    let hook = root.path().join("usr/bin/pve-cpuguard-hook");
    let out = Command::new(&hook).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pve-cpuguard-hook {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        !has_interpreter(&std::fs::read(&hook).unwrap()),
        "the packaged hook is linked statically (no dynamic loader on every VM start)"
    );
    packaged_hook_decides(&hook);
    let bin = root.path().join("usr/bin/pve-cpuguard");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pve-cpuguard {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(&bin)
        .args(["inspect", "--cpuinfo"])
        .arg(util::cpuinfo("hwloc-xeon-gold-6230-cascadelake"))
        .env_remove("PVE_CPUGUARD_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("x86-64-v4"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Whether an x86-64 ELF executable names a dynamic loader (`PT_INTERP`).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let phoff = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap())).unwrap();
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// The packaged hook, statically linked, still decides: it refuses an
/// incoming live migration the target cannot take and allows a start.
fn packaged_hook_decides(hook: &Path) {
    let mut c = util::cluster::Cluster::new(&[
        ("pve1", "hwloc-xeon-silver-4108-skylake-sp"),
        ("pve2", "archspec-linux-rhel7-haswell"),
    ]);
    c.vm(100, "pve1", "cpu: x86-64-v4\nmemory: 2048\nname: web\n");
    let run = |node: &str, migrated_from: &str| {
        Command::new(hook)
            .args(["100", "pre-start"])
            .env("PVE_MIGRATED_FROM", migrated_from)
            .envs(c.node_env(node))
            .output()
            .unwrap()
    };
    let refused = run("pve2", "pve1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("avx512f"), "{stderr}");
    let started = run("pve1", "");
    assert_eq!(
        started.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
}
