//! Proxmox's SectionConfig text format, as `/etc/pve/storage.cfg` and
//! `/etc/pve/ha/resources.cfg` use it (pve-common `SectionConfig.pm`).
//! Hand-written: Proxmox's own crate (`proxmox-section-config`) parses
//! against API schemas (`proxmox-schema`) that would restate every
//! property; only the text format is needed here.
//!
//! ```text
//! dir: local
//!         path /var/lib/vz
//!         content iso,vztmpl,backup
//!
//! vm: 100
//!         state started
//! ```
//!
//! A header `TYPE: ID` at column 0 opens a section; indented `key value`
//! lines (the value may be absent: `disable`) belong to it; a blank line
//! ends it; `#` lines are comments. Pure: text in, sections out, and every
//! error names the file and line. The meaning of types and keys is left to
//! the modules that read a given file ([`crate::pve::storage`], [`crate::pve::ha`]).

use std::path::Path;

use crate::error::{Error, Result};

/// One section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `dir`, `nfs`, `vm`, …
    pub kind: String,
    /// `local`, `100`, …
    pub id: String,
    /// Line of the header (1-based), for errors found later.
    pub line: usize,
    /// Properties in file order: key, value (empty for a bare flag), line.
    pub props: Vec<(String, String, usize)>,
}

impl Section {
    /// A property's value, if set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
    }

    /// A property's value and line, if set.
    #[must_use]
    pub fn get_with_line(&self, key: &str) -> Option<(&str, usize)> {
        self.props
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, n)| (v.as_str(), *n))
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A header line as Proxmox reads it: `^(\S+):\s*(\S+)\s*$`
/// (pve-common `SectionConfig.pm`, `parse_section_header`), so
/// `node-affinity : keep` (a space before the colon) or `vm: 1 2` is no
/// header. The type is greedy, as in the regex: it runs to the last colon
/// that leaves one word after it.
fn header(line: &str) -> Option<(&str, &str)> {
    // Perl's `\s` on the file's bytes: ASCII whitespace only.
    let space = |c: char| c.is_ascii_whitespace();
    let line = line.trim_end_matches(space);
    if line.starts_with(space) {
        return None;
    }
    // The id: the last word; the type: everything before the colon that
    // precedes it (with only whitespace between).
    let id_start = line.rfind(space).map_or(0, |i| i + 1);
    let (before, id) = line.split_at(id_start);
    let (kind, id) = if before.is_empty() {
        // `type:id` without a space: the last colon splits them.
        let colon = id.rfind(':')?;
        (&id[..colon], &id[colon + 1..])
    } else {
        let kind = before.trim_end_matches(space).strip_suffix(':')?;
        (kind, id)
    };
    if kind.is_empty() || id.is_empty() || kind.contains(space) {
        return None;
    }
    Some((kind, id))
}

/// Parses a SectionConfig file; `origin` names it in errors.
///
/// # Errors
/// A property outside a section, a malformed header or key, a duplicate
/// section or property — each naming the file and line: the first one
/// [`parse_lenient`] finds.
pub fn parse(text: &str, origin: &Path) -> Result<Vec<Section>> {
    let mut read = parse_lenient(text, origin);
    if read.problems.is_empty() {
        Ok(read.sections)
    } else {
        Err(read.problems.swap_remove(0).error)
    }
}

/// A line [`parse_lenient`] could not take.
#[derive(Debug)]
pub struct Problem {
    /// What is wrong, naming the file and line.
    pub error: Error,
    /// The section it makes doubtful (an index into `sections`), or `None`
    /// for a line outside every section, which Proxmox VE ignores.
    pub section: Option<usize>,
}

/// What [`parse_lenient`] read.
#[derive(Debug)]
pub struct Lenient {
    /// The sections, without the lines that could not be read.
    pub sections: Vec<Section>,
    /// The lines that could not be read, in file order.
    pub problems: Vec<Problem>,
}

/// Parses as Proxmox VE does for a file every VM start reads
/// (cpu-models.conf): a line it cannot take is set aside — pve-common's
/// `parse_config` warns "ignore config line" and goes on — instead of
/// failing the whole file. A bad header sets aside its indented lines
/// too; a problem inside a section is tied to that section, so that only
/// what uses it is in doubt.
#[must_use]
pub fn parse_lenient(text: &str, origin: &Path) -> Lenient {
    let mut sections: Vec<Section> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    // Whether indented lines belong to the last section; `skipping`: they
    // belong to a header set aside (said once, with the header).
    let mut open = false;
    let mut skipping = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            open = false;
            skipping = false;
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if skipping {
                continue;
            }
            let Some(index) = sections.len().checked_sub(1).filter(|_| open) else {
                problems.push(Problem {
                    error: Error::parse(
                        origin,
                        n,
                        "indented property line outside a section (expected a `TYPE: ID` header first)",
                    ),
                    section: None,
                });
                continue;
            };
            let section = &mut sections[index];
            let body = line.trim_start();
            let (key, value) = match body.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (body, ""),
            };
            let wrong = if !is_word(key) {
                Some(format!("invalid property name {key:?}"))
            } else if section.get(key).is_some() {
                Some(format!(
                    "duplicate property '{key}' in section '{}: {}'",
                    section.kind, section.id
                ))
            } else {
                None
            };
            match wrong {
                Some(why) => problems.push(Problem {
                    error: Error::parse(origin, n, why),
                    section: Some(index),
                }),
                None => section.props.push((key.to_string(), value.to_string(), n)),
            }
            continue;
        }
        open = false;
        skipping = true;
        let Some((kind, id)) = header(line) else {
            problems.push(Problem {
                error: Error::parse(
                    origin,
                    n,
                    format!(
                        "expected a section header `TYPE: ID` (no space before the colon; \
                         Proxmox VE ignores any other line here), found '{}'",
                        crate::error::quoted(line)
                    ),
                ),
                section: None,
            });
            continue;
        };
        if !is_word(kind) || !is_word(id) {
            problems.push(Problem {
                error: Error::parse(
                    origin,
                    n,
                    format!(
                        "invalid section header '{}' (expected `TYPE: ID`)",
                        crate::error::quoted(line)
                    ),
                ),
                section: None,
            });
            continue;
        }
        if let Some(prev) = sections.iter().position(|s| s.kind == kind && s.id == id) {
            // Which of the two counts is not clear: the first is in doubt.
            problems.push(Problem {
                error: Error::parse(
                    origin,
                    n,
                    format!(
                        "duplicate section '{kind}: {id}' (first defined at line {})",
                        sections[prev].line
                    ),
                ),
                section: Some(prev),
            });
            continue;
        }
        sections.push(Section {
            kind: kind.to_string(),
            id: id.to_string(),
            line: n,
            props: Vec::new(),
        });
        open = true;
        skipping = false;
    }
    Lenient { sections, problems }
}

/// Reads a SectionConfig file that must exist (storage.cfg).
///
/// # Errors
/// Unreadable files and the errors of [`parse`].
pub fn read(path: &Path) -> Result<Vec<Section>> {
    parse(&crate::fsutil::read_text(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_flags_and_comments() {
        let text =
            "# storage\ndir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\tdisable\n\n\
                    nfs: nfs-a\n        export /srv/x\n        path /mnt/pve/nfs-a\n";
        let s = parse(text, Path::new("storage.cfg")).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].kind.as_str(), s[0].id.as_str()), ("dir", "local"));
        assert_eq!(s[0].get("path"), Some("/var/lib/vz"));
        assert_eq!(s[0].get("disable"), Some(""));
        assert_eq!(s[1].get_with_line("path"), Some(("/mnt/pve/nfs-a", 9)));
    }

    /// pve-common `SectionConfig.pm`: `^(\S+):\s*(\S+)\s*$`.
    #[test]
    fn headers_follow_proxmox_grammar() {
        for (line, want) in [
            ("dir: local", Some(("dir", "local"))),
            ("dir:local", Some(("dir", "local"))),
            ("dir:\t local  ", Some(("dir", "local"))),
            ("vm:0100", Some(("vm", "0100"))),
            ("a: b:c", Some(("a", "b:c"))),
            ("a:b: c", Some(("a:b", "c"))),
            ("node-affinity : keep", None),
            ("vm: 1 2", None),
            ("vm:", None),
            (":x", None),
            (" dir: local", None),
            ("dir local", None),
        ] {
            assert_eq!(header(line), want, "{line:?}");
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("\tpath /x\n", Path::new("f.cfg")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.cfg:1: indented property line outside a section"),
            "{e}"
        );
        let e = parse("dir: a\n\tpath /x\n\n\tcontent iso\n", Path::new("f.cfg")).unwrap_err();
        assert!(e.to_string().starts_with("f.cfg:4:"), "{e}");
        let e = parse("dir local\n", Path::new("f.cfg")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.cfg:1: expected a section header"),
            "{e}"
        );
        let e = parse("dir: a\n\tpath /x\n\tpath /y\n", Path::new("f.cfg")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.cfg:3: duplicate property 'path' in section 'dir: a'"
        );
        let e = parse("vm: 100\n\nvm: 100\n", Path::new("f.cfg")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.cfg:3: duplicate section 'vm: 100' (first defined at line 1)"
        );
        let e = parse("vm: 1 00\n", Path::new("f.cfg")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.cfg:1: expected a section header"),
            "{e}"
        );
        let e = parse("vm: 1;00\n", Path::new("f.cfg")).unwrap_err();
        assert!(e.to_string().contains("invalid section header"), "{e}");
    }
}
