//! The Debian package as built by `packaging/build-deb.sh` (CI runs it
//! before the tests): its files and modes, conffiles, maintainer scripts,
//! what Debian's tools expect (lintian without an error or a warning,
//! DEP-5 copyright, changelog, md5sums, stripped binaries, its relation to
//! Proxmox VE's packages), and that the packaged binary runs.
//!
//! The package is `$PVE_CPUGUARD_DEB`, else the newest
//! `target/debian/pve-cpuguard_*.deb`. A developer's `cargo test` builds no
//! release package, so the test is ignored there, with the reason, rather
//! than reported `ok` without having looked at anything; `.ci/run` builds
//! the package and runs it (`cargo test --locked --test it -- --ignored`),
//! and then a missing package is a failure.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Done;

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
#[ignore = "needs the .deb: run packaging/build-deb.sh, then cargo test --test it -- --ignored"]
fn the_debian_package() {
    let deb = deb().expect("no package in target/debian: run packaging/build-deb.sh");
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
        "/usr/share/man/man5/pve-cpuguard.conf.5.gz",
        "/usr/share/bash-completion/completions/pve-cpuguard",
        "/usr/share/zsh/vendor-completions/_pve-cpuguard",
        "/usr/share/fish/vendor_completions.d/pve-cpuguard.fish",
        "/usr/share/doc/pve-cpuguard/copyright",
        "/usr/share/doc/pve-cpuguard/README.md",
    ] {
        assert_eq!(mode_of(f), "-rw-r--r--", "{f}");
    }
    // Every document the README links to (docs/*.md), where its relative
    // links find it (json.md among them: `--help` names it there).
    let docs = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
    let mut shipped = 0;
    for doc in docs.flatten() {
        let name = doc.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            let f = format!("/usr/share/doc/pve-cpuguard/docs/{name}");
            assert_eq!(mode_of(&f), "-rw-r--r--", "{f}");
            shipped += 1;
        }
    }
    assert!(shipped >= 5, "{shipped} documents in docs/");
    // A page for every command a person can run (tests/man.rs checks
    // their sections), none for the hidden one.
    for sub in [
        "inspect", "why-not", "hook", "migrate", "check", "scan", "status", "baseline", "audit",
        "attach", "detach", "metrics",
    ] {
        let page = format!("/usr/share/man/man1/pve-cpuguard-{sub}.1.gz");
        assert_eq!(mode_of(&page), "-rw-r--r--", "{page}");
    }
    assert!(!listing.contains("pve-cpuguard-generate"), "{listing}");
    assert!(!listing.contains("pve-cpuguard-help"), "{listing}");

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
    // An add-on to Proxmox VE, declared without depending on it: it still
    // installs on a plain Debian machine, where `inspect` is useful.
    assert_eq!(field("Enhances"), "qemu-server, pve-manager");
    for pve in ["qemu-server", "pve-manager", "proxmox"] {
        assert!(!field("Depends").contains(pve), "{}", field("Depends"));
        assert!(!field("Pre-Depends").contains(pve));
    }

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
        Done::of(Command::new("sh").args(["-n", "-c", script])).code(0);
    }

    // The packaged files themselves.
    let root = tempfile::tempdir().unwrap();
    dpkg_deb(&["-x".as_ref(), d, root.path().as_os_str()]);
    debian_conventions(d, root.path(), &entries);
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
    Done::of(
        Command::new(&bin)
            .args(["inspect", "--cpuinfo"])
            .arg(harness::cpuinfo("hwloc-xeon-gold-6230-cascadelake"))
            .env_remove("PVE_CPUGUARD_CONFIG"),
    )
    .code(0)
    .stdout_has("x86-64-v4");
}

/// What Debian's tools and policy expect of a binary package.
fn debian_conventions(d: &std::ffi::OsStr, root: &Path, entries: &[(&str, &str)]) {
    // lintian: no error, no warning. Kept: the info tag
    // hardening-no-fortify-functions (the Rust code calls none of glibc's
    // fortifiable functions; only the vendored C of OpenSSL and libssh2
    // could, built by their -sys crates' own flags) and two overrides, each
    // explained in packaging/debian/pve-cpuguard.lintian-overrides.
    let out = Command::new("lintian")
        .args(["--pedantic", "--display-info"])
        .arg(d)
        .env("HOME", root)
        .output()
        .expect("lintian must be installed (.ci/run installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        bad.is_empty(),
        "lintian:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "lintian: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // DEP-5 copyright naming the common license, not carrying its text.
    let copyright =
        std::fs::read_to_string(root.join("usr/share/doc/pve-cpuguard/copyright")).unwrap();
    assert!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ),
        "{copyright}"
    );
    assert!(copyright.contains("License: GPL-3+\n"), "{copyright}");
    assert!(
        copyright.contains("/usr/share/common-licenses/GPL-3"),
        "{copyright}"
    );
    assert!(!copyright.contains("TERMS AND CONDITIONS"), "the full text");

    // The Debian changelog, compressed, for this version.
    let changelog = root.join("usr/share/doc/pve-cpuguard/changelog.Debian.gz");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&changelog)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("pve-cpuguard ({}-1) ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );

    // md5sums for every file but the conffile, each matching.
    let md5sums = dpkg_deb(&["--info".as_ref(), d, "md5sums".as_ref()]);
    let files: Vec<&str> = entries
        .iter()
        .filter(|(m, p)| m.starts_with('-') && !p.starts_with("/etc/"))
        .map(|(_, p)| p.trim_start_matches('/'))
        .collect();
    let listed: Vec<&str> = md5sums
        .lines()
        .filter_map(|l| l.split_once("  ").map(|x| x.1))
        .collect();
    let mut sorted = files.clone();
    sorted.sort_unstable();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    assert_eq!(
        listed_sorted, sorted,
        "md5sums lists every file but the conffile"
    );
    let check = Command::new("md5sum")
        .args(["--check", "--quiet", "-"])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(md5sums.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Stripped: no symbol table, no .comment.
    for bin in ["usr/bin/pve-cpuguard", "usr/bin/pve-cpuguard-hook"] {
        let elf = std::fs::read(root.join(bin)).unwrap();
        for section in [".symtab", ".comment"] {
            assert!(!has_section(&elf, section), "{bin} has {section}");
        }
    }
}

/// Whether a 64-bit little-endian ELF file has a section of this name.
fn has_section(elf: &[u8], name: &str) -> bool {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at =
        |o: usize| usize::try_from(u64::from_le_bytes(elf[o..o + 8].try_into().unwrap())).unwrap();
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum).any(|i| {
        let at = strtab + u32_at(header(i));
        elf[at..].split(|b| *b == 0).next() == Some(name.as_bytes())
    })
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
    let mut c = harness::cluster::Cluster::new(&[
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
