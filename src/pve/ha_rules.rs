//! `/etc/pve/ha/rules.cfg`: the HA rules of Proxmox VE 9 (pve-ha-manager
//! ≥ 5.0.2, `src/PVE/HA/Rules.pm` and `Rules/NodeAffinity.pm`).
//!
//! SectionConfig, e.g. (pve-docs `ha-manager.adoc`):
//!
//! ```text
//! node-affinity: ha-rule-vm100
//!         resources vm:100,vm:101
//!         nodes node1:2,node2:1,node3
//!         strict 1
//!         comment some text
//! ```
//!
//! Every rule type takes `resources`, `comment` and `disable`; a
//! node-affinity rule adds `nodes` (a node with an optional `:priority`)
//! and `strict` (default 0: the resource may fall back to any node). A
//! resource may be in only one node-affinity rule (`NodeAffinity.pm`).
//! Other rule types (`resource-affinity`) are kept, only for their ids.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pve::section_config;

/// The file below the cluster file system.
#[must_use]
pub fn file(pve_root: &Path) -> PathBuf {
    pve_root.join("ha/rules.cfg")
}

/// One rule, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `node-affinity`, `resource-affinity`, …
    pub kind: String,
    /// The rule id.
    pub id: String,
    /// Line of the header.
    pub line: usize,
    /// `resources`: `vm:100`, `ct:200`, in file order.
    pub resources: Vec<String>,
    /// `nodes`: name and priority, in file order.
    pub nodes: Vec<(String, Option<u32>)>,
    /// `strict 1`.
    pub strict: bool,
    /// `disable` (or `disable 1`).
    pub disabled: bool,
    /// `comment`.
    pub comment: Option<String>,
}

impl Rule {
    /// Whether this is a node-affinity rule.
    #[must_use]
    pub fn is_node_affinity(&self) -> bool {
        self.kind == "node-affinity"
    }

    /// The `nodes` value as Proxmox writes it (`n1:2,n2`).
    #[must_use]
    pub fn nodes_value(&self) -> String {
        nodes_value(&self.nodes)
    }
}

/// `n1:2,n2` from names and priorities.
#[must_use]
pub fn nodes_value(nodes: &[(String, Option<u32>)]) -> String {
    nodes
        .iter()
        .map(|(n, p)| match p {
            Some(p) => format!("{n}:{p}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A boolean property as SectionConfig reads it: bare (`disable`) is 1,
/// else `parse_boolean` (`strict true`, `strict Yes`, `strict 0`).
fn flag(value: &str, key: &str, origin: &Path, line: usize) -> Result<bool> {
    if value.is_empty() {
        return Ok(true);
    }
    crate::pve::parse_boolean(value).ok_or_else(|| {
        Error::parse(
            origin,
            line,
            format!(
                "invalid {key} '{}' (valid: 1, 0, on, off, yes, no, true, false)",
                crate::error::quoted(value)
            ),
        )
    })
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parses rules.cfg's text.
///
/// # Errors
/// SectionConfig errors, a malformed resource, node or flag — naming the
/// file and line.
pub fn parse(text: &str, origin: &Path) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for s in section_config::parse(text, origin)? {
        let mut rule = Rule {
            kind: s.kind.clone(),
            id: s.id.clone(),
            line: s.line,
            resources: Vec::new(),
            nodes: Vec::new(),
            strict: false,
            disabled: false,
            comment: s.get("comment").map(str::to_string),
        };
        if let Some((v, n)) = s.get_with_line("resources") {
            for r in list(v) {
                // The VMID as a number, as Proxmox VE takes it: `vm:0100`
                // is VM 100, written back as `vm:100`.
                let canonical = r.split_once(':').and_then(|(t, id)| {
                    let id: u32 = id.parse().ok()?;
                    matches!(t, "vm" | "ct").then(|| format!("{t}:{id}"))
                });
                let Some(canonical) = canonical else {
                    return Err(Error::parse(
                        origin,
                        n,
                        format!(
                            "invalid resource '{}' (expected vm:VMID or ct:VMID)",
                            crate::error::quoted(r)
                        ),
                    ));
                };
                rule.resources.push(canonical);
            }
        }
        if let Some((v, n)) = s.get_with_line("nodes") {
            for entry in list(v) {
                let (name, prio) = match entry.split_once(':') {
                    Some((name, p)) => {
                        let p: u32 = p.parse().map_err(|_| {
                            Error::parse(
                                origin,
                                n,
                                format!("invalid node priority in '{entry}' (expected NODE or NODE:NUMBER)"),
                            )
                        })?;
                        (name, Some(p))
                    }
                    None => (entry, None),
                };
                if !crate::pve::paths::valid_node_name(name) {
                    return Err(Error::parse(
                        origin,
                        n,
                        format!("invalid node name '{name}'"),
                    ));
                }
                rule.nodes.push((name.to_string(), prio));
            }
        }
        if let Some((v, n)) = s.get_with_line("strict") {
            rule.strict = flag(v, "strict", origin, n)?;
        }
        if let Some((v, n)) = s.get_with_line("disable") {
            rule.disabled = flag(v, "disable", origin, n)?;
        }
        out.push(rule);
    }
    Ok(out)
}

/// Reads `<pve>/ha/rules.cfg`; missing means no rules.
///
/// # Errors
/// Unreadable or malformed file.
pub fn read(pve_root: &Path) -> Result<Vec<Rule>> {
    crate::fsutil::parse_optional(&file(pve_root), parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_proxmox_format() {
        let text = "node-affinity: ha-rule-vm100\n\tresources vm:100,vm:101\n\tnodes node1:2,node2:1,node3\n\tstrict 1\n\tcomment keep near storage\n\n\
                    resource-affinity: apart\n\tresources vm:100,vm:102\n\taffinity negative\n\tdisable\n";
        let r = parse(text, Path::new("rules.cfg")).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_node_affinity());
        assert_eq!(r[0].resources, ["vm:100", "vm:101"]);
        assert_eq!(r[0].nodes_value(), "node1:2,node2:1,node3");
        assert!(r[0].strict && !r[0].disabled);
        assert_eq!(r[0].comment.as_deref(), Some("keep near storage"));
        assert!(!r[1].is_node_affinity() && r[1].disabled && !r[1].strict);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("node-affinity: a\n\tresources vm:x\n", Path::new("r.cfg")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.cfg:2: invalid resource 'vm:x' (expected vm:VMID or ct:VMID)"
        );
        let e = parse("node-affinity: a\n\tnodes n1:high\n", Path::new("r.cfg")).unwrap_err();
        assert!(
            e.to_string().starts_with("r.cfg:2: invalid node priority"),
            "{e}"
        );
        let e = parse(
            "node-affinity: a\n\tnodes n1\n\tstrict maybe\n",
            Path::new("r.cfg"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.cfg:3: invalid strict 'maybe' (valid: 1, 0, on, off, yes, no, true, false)"
        );
    }

    /// Issue 21, item 9: the header grammar, VMIDs and booleans as
    /// Proxmox VE reads them.
    #[test]
    fn rules_are_read_as_proxmox_reads_them() {
        // `strict true` is PVE's boolean, not a reason to abort.
        for (v, want) in [
            ("true", true),
            ("Yes", true),
            ("ON", true),
            ("off", false),
            ("FALSE", false),
        ] {
            let r = parse(
                &format!("node-affinity: a\n\tnodes n1\n\tstrict {v}\n"),
                Path::new("r.cfg"),
            )
            .unwrap();
            assert_eq!(r[0].strict, want, "{v}");
        }
        // `vm:0100` is VM 100.
        let r = parse(
            "node-affinity: a\n\tresources vm:0100,ct:007\n",
            Path::new("r.cfg"),
        )
        .unwrap();
        assert_eq!(r[0].resources, ["vm:100", "ct:7"]);
        // `node-affinity : keep` is no rule header.
        let e = parse(
            "node-affinity : keep\n\tresources vm:100\n",
            Path::new("r.cfg"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("r.cfg:1: expected a section header `TYPE: ID`"),
            "{e}"
        );
        // But `node-affinity:keep` is one.
        let r = parse(
            "node-affinity:keep\n\tresources vm:100\n",
            Path::new("r.cfg"),
        )
        .unwrap();
        assert_eq!(
            (r[0].kind.as_str(), r[0].id.as_str()),
            ("node-affinity", "keep")
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse(&text, Path::new("rules.cfg"));
        }

        #[test]
        fn nodes_round_trip(nodes in proptest::collection::vec(("[a-z][a-z0-9-]{0,10}", proptest::option::of(0u32..1000)), 1..6)) {
            let text = format!("node-affinity: r\n\tnodes {}\n", nodes_value(&nodes));
            let r = parse(&text, Path::new("rules.cfg")).unwrap();
            prop_assert_eq!(&r[0].nodes, &nodes);
        }
    }
}
