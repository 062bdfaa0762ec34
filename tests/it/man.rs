//! The man pages as `pve-cpuguard generate man` writes them (the package
//! ships these files, tests/it/package.rs checks that): every command's page,
//! formatted by man(1) without a warning, has ENVIRONMENT (every variable
//! its `--help` shows), FILES, EXIT STATUS, EXAMPLES and SEE ALSO naming
//! only pages that exist; pve-cpuguard.conf(5) documents every key the
//! configuration file accepts.

use crate::harness;

use std::path::Path;
use std::process::Command;

use pve_cpuguard::conf::config::KEYS;

const SUBCOMMANDS: &[&str] = &[
    "inspect",
    "why-not",
    "hook",
    "migrate",
    "check",
    "scan",
    "publish",
    "ha-rules",
    "proxlb-tags",
    "status",
    "baseline",
    "audit",
    "attach",
    "detach",
    "metrics",
    "plan",
];

fn generate(dir: &Path) {
    harness::Run::new(["generate".as_ref(), "man".as_ref(), dir.as_os_str()])
        .run()
        .code(0);
}

/// The page as man(1) shows it, 100 columns wide; formatter warnings fail.
fn man(page: &Path, home: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l", "-P", "cat"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("HOME", home)
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .expect("man must be installed (.ci/run installs man-db)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{}: {stderr}",
        page.display()
    );
    // In a UTF-8 locale groff prints hyphens and minus signs as Unicode.
    String::from_utf8_lossy(&out.stdout).replace(['\u{2010}', '\u{2212}'], "-")
}

/// The section headings of a formatted page (lines in capitals at column 1).
fn headings(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with(' ')
                && l.chars().all(|c| c.is_ascii_uppercase() || c == ' ')
        })
        .collect()
}

/// The environment variables `--help` shows beside the options.
fn help_env(sub: &str) -> Vec<String> {
    harness::Run::new([sub, "--help"])
        .run()
        .code(0)
        .stdout
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_page_has_the_sections_a_person_looks_for() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let mut pages: Vec<(String, String)> = vec![("pve-cpuguard".into(), String::new())];
    pages.extend(
        SUBCOMMANDS
            .iter()
            .map(|s| (format!("pve-cpuguard-{s}"), (*s).to_owned())),
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = pages.iter().map(|(p, _)| format!("{p}.1")).collect();
    expected.push("pve-cpuguard.conf.5".into());
    expected.sort();
    assert_eq!(
        files, expected,
        "one page per visible command, and the file format"
    );

    for (page, sub) in &pages {
        let text = man(&dir.path().join(format!("{page}.1")), dir.path());
        let found = headings(&text);
        for h in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENVIRONMENT",
            "FILES",
            "EXIT STATUS",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                found.contains(&h),
                "{page}(1) has no {h}: {found:?}\n{text}"
            );
        }
        assert!(
            !text.contains("pve-cpuguard-help"),
            "{page}(1) names a page that does not exist"
        );
        assert!(
            !text.contains("generate"),
            "{page}(1) shows the hidden command"
        );
        // Every page it refers to exists.
        let see_also = text.split("SEE ALSO").nth(1).unwrap();
        for r in see_also
            .split([',', ' ', '\n'])
            .filter(|w| w.ends_with(')'))
        {
            let (name, section) = r.trim().split_once('(').unwrap();
            let ok = name == "qm"
                || dir
                    .path()
                    .join(format!("{name}.{}", section.trim_end_matches(')')))
                    .is_file();
            assert!(ok, "{page}(1) refers to {r}, which is not generated");
        }
        if !sub.is_empty() {
            let env_section = text
                .split("ENVIRONMENT")
                .nth(1)
                .unwrap()
                .split("FILES")
                .next()
                .unwrap();
            for var in help_env(sub) {
                assert!(
                    env_section.contains(&var),
                    "{page}(1) ENVIRONMENT lacks {var}"
                );
            }
            assert!(text.contains("EXIT STATUS\n       0"), "{page}(1): {text}");
            assert!(
                text.split("EXAMPLES")
                    .nth(1)
                    .unwrap()
                    .contains(&format!("pve-cpuguard {sub}"))
                    || *sub == "hook",
                "{page}(1) has no example of itself"
            );
        }
    }
    // The pages of the commands that refuse list every refusal code.
    for page in [
        "pve-cpuguard",
        "pve-cpuguard-hook",
        "pve-cpuguard-migrate",
        "pve-cpuguard-check",
        "pve-cpuguard-why-not",
        "pve-cpuguard-audit",
    ] {
        let text = man(&dir.path().join(format!("{page}.1")), dir.path());
        let codes = text
            .split("REFUSAL CODES")
            .nth(1)
            .unwrap_or_else(|| panic!("{page}(1) has no REFUSAL CODES"));
        for (code, _, _) in pve_cpuguard::cpu::verdict::codes::REFUSAL_CODES {
            assert!(codes.contains(code), "{page}(1) lacks {code}");
        }
    }
    // The main page lists every subcommand's page.
    let main = man(&dir.path().join("pve-cpuguard.1"), dir.path());
    for sub in SUBCOMMANDS {
        assert!(main.contains(&format!("pve-cpuguard-{sub}(1)")), "{sub}");
    }
}

#[test]
fn the_configuration_file_page_documents_every_key() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let text = man(&dir.path().join("pve-cpuguard.conf.5"), dir.path());
    let found = headings(&text);
    for h in ["NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"] {
        assert!(
            found.contains(&h),
            "pve-cpuguard.conf(5) has no {h}: {found:?}"
        );
    }
    for (key, _) in KEYS {
        let entry = format!("       {key} = ");
        let at = text
            .find(&entry)
            .unwrap_or_else(|| panic!("pve-cpuguard.conf(5) does not document {key}:\n{text}"));
        // Each key comes with its explanation (the shipped file's comment).
        let body = text[at + entry.len()..].lines().nth(1).unwrap_or_default();
        assert!(
            body.starts_with("              ") && body.trim().len() > 10,
            "{key}: {body:?}"
        );
    }
}
