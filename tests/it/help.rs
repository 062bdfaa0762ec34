//! `--help` of each subcommand: it lists exactly the options that
//! subcommand reads (a setting it ignores, like `--policy` on `detach` or
//! `--cpuinfo` on `metrics`, would look like it changes something), each
//! setting with its environment variable beside it, in lines that fit 100
//! columns, and the short form (`-h`) stays short.

use crate::harness;

use std::collections::BTreeSet;

/// Where a command runs: its configuration file, /etc/pve, this node and
/// its cpuinfo.
const HERE: &[&str] = &["config", "pve-dir", "node", "cpuinfo"];

/// What a decision reads beyond that: the cache and the policy.
const DECIDE: &[&str] = &["cache", "policy", "vendor-change"];

/// How a command reaches other nodes.
const REACH: &[&str] = &[
    "ssh-port",
    "ssh-user",
    "ssh-key",
    "known-hosts",
    "timeout",
    "probe",
];

/// What each subcommand reads, from its code (src/app/commands/*.rs and
/// the settings each one resolves, see src/app/cli_settings.rs), as the
/// union of groups.
const OPTIONS: &[(&str, &[&[&str]])] = &[
    (
        "inspect",
        &[&[
            "cpuinfo",
            "probe",
            "qemu",
            "cache",
            "config",
            "pve-dir",
            "node",
            "probe-timeout",
        ]],
    ),
    ("why-not", &[HERE, &["cache"]]),
    (
        "hook",
        &[HERE, DECIDE, &["deadline", "run-dir", "state-dir"]],
    ),
    (
        "migrate",
        &[
            HERE,
            DECIDE,
            REACH,
            &[
                "force-unsafe",
                "reason",
                "qm",
                "run-dir",
                "cache-max-age",
                "state-dir",
            ],
        ],
    ),
    (
        "check",
        &[
            HERE,
            DECIDE,
            &[
                "target",
                "mode",
                "source-record",
                "run-dir",
                "cache-max-age",
            ],
        ],
    ),
    (
        "scan",
        &[
            HERE,
            REACH,
            &[
                "cache",
                "cache-max-age",
                "corosync",
                "qemu",
                "no-ssh",
                "workers",
                "pvesh",
                "qm",
                "ha-manager",
                "hook-file",
            ],
        ],
    ),
    (
        "ha-rules",
        &[
            HERE,
            DECIDE,
            &["apply", "dry-run", "ha-manager", "cache-max-age"],
        ],
    ),
    (
        "proxlb-tags",
        &[HERE, DECIDE, &["apply", "dry-run", "qm", "cache-max-age"]],
    ),
    (
        "plan",
        &[
            HERE,
            DECIDE,
            &[
                "add-node",
                "remove-node",
                "set-cpu",
                "set-cpu-all",
                "need",
                "cache-max-age",
            ],
        ],
    ),
    (
        "publish",
        &[HERE, &["probe", "qemu", "probe-timeout", "output-file"]],
    ),
    (
        "status",
        &[&["cache", "config", "cache-max-age", "pve-dir"]],
    ),
    (
        "baseline",
        &[&[
            "cache",
            "config",
            "cache-max-age",
            "custom-model",
            "apply",
            "dry-run",
            "pve-dir",
            "pvesh",
        ]],
    ),
    (
        "audit",
        &[
            &["all", "vm", "on", "finding"],
            HERE,
            DECIDE,
            &["cache-max-age"],
        ],
    ),
    (
        "attach",
        &[&[
            "all",
            "storage",
            "dry-run",
            "hook-file",
            "qm",
            "cache",
            "config",
            "pve-dir",
            "node",
        ]],
    ),
    (
        "detach",
        &[&["all", "dry-run", "qm", "config", "pve-dir", "node"]],
    ),
    (
        "metrics",
        &[
            DECIDE,
            &[
                "output-file",
                "config",
                "pve-dir",
                "cache-max-age",
                "state-dir",
            ],
        ],
    ),
];

/// Options given per invocation, never a setting: no environment variable.
const PER_RUN: &[&str] = &[
    "all",
    "vm",
    "on",
    "finding",
    "apply",
    "dry-run",
    "force-unsafe",
    "reason",
    "target",
    "mode",
    "source-record",
    "output",
    "output-file",
    "help",
    "probe",
    "add-node",
    "remove-node",
    "set-cpu",
    "set-cpu-all",
    "need",
    "custom-model",
];

fn help(sub: &str, flag: &str) -> String {
    // A wide terminal: the lines must still fit 100 columns.
    harness::Run::new([sub, flag])
        .env("COLUMNS", "200")
        .run()
        .code(0)
        .stdout
}

/// The `--help` entries: (long option name, its text up to the next entry).
fn entries(text: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        let entry = match l.strip_prefix("  -") {
            Some(short) if short.chars().nth(1) == Some(',') => short.get(3..),
            _ => l.strip_prefix("      ").filter(|r| r.starts_with("--")),
        };
        match entry.and_then(|e| e.strip_prefix("--")) {
            Some(name) => {
                let end = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .unwrap_or(name.len());
                v.push((name[..end].to_owned(), String::new()));
            }
            None => {
                if let Some((_, body)) = v.last_mut() {
                    body.push_str(l);
                    body.push('\n');
                }
            }
        }
    }
    v
}

#[test]
fn each_subcommand_lists_only_the_options_it_reads() {
    for (sub, options) in OPTIONS {
        let text = help(sub, "--help");
        let listed: BTreeSet<String> = entries(&text).into_iter().map(|(n, _)| n).collect();
        let mut expected: BTreeSet<String> = options
            .iter()
            .flat_map(|group| group.iter())
            .map(|o| (*o).to_owned())
            .collect();
        expected.extend(["help".to_owned(), "output".to_owned()]);
        assert_eq!(listed, expected, "pve-cpuguard {sub} --help:\n{text}");
    }
    // The two the issue names.
    assert!(!help("detach", "--help").contains("--policy"));
    assert!(!help("metrics", "--help").contains("--cpuinfo"));
}

#[test]
fn each_setting_shows_its_environment_variable() {
    for (sub, _) in OPTIONS {
        for (name, body) in entries(&help(sub, "--help")) {
            if PER_RUN.contains(&name.as_str()) {
                continue;
            }
            assert!(
                body.contains("[env: PVE_CPUGUARD_"),
                "pve-cpuguard {sub} --{name} has no [env: …]:\n{body}"
            );
        }
    }
}

#[test]
fn help_is_short_and_fits_100_columns() {
    for (sub, _) in OPTIONS {
        for flag in ["-h", "--help"] {
            let text = help(sub, flag);
            for l in text.lines() {
                assert!(
                    l.chars().count() <= 100,
                    "pve-cpuguard {sub} {flag}: {} columns: {l}",
                    l.chars().count()
                );
            }
            // The longest, `migrate`, has 22 options; -h gives each about
            // two lines, --help about six.
            let limit = if flag == "-h" { 70 } else { 150 };
            let n = text.lines().count();
            assert!(n <= limit, "pve-cpuguard {sub} {flag}: {n} lines");
        }
    }
}
