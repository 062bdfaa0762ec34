//! Proxmox VE's own per-node CPU flags: the answer of `pvesh get
//! /cluster/qemu/cpu-flags --accel kvm --output-format json` (PVE 9.2 and
//! later), parsed strictly.
//!
//! pvestatd expands QEMU's `host` model under KVM on every node and keeps
//! the result in the cluster's key-value store (`cpuflags-kvm`, pve-manager
//! `PVE/Service/pvestatd.pm` `update_supported_cpuflags`); the API turns
//! it into one entry per flag, `[{"name": "avx2", "description": "…",
//! "supported-on": ["n1", "n2"]}, …]`, with QEMU's flag names.
//! Here it becomes each node's set of canonical QEMU feature names; flags
//! pve-cpuguard does not know are counted, not kept.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cpu::flags;

/// The largest answer read (the real one is a few tens of KiB).
pub const MAX_BYTES: usize = 4 << 20;

/// The most flag entries accepted.
const MAX_ENTRIES: usize = 4096;

/// The most nodes one entry may name.
const MAX_NODES: usize = 4096;

/// What pvestatd says each node's KVM can give a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFlags {
    /// Node name → canonical QEMU feature names listed as supported there.
    /// A node appears only when some flag names it.
    pub nodes: BTreeMap<String, BTreeSet<String>>,
    /// Flag names pve-cpuguard does not know (left out of `nodes`).
    pub unknown: usize,
}

/// Whether `s` is a plausible flag or node name: no markup, no spaces.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses the answer.
///
/// # Errors
/// Anything but the documented shape: too large, not JSON, not a list of
/// objects with a plain `name` and a `supported-on` list of plain node
/// names; the message says what and where.
pub fn parse(bytes: &[u8]) -> Result<CpuFlags, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("more than {MAX_BYTES} bytes"));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Array(entries) = v else {
        return Err("not a JSON list".into());
    };
    if entries.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} flags"));
    }
    let mut out = CpuFlags::default();
    for (i, e) in entries.iter().enumerate() {
        let Value::Object(o) = e else {
            return Err(format!("entry {i} is not an object"));
        };
        let name = match o.get("name") {
            Some(Value::String(s)) if plain(s) => s.as_str(),
            Some(Value::String(s)) => {
                return Err(format!("entry {i}: invalid flag name {s:?}"));
            }
            _ => return Err(format!("entry {i} has no string \"name\"")),
        };
        if !matches!(
            o.get("description"),
            None | Some(Value::String(_) | Value::Null)
        ) {
            return Err(format!("flag {name}: \"description\" is not a string"));
        }
        let Some(Value::Array(on)) = o.get("supported-on") else {
            return Err(format!("flag {name} has no \"supported-on\" list"));
        };
        if on.len() > MAX_NODES {
            return Err(format!("flag {name}: more than {MAX_NODES} nodes"));
        }
        let mut nodes = Vec::with_capacity(on.len());
        for n in on {
            match n {
                Value::String(s) if plain(s) => nodes.push(s.as_str()),
                _ => return Err(format!("flag {name}: invalid node name {n}")),
            }
        }
        let Some(canonical) = flags::canonical(name) else {
            out.unknown += 1;
            continue;
        };
        for n in nodes {
            out.nodes
                .entry(n.to_string())
                .or_default()
                .insert(canonical.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_gets_the_flags_that_name_it_in_canonical_spelling() {
        let f = parse(
            br#"[{"name": "avx2", "description": "AVX2", "supported-on": ["n1", "n2"]},
                 {"name": "sse4.2", "supported-on": ["n1"]},
                 {"name": "no-such-flag-x", "supported-on": ["n2"]}]"#,
        )
        .unwrap();
        let n1: Vec<&str> = f.nodes["n1"].iter().map(String::as_str).collect();
        assert_eq!(n1, ["avx2", flags::canonical("sse4.2").unwrap()]);
        assert_eq!(f.nodes["n2"].len(), 1);
        assert_eq!(f.unknown, 1);
    }

    #[test]
    fn anything_but_the_documented_shape_is_refused() {
        for (bad, why) in [
            (&b"{}"[..], "not a JSON list"),
            (b"[1]", "entry 0 is not an object"),
            (b"[{\"supported-on\": []}]", "no string \"name\""),
            (
                b"[{\"name\": \"a b\", \"supported-on\": []}]",
                "invalid flag name",
            ),
            (b"[{\"name\": \"avx\"}]", "no \"supported-on\" list"),
            (
                b"[{\"name\": \"avx\", \"supported-on\": [\"$(x)\"]}]",
                "invalid node name",
            ),
            (
                b"[{\"name\": \"avx\", \"description\": 1, \"supported-on\": []}]",
                "description",
            ),
            (b"[{\"name\": \"avx\",", "not JSON"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let big = vec![b' '; MAX_BYTES + 1];
        assert!(parse(&big).unwrap_err().contains("more than"));
    }
}
