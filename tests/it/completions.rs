//! The shell completions as `pve-cpuguard generate completions` writes them
//! (the package ships these files): bash's completion function is driven
//! the way bash calls it (COMP_WORDS, COMP_CWORD, the function's three
//! arguments) and must offer every subcommand and each subcommand's options
//! exactly as its `--help` lists them; fish and zsh load the files without
//! an error and complete from them. bash, fish and zsh must be installed
//! (.ci/run installs them).

use crate::harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// The subcommands a person can run (`generate` is hidden: packaging only).
const SUBCOMMANDS: &[&str] = &[
    "attach",
    "audit",
    "baseline",
    "check",
    "detach",
    "help",
    "hook",
    "inspect",
    "metrics",
    "migrate",
    "plan",
    "scan",
    "publish",
    "ha-rules",
    "proxlb-tags",
    "status",
    "why-not",
];

fn generate(dir: &Path) {
    harness::Run::new(["generate".as_ref(), "completions".as_ref(), dir.as_os_str()])
        .run()
        .code(0);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a shell with its home and XDG directories inside `home`, so that
/// nothing it writes (fish's history, zsh's dump) lands outside the test's
/// temporary directory.
fn shell(program: &str, args: &[&str], home: &Path) -> Output {
    let out = Command::new(program)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_RUNTIME_DIR", home)
        .env_remove("PVE_CPUGUARD_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// What bash's completion function offers for `words` (the last one is the
/// word under the cursor), called as bash calls it.
fn bash_complete(script: &Path, words: &[&str], home: &Path) -> BTreeSet<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\n\
         f=$(complete -p pve-cpuguard | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n\
         [ -n \"$f\" ] || {{ echo 'no completion registered for pve-cpuguard' >&2; exit 1; }}\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         \"$f\" pve-cpuguard '{}' '{prev}' 2>/dev/null\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let out = shell("bash", &["--norc", "--noprofile", "-c", &program], home);
    text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The long options `pve-cpuguard SUB --help` lists: entries start at
/// column 3 (`-h, --help`) or 7 (`--dry-run`); wrapped help text is
/// indented further.
fn help_options(sub: &str) -> BTreeSet<String> {
    harness::Run::new([sub, "--help"])
        .run()
        .code(0)
        .stdout
        .lines()
        .filter_map(|l| {
            let entry = match l.strip_prefix("  -") {
                Some(short) if short.chars().nth(1) == Some(',') => short.get(3..)?,
                _ => l.strip_prefix("      ").filter(|r| r.starts_with("--"))?,
            };
            let name = entry.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(format!("--{}", &name[..end]))
        })
        .collect()
}

#[test]
fn bash_completes_every_subcommand_and_its_options() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let script = dir.path().join("pve-cpuguard");
    let home = dir.path();

    let subs = bash_complete(&script, &["pve-cpuguard", ""], home);
    let expected: BTreeSet<String> = SUBCOMMANDS.iter().map(|s| (*s).to_owned()).collect();
    let offered: BTreeSet<String> = subs.into_iter().filter(|s| !s.starts_with('-')).collect();
    assert_eq!(offered, expected, "subcommands offered at the first word");

    for sub in SUBCOMMANDS.iter().filter(|s| **s != "help") {
        let offered = bash_complete(&script, &["pve-cpuguard", sub, "--"], home);
        let listed = help_options(sub);
        assert!(listed.contains("--help"), "{sub}: {listed:?}");
        assert_eq!(
            offered, listed,
            "`pve-cpuguard {sub} --<TAB>` against its --help"
        );
    }

    // A prefix narrows; a value enum completes its values.
    assert_eq!(
        bash_complete(&script, &["pve-cpuguard", "scan", "--ssh-k"], home),
        BTreeSet::from(["--ssh-key".to_owned()])
    );
    assert_eq!(
        bash_complete(&script, &["pve-cpuguard", "scan", "--probe", ""], home),
        BTreeSet::from(["kvm".to_owned(), "off".to_owned(), "tcg".to_owned()])
    );
    assert_eq!(
        bash_complete(&script, &["pve-cpuguard", "help", "at"], home),
        BTreeSet::from(["attach".to_owned()])
    );
}

#[test]
fn fish_loads_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let script = dir.path().join("pve-cpuguard.fish");
    let program = format!(
        "source '{}'; or exit 1\ncomplete --do-complete 'pve-cpuguard detach --'\n\
         complete --do-complete 'pve-cpuguard '",
        script.display()
    );
    let out = shell("fish", &["--no-config", "-c", &program], dir.path());
    assert_eq!(text(&out.stderr), "", "fish printed errors while loading");
    let offered: BTreeSet<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect();
    for o in ["--dry-run", "--all", "--qm", "attach", "why-not", "inspect"] {
        assert!(offered.contains(o), "fish does not offer {o}: {offered:?}");
    }
    for o in ["--policy", "--cpuinfo", "generate"] {
        assert!(!offered.contains(o), "fish offers {o}: {offered:?}");
    }
}

#[test]
fn zsh_loads_the_completion_function() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let script = dir.path().join("_pve-cpuguard");
    let program = format!(
        "autoload -U compinit && compinit -u -D && source '{}' && whence -w _pve-cpuguard",
        script.display()
    );
    let out = shell("zsh", &["-f", "-c", &program], dir.path());
    assert_eq!(text(&out.stderr), "", "zsh printed errors while loading");
    assert_eq!(text(&out.stdout).trim(), "_pve-cpuguard: function");
    let body = std::fs::read_to_string(&script).unwrap();
    assert!(body.starts_with("#compdef pve-cpuguard"), "{body}");
    for sub in SUBCOMMANDS {
        assert!(body.contains(&format!("'{sub}:")), "zsh file lacks {sub}");
    }
    assert!(!body.contains("generate"), "zsh offers the hidden command");
}
