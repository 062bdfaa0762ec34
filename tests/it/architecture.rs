//! The layering of `src/`, checked: each layer folder may use only the
//! layers below it (docs/architecture.md), and the CPU core is pure.
//! A `use` that crosses a layer boundary the wrong way fails here, naming
//! the file and line, before it becomes a habit.

use std::path::{Path, PathBuf};

/// Each layer and the layers it may use (besides itself and the
/// foundation modules `error`, `fsutil` and `syslog`).
const MAY_USE: &[(&str, &[&str])] = &[
    ("cpu", &[]),
    ("pve", &["cpu"]),
    ("reach", &["cpu", "pve"]),
    ("cache", &["cpu"]),
    ("conf", &["cpu", "pve", "reach", "cache"]),
    ("guard", &["cpu", "pve", "cache", "conf"]),
    ("app", &["cpu", "pve", "reach", "cache", "conf", "guard"]),
];

const LAYERS: &[&str] = &["cpu", "pve", "reach", "cache", "conf", "guard", "app"];

/// What the pure core must not touch: files, processes, the network, the
/// environment, libc.
const IMPURE: &[&str] = &[
    "std::fs",
    "std::process",
    "std::net",
    "std::env",
    "libc::",
    "crate::fsutil",
    "crate::syslog",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            // `*_tests.rs` are unit-test modules (`#[cfg(test)] mod …`).
            && !p.to_string_lossy().ends_with("_tests.rs")
        {
            out.push(p);
        }
    }
}

/// The file's code before its unit tests (tests may read fixtures), with
/// comment lines left out.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, line.to_string()));
    }
    out
}

/// The layers a line names as `crate::LAYER`.
fn named_layers(line: &str) -> Vec<&'static str> {
    LAYERS
        .iter()
        .copied()
        .filter(|l| {
            let pat = format!("crate::{l}");
            line.match_indices(&pat).any(|(i, _)| {
                let after = line[i + pat.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect()
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (layer, allowed) in MAY_USE {
        let mut files = Vec::new();
        rust_files(&src().join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} holds no files");
        for f in files {
            for (n, line) in code_lines(&f) {
                for used in named_layers(&line) {
                    if used != *layer && !allowed.contains(&used) {
                        wrong.push(format!(
                            "{}:{n}: the {layer} layer uses {used}: {}",
                            f.strip_prefix(src()).unwrap().display(),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_cpu_core_is_pure() {
    let mut files = Vec::new();
    rust_files(&src().join("cpu"), &mut files);
    let mut wrong = Vec::new();
    for f in files {
        for (n, line) in code_lines(&f) {
            for bad in IMPURE {
                if line.contains(bad) {
                    wrong.push(format!(
                        "{}:{n}: {bad}: {}",
                        f.strip_prefix(src()).unwrap().display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the CPU core must stay pure (no files, processes, network, environment):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_layer_folder_states_its_rule() {
    for layer in LAYERS {
        let m = std::fs::read_to_string(src().join(layer).join("mod.rs")).unwrap();
        assert!(
            m.lines().take(12).any(|l| l.contains("Rule:")),
            "src/{layer}/mod.rs does not state its rule in its first lines"
        );
    }
}

/// Every file of this project that the README or docs/ name in backticks
/// exists: a pointer to a moved or renamed file misleads the newcomer the
/// tree is meant to guide. Placeholders (`NAME`) are not paths.
#[test]
fn documents_point_only_to_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            docs.push(e.path());
        }
    }
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for (n, line) in text.lines().enumerate() {
            for quoted in line.split('`').skip(1).step_by(2) {
                let ours = [
                    "src/",
                    "tests/",
                    "docs/",
                    "benches/",
                    "packaging/",
                    "hooks/",
                ]
                .iter()
                .any(|d| quoted.starts_with(d));
                if ours
                    && !quoted.contains("NAME")
                    && !quoted.contains(' ')
                    && !root.join(quoted).exists()
                {
                    missing.push(format!("{}:{}: {quoted}", doc.display(), n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documents name files that do not exist:\n{}",
        missing.join("\n")
    );
}

/// The layer table (docs/architecture.md) says what each layer may use; it
/// must say what this test enforces (the table had drifted once). `conf/` "the layers
/// above" and `app/` "everything" are checked as the lists they mean.
#[test]
fn the_architecture_document_states_the_enforced_layering() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    for (layer, allowed) in MAY_USE {
        let prefix = format!("| `{layer}/` |");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| {
                panic!("docs/architecture.md's layer table has no row for {layer}/")
            });
        let said = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        let listed: Vec<&str> = said.split('`').skip(1).step_by(2).collect();
        let above: Vec<&str> = LAYERS.iter().take_while(|l| *l != layer).copied().collect();
        let means: Vec<&str> = match said {
            "the layers above" => above,
            "everything" => LAYERS.iter().filter(|l| *l != layer).copied().collect(),
            _ if said.starts_with("nothing else") => Vec::new(),
            _ => listed,
        };
        assert_eq!(
            &means, allowed,
            "docs/architecture.md row for {layer}/: {said}"
        );
    }
}
