//! Parsing of Linux `/proc/cpuinfo` (x86) into [`CpuInfo`].
//! Hand-written: `procfs` keeps each processor's lines as strings, while a
//! node's answer needs the flags every block shares, file-and-line errors,
//! and no I/O in the core.
//!
//! Why every block: hybrid CPUs (P- and E-cores) and hosts with mixed
//! steppings show different flags per logical CPU. A guest may be scheduled
//! on any of them, so the node's usable set is the *intersection* over all
//! processor blocks, never the first block alone (the ProxCLMC mistake).

use std::collections::BTreeSet;
use std::path::Path;

use crate::cpu::word_list::WordList;
use crate::error::{Error, Result};

/// What /proc/cpuinfo says about one host, reduced to what matters for
/// deciding which guest CPUs the host can provide.
///
/// A cache record embeds it (`crate::cache::NodeRecord`); the flag and bug
/// lists are [`WordList`]s so that reading a record costs one allocation
/// per list, not one per flag (the hookscript reads records on every VM
/// start).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuInfo {
    /// `vendor_id`, e.g. `GenuineIntel`, `AuthenticAMD`.
    pub vendor: String,
    /// `model name` of the first processor.
    pub model_name: String,
    /// `cpu family`.
    pub family: Option<u32>,
    /// `model`.
    pub model: Option<u32>,
    /// `stepping`.
    pub stepping: Option<u32>,
    /// `microcode` revision as printed (e.g. `0x4119`).
    pub microcode: Option<String>,
    /// Physical address bits from `address sizes`.
    pub phys_bits: Option<u32>,
    /// Flags present on *every* processor, in Linux spelling.
    pub flags: WordList,
    /// Bugs present on *any* processor, when the kernel prints a `bugs` line.
    pub bugs: Option<WordList>,
    /// Number of processor blocks read (0 in the first cache records).
    pub processors: usize,
    /// Every processor block had the first one's CPU facts (vendor,
    /// family, model, stepping, microcode, address sizes, flags, bugs):
    /// then the first block alone gives this whole reading. False on
    /// hybrid CPUs whose core types print different flags, and during a
    /// partial late microcode load. False in older cache records.
    pub uniform: bool,
    /// The node's logical CPUs, when the reading lists them all: at least
    /// `siblings` (threads per package) times the packages seen. `None`
    /// for an excerpt (one processor of many, as published samples often
    /// are) and in older cache records: qemu-server's vCPU limit is then
    /// not judged rather than judged against a part.
    pub logical_cpus: Option<u32>,
}

/// Parses raw bytes; `origin` names the file in error messages.
///
/// # Errors
/// Malformed lines, and non-x86 input (as [`Error::Unsupported`]).
pub fn parse_bytes(bytes: &[u8], origin: &Path) -> Result<CpuInfo> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::parse(origin, line, "not valid UTF-8 text")
    })?;
    parse(text, origin)
}

/// Accumulates one `processor` block.
#[derive(Default)]
struct Block {
    fields: Vec<(String, String)>,
}

impl Block {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses cpuinfo text; `origin` names the file in error messages.
///
/// # Errors
/// Malformed lines name the file and line; a file without x86 `flags`
/// (aarch64, POWER, empty) is [`Error::Unsupported`].
pub fn parse(text: &str, origin: &Path) -> Result<CpuInfo> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut current = Block::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(Error::parse(
                origin,
                line_no,
                format!("expected `key : value`, found {:?}", truncate(line)),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::parse(origin, line_no, "empty key before `:`"));
        }
        // A new `processor` line also starts a block when blank lines are missing.
        if key == "processor" && current.get("processor").is_some() {
            blocks.push(std::mem::take(&mut current));
        }
        current
            .fields
            .push((key.to_string(), value.trim().to_string()));
    }
    if !current.fields.is_empty() {
        blocks.push(current);
    }
    from_blocks(&blocks, origin)
}

fn from_blocks(blocks: &[Block], origin: &Path) -> Result<CpuInfo> {
    let x86: Vec<&Block> = blocks.iter().filter(|b| b.get("flags").is_some()).collect();
    let Some(first) = x86.first() else {
        return Err(Error::Unsupported(unsupported_reason(blocks, origin)));
    };
    let mut flags: BTreeSet<String> = split_words(first.get("flags").unwrap_or_default());
    let mut bugs: Option<BTreeSet<String>> = None;
    const FACTS: [&str; 8] = [
        "vendor_id",
        "cpu family",
        "model",
        "stepping",
        "microcode",
        "address sizes",
        "flags",
        "bugs",
    ];
    let uniform = x86
        .iter()
        .all(|b| FACTS.iter().all(|k| b.get(k) == first.get(k)));
    for block in &x86 {
        let these = split_words(block.get("flags").unwrap_or_default());
        flags.retain(|f| these.contains(f));
        if let Some(b) = block.get("bugs") {
            bugs.get_or_insert_with(BTreeSet::new)
                .extend(split_words(b));
        }
    }
    if flags.is_empty() {
        return Err(Error::Unsupported(format!(
            "{}: the `flags` lines are empty: no x86 CPU flags to judge",
            origin.display()
        )));
    }
    let phys_bits = x86
        .iter()
        .filter_map(|b| b.get("address sizes").and_then(parse_phys_bits))
        .min();
    Ok(CpuInfo {
        vendor: first.get("vendor_id").unwrap_or("unknown").to_string(),
        model_name: first.get("model name").unwrap_or("unknown").to_string(),
        family: first.get("cpu family").and_then(|v| v.parse().ok()),
        model: first.get("model").and_then(|v| v.parse().ok()),
        stepping: first.get("stepping").and_then(|v| v.parse().ok()),
        microcode: first.get("microcode").map(str::to_string),
        phys_bits,
        flags: flags.iter().collect(),
        bugs: bugs.map(|b| b.iter().collect()),
        processors: x86.len(),
        uniform,
        logical_cpus: logical_cpus(&x86),
    })
}

fn unsupported_reason(blocks: &[Block], origin: &Path) -> String {
    let has = |key: &str| blocks.iter().any(|b| b.get(key).is_some());
    let what = if has("Features") || has("CPU implementer") {
        "an ARM (aarch64) /proc/cpuinfo"
    } else if has("cpu") && has("revision") {
        "a POWER or other non-x86 /proc/cpuinfo"
    } else if blocks.is_empty() {
        "an empty file"
    } else {
        "a file without any `flags` line"
    };
    format!(
        "{}: unsupported: this is {what}, with no x86 CPU flags; pve-cpuguard judges x86-64 hosts only",
        origin.display()
    )
}

/// The processor count, when the blocks are the whole list (see
/// [`CpuInfo::logical_cpus`]); without `siblings` lines (some virtual
/// machines) the count is taken as it is.
fn logical_cpus(x86: &[&Block]) -> Option<u32> {
    let count = u32::try_from(x86.len()).ok()?;
    let siblings = x86
        .iter()
        .filter_map(|b| b.get("siblings")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    let packages: BTreeSet<&str> = x86.iter().filter_map(|b| b.get("physical id")).collect();
    let expected = siblings.saturating_mul(u32::try_from(packages.len().max(1)).ok()?);
    (count >= expected).then_some(count)
}

fn split_words(value: &str) -> BTreeSet<String> {
    value.split_whitespace().map(str::to_string).collect()
}

/// `46 bits physical, 48 bits virtual` → 46.
fn parse_phys_bits(value: &str) -> Option<u32> {
    let (bits, rest) = value.trim().split_once(' ')?;
    rest.starts_with("bits physical")
        .then(|| bits.parse().ok())
        .flatten()
}

fn truncate(line: &str) -> String {
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<CpuInfo> {
        parse(text, Path::new("test"))
    }

    #[test]
    fn flags_are_the_intersection_over_all_processors() {
        let info = p("processor : 0\nvendor_id : GenuineIntel\nflags : a b c\n\n\
                      processor : 1\nvendor_id : GenuineIntel\nflags : b c d\n")
        .unwrap();
        assert_eq!(info.flags.as_str(), "b c");
        assert_eq!(info.processors, 2);
    }

    #[test]
    fn a_processor_line_starts_a_new_block_without_blank_line() {
        let info = p("processor : 0\nflags : a b\nprocessor : 1\nflags : b\n").unwrap();
        assert_eq!(info.flags.as_str(), "b");
    }

    #[test]
    fn fields_are_kept() {
        let info = p("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 33\n\
                      model name\t: AMD Ryzen 9 5950X\nstepping\t: 0\nmicrocode\t: 0xa201016\n\
                      flags\t\t: fpu sse\nbugs\t\t: spectre_v1\naddress sizes\t: 48 bits physical, 48 bits virtual\n\
                      power management:\n")
        .unwrap();
        assert_eq!(info.vendor, "AuthenticAMD");
        assert_eq!(info.family, Some(25));
        assert_eq!(info.model, Some(33));
        assert_eq!(info.stepping, Some(0));
        assert_eq!(info.microcode.as_deref(), Some("0xa201016"));
        assert_eq!(info.phys_bits, Some(48));
        assert_eq!(info.bugs, Some(WordList::parse("spectre_v1")));
    }

    #[test]
    fn malformed_line_names_the_line() {
        let err = p("processor : 0\nflags : a\ngarbage here\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test:3: expected `key : value`, found \"garbage here\""
        );
    }

    #[test]
    fn aarch64_is_unsupported_not_lowest_level() {
        let err = p("processor : 0\nFeatures : fp asimd\nCPU implementer : 0x41\n").unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)));
        assert!(err.to_string().contains("ARM (aarch64)"), "{err}");
    }

    #[test]
    fn empty_flags_is_unsupported() {
        assert!(matches!(
            p("processor : 0\nflags :\n"),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(p(""), Err(Error::Unsupported(_))));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = parse_bytes(b"processor : 0\nflags : a\xff\n", Path::new("x")).unwrap_err();
        assert_eq!(err.to_string(), "x:2: not valid UTF-8 text");
    }
}
