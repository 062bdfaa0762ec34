//! A flag-level cluster baseline as a custom CPU model (what VMware EVC's
//! masks do): the best named QEMU model every node runs as its
//! `reported-model`, plus every further CPU flag every node can give a
//! guest, minus the few a cluster-wide model must not carry. Pure; the
//! command judges the result with the one verdict before it prints it
//! ([`crate::guard::custom_model`]).
//!
//! Proxmox VE's facts it follows:
//! - the model lives in `/etc/pve/virtual-guest/cpu-models.conf`
//!   (section `cpu-model: NAME`, keys `flags` and `reported-model`), and a
//!   VM names it `custom-NAME` (qemu-server `src/PVE/QemuServer/CPUConfig.pm`);
//! - `reported-model` must be one of Proxmox VE's model names (`$cpu_fmt`
//!   enum), which the best named model is, as is the fallback `qemu64`;
//! - a custom model's `flags` may name any QEMU flag matching
//!   `[+-][a-zA-Z0-9\-_\.]+` (`$cpu_flag_any_re`); only a VM's own `flags`
//!   are limited to the short list of `CPUFlags.pm`;
//! - the name is a `pve-configid` (`[a-z][a-z0-9_-]+`, any case; pve-common
//!   `JSONSchema.pm`) of at most 40 characters as the API's `cputype`
//!   parameter, which carries the `custom-` prefix here (pve-manager
//!   `PVE/API2/Cluster/Qemu/CustomCPUModels.pm`).

use std::collections::BTreeSet;

use crate::cpu::capability::Capability;
use crate::cpu::cpuconf::{CpuConf, FlagChange};
use crate::cpu::cpudata;
use crate::cpu::flags::{self, HostTest};
use crate::cpu::models::{self, ResolvedType};

/// The longest NAME: `custom-NAME` is at most 40 characters (the API's
/// `maxLength` for `cputype`).
pub const MAX_NAME: usize = 40 - "custom-".len();

/// The reported model when no named model fits every node: what Proxmox
/// VE's own `x86-64-vN` types are built on (`CPUConfig.pm`).
pub const FALLBACK_MODEL: &str = "qemu64";

/// Checks a model name as Proxmox VE would; `custom-NAME` is taken as
/// NAME (the API accepts either).
///
/// # Errors
/// Why the name is refused.
pub fn check_name(given: &str) -> Result<&str, String> {
    let name = given.strip_prefix("custom-").unwrap_or(given);
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !first_ok || !rest_ok || name.len() < 2 {
        return Err(format!(
            "invalid custom model name '{}' (valid: a letter, then letters, digits, '-' or '_'; \
             at least 2 characters)",
            name.escape_debug()
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "custom model name '{name}' is longer than {MAX_NAME} characters (Proxmox VE allows \
             40 for custom-NAME)"
        ));
    }
    Ok(name)
}

/// Why a flag every node gives is not in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// QEMU or KVM give it to every guest whatever the host: not something
    /// the nodes differ in, and some are QEMU's own business (`ht`,
    /// `hypervisor`, the KVM paravirtual leaf).
    Provided,
    /// `vmx`/`svm`: nested virtualization is a per-VM choice (Proxmox VE's
    /// `nested-virt` flag), and QEMU switches `svm` off for named models.
    Nested,
    /// `invtsc`: QEMU blocks live migration (and snapshots with RAM) of a
    /// guest that has it unless a TSC frequency is set, which Proxmox VE
    /// does not (QEMU `target/i386/kvm/kvm.c`, `invtsc_mig_blocker`).
    MigrationBlocker,
    /// `pdcm`, and `full-width-write` of the MSR it announces: they need a
    /// guest PMU, which qemu-server never turns on; newer QEMU marks an
    /// explicit `+pdcm` unavailable without one (QEMU `target/i386/cpu.c`,
    /// `x86_cpu_expand_features`: "not available due to PMU being
    /// disabled"), and `enforce` then refuses to start, and QEMU drops a
    /// requested feature whose dependency is missing the same way.
    Pmu,
    /// `cet-ibt`/`cet-ss`: qemu-server turns them off for Windows 11 guests
    /// on QEMU 11 (`get_pve_cpu_flags`), and a custom model's flags come
    /// after that and would turn them back on.
    WindowsCet,
    /// A name Proxmox VE's `flags` grammar does not accept.
    Grammar,
}

impl LeftOut {
    /// Stable identifier for JSON.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            LeftOut::Provided => "provided-by-qemu-kvm",
            LeftOut::Nested => "nested-virtualization",
            LeftOut::MigrationBlocker => "blocks-live-migration",
            LeftOut::Pmu => "needs-guest-pmu",
            LeftOut::WindowsCet => "off-for-windows-11",
            LeftOut::Grammar => "not-in-proxmox-grammar",
        }
    }

    /// Why, for people (after one flag or a list of them).
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            LeftOut::Provided => "given to every guest by QEMU/KVM, whatever the host CPU",
            LeftOut::Nested => {
                "nested virtualization, a per-VM choice (`flags=+nested-virt` in a VM's cpu)"
            }
            LeftOut::MigrationBlocker => {
                "QEMU refuses to live-migrate a guest that has it (no TSC frequency is set)"
            }
            LeftOut::Pmu => "a guest PMU is needed, which Proxmox VE does not give VMs",
            LeftOut::WindowsCet => {
                "qemu-server turns CET off for Windows 11 guests; the model would turn it on"
            }
            LeftOut::Grammar => "not accepted by Proxmox VE's flags grammar",
        }
    }
}

/// Whether Proxmox VE accepts `name` in a custom model's `flags`
/// (`$cpu_flag_any_re`: letters, digits, `-`, `_`, `.`).
#[must_use]
pub fn proxmox_accepts(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The custom model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomBaseline {
    /// NAME, without `custom-`.
    pub name: String,
    /// `reported-model`.
    pub reported_model: String,
    /// Whether that is the best named model every node runs (`false`: the
    /// [`FALLBACK_MODEL`], none fitting).
    pub named: bool,
    /// Flags added (`+`), canonical QEMU names, sorted.
    pub add: Vec<String>,
    /// Flags of the reported model some node lacks (`-`), sorted.
    pub remove: Vec<String>,
    /// Flags every node gives that were left out, and why.
    pub left_out: Vec<(String, LeftOut)>,
}

/// Features of the model named `name` under KVM (none if not a model).
fn model_features(name: &str) -> BTreeSet<String> {
    match models::resolve(name) {
        Ok(ResolvedType::Model { features, .. }) => features,
        _ => BTreeSet::new(),
    }
}

/// Whether `feature` lives in IA32_ARCH_CAPABILITIES, which the guest only
/// sees with the `arch-capabilities` CPUID bit.
fn in_arch_capabilities(feature: &str) -> bool {
    let idx = cpudata::index();
    idx.feature
        .get(feature)
        .is_some_and(|&i| idx.data.features[i].cpuid == "MSR 10AH")
}

fn left_out(feature: &str) -> Option<LeftOut> {
    if !proxmox_accepts(feature) {
        return Some(LeftOut::Grammar);
    }
    match feature {
        "vmx" | "svm" => Some(LeftOut::Nested),
        "invtsc" => Some(LeftOut::MigrationBlocker),
        "cet-ibt" | "cet-ss" => Some(LeftOut::WindowsCet),
        "pdcm" | "full-width-write" => Some(LeftOut::Pmu),
        _ if flags::host_test(feature) == HostTest::Provided => Some(LeftOut::Provided),
        _ => None,
    }
}

/// Builds model `name` over the capabilities of every node (one vendor:
/// the caller's to ensure), on `reported` (the best named model every node
/// runs; `None`: [`FALLBACK_MODEL`]).
#[must_use]
pub fn build(name: &str, reported: Option<&str>, nodes: &[&Capability]) -> CustomBaseline {
    let reported_model = reported.unwrap_or(FALLBACK_MODEL).to_string();
    let mut common: Option<BTreeSet<String>> = None;
    for cap in nodes {
        let present = &cap.features().present;
        common = Some(match common {
            None => present.clone(),
            Some(c) => c.intersection(present).cloned().collect(),
        });
    }
    let common = common.unwrap_or_default();
    let base = model_features(&reported_model);
    let mut add = Vec::new();
    let mut out = Vec::new();
    for f in common.difference(&base) {
        match left_out(f) {
            Some(why) => out.push((f.clone(), why)),
            None => add.push(f.clone()),
        }
    }
    // The MSR's bits mean nothing to a guest without the CPUID bit that
    // announces the MSR (every KVM offers it).
    if add.iter().any(|f| in_arch_capabilities(f)) {
        if let Some(i) = out.iter().position(|(f, _)| f == "arch-capabilities") {
            add.push(out.remove(i).0);
            add.sort();
        }
    }
    let remove = base
        .difference(&common)
        .filter(|f| left_out(f).is_none())
        .cloned()
        .collect();
    CustomBaseline {
        name: name.to_string(),
        reported_model,
        named: reported.is_some(),
        add,
        remove,
        left_out: out,
    }
}

impl CustomBaseline {
    /// `custom-NAME`, as a VM's `cpu:` names it.
    #[must_use]
    pub fn cputype(&self) -> String {
        format!("custom-{}", self.name)
    }

    /// The `flags` value: `+a;+b;-c` (empty when the model alone is it).
    #[must_use]
    pub fn flags_value(&self) -> String {
        self.add
            .iter()
            .map(|f| format!("+{f}"))
            .chain(self.remove.iter().map(|f| format!("-{f}")))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The model as cpu-models.conf holds it.
    #[must_use]
    pub fn conf(&self) -> CpuConf {
        let flags = self
            .add
            .iter()
            .map(|f| (true, f))
            .chain(self.remove.iter().map(|f| (false, f)))
            .map(|(add, name)| FlagChange {
                add,
                name: name.clone(),
            })
            .collect();
        CpuConf {
            flags,
            reported_model: Some(self.reported_model.clone()),
            ..CpuConf::default()
        }
    }

    /// The cpu-models.conf section, in the format qemu-server writes.
    #[must_use]
    pub fn section(&self) -> String {
        let mut s = format!("cpu-model: {}\n", self.name);
        let flags = self.flags_value();
        if !flags.is_empty() {
            s.push_str(&format!("\tflags {flags}\n"));
        }
        s.push_str(&format!("\treported-model {}\n", self.reported_model));
        s
    }

    /// How `existing` (this name's model in cpu-models.conf) differs from
    /// this one; empty when they are the same model. Flags compare as a
    /// set, in any spelling QEMU accepts.
    #[must_use]
    pub fn differences(&self, existing: &CpuConf) -> Vec<String> {
        let mut out = Vec::new();
        let theirs = existing.reported_model.as_deref().unwrap_or("kvm64");
        if theirs != self.reported_model {
            out.push(format!(
                "reported-model {theirs} there, {} here",
                self.reported_model
            ));
        }
        let set = |c: &CpuConf| -> BTreeSet<String> {
            c.flags
                .iter()
                .map(|f| {
                    let name = flags::canonical(&f.name).unwrap_or(&f.name);
                    format!("{}{name}", if f.add { '+' } else { '-' })
                })
                .collect()
        };
        let (there, here) = (set(existing), set(&self.conf()));
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
            a.difference(b).cloned().collect()
        };
        let (t, h) = (only(&there, &here), only(&here, &there));
        if !t.is_empty() {
            out.push(format!("flags only there: {}", t.join(" ")));
        }
        if !h.is_empty() {
            out.push(format!("flags only here: {}", h.join(" ")));
        }
        for (key, set) in [
            ("phys-bits", existing.phys_bits.map(|p| p.to_string())),
            (
                "guest-phys-bits",
                existing.guest_phys_bits.map(|p| p.to_string()),
            ),
            ("hidden", existing.hidden.map(|h| u8::from(h).to_string())),
            ("hv-vendor-id", existing.hv_vendor_id.clone()),
            ("level", existing.level.map(|l| l.to_string())),
        ] {
            if let Some(v) = set {
                out.push(format!("{key} {v} there, unset here"));
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::test_hosts::kvm_host;

    /// A node from a real /proc/cpuinfo of `tests/data/cpuinfo`.
    pub(crate) fn sample(text: &str) -> Capability {
        let info = crate::cpu::cpuinfo::parse(text, std::path::Path::new("cpuinfo")).unwrap();
        Capability::from_cpuinfo(&info)
    }

    pub(crate) const HASWELL: &str =
        include_str!("../../tests/data/cpuinfo/archspec-linux-rhel7-haswell.txt");
    pub(crate) const SKYLAKE: &str =
        include_str!("../../tests/data/cpuinfo/hwloc-xeon-silver-4108-skylake-sp.txt");
    pub(crate) const SANDY: &str =
        include_str!("../../tests/data/cpuinfo/hwloc-xeon-e5-2680-sandybridge-ep.txt");

    /// The model over `nodes` on the best named model they all run.
    pub(crate) fn over(nodes: &[&Capability]) -> CustomBaseline {
        let named: Vec<(String, Capability)> = nodes
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("n{i}"), (*c).clone()))
            .collect();
        let best = crate::cpu::baseline::compute(&named).model;
        build("evc", best.as_deref(), nodes)
    }

    #[test]
    fn names_follow_proxmox_configid_and_length() {
        assert_eq!(check_name("evc"), Ok("evc"));
        assert_eq!(check_name("custom-evc-2026"), Ok("evc-2026"));
        for bad in ["", "x", "9lives", "a b", "a.b", "custom-", "ünï"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME + 1))
            .unwrap_err()
            .contains("longer than 33"));
    }

    #[test]
    fn the_flags_are_what_every_node_gives_beyond_the_model() {
        let (sky, has) = (sample(SKYLAKE), sample(HASWELL));
        let m = over(&[&sky, &has]);
        assert!(m.named, "{m:?}");
        // Everything both give that the model lacks; nothing of Skylake's own.
        assert!(!m.add.iter().any(|f| f.starts_with("avx512")), "{m:?}");
        let base = model_features(&m.reported_model);
        let both: BTreeSet<String> = sky
            .features()
            .present
            .intersection(&has.features().present)
            .cloned()
            .collect();
        let want: Vec<String> = both
            .difference(&base)
            .filter(|f| left_out(f).is_none())
            .cloned()
            .collect();
        assert!(!want.is_empty());
        assert_eq!(m.add, want);
        assert!(m.remove.is_empty(), "{m:?}");
        // vmx and invtsc are common, and left out with their reasons.
        assert!(m.left_out.contains(&("vmx".into(), LeftOut::Nested)));
        assert!(m
            .left_out
            .contains(&("invtsc".into(), LeftOut::MigrationBlocker)));
        // A weaker node lowers the model or takes flags away.
        let low = over(&[&sky, &has, &sample(SANDY)]);
        assert!(low.add.iter().all(|f| both.contains(f)), "{low:?}");
        assert_ne!(low, m);
    }

    #[test]
    fn the_fallback_model_takes_away_what_a_node_lacks() {
        let v2 = kvm_host("GenuineIntel", "x86-64-v2");
        let m = build("low", None, &[&v2]);
        assert_eq!(
            (m.reported_model.as_str(), m.named),
            (FALLBACK_MODEL, false)
        );
        // x86-64-v2's own flags come on top of qemu64.
        for f in ["popcnt", "sse4.2", "ssse3"] {
            assert!(m.add.contains(&f.to_string()), "{f}: {m:?}");
        }
        let mut bare = v2.features().present.clone();
        bare.remove("lahf-lm");
        let poor = Capability::new(
            "GenuineIntel",
            "poor",
            None,
            None,
            flags::HostFeatures {
                present: bare,
                unverifiable: BTreeSet::new(),
            },
            crate::cpu::capability::View::Cpuinfo,
        );
        let m = build("low", None, &[&v2, &poor]);
        assert!(m.remove.contains(&"lahf-lm".to_string()), "{m:?}");
        assert!(m.flags_value().contains(";-lahf-lm"), "{}", m.flags_value());
    }

    #[test]
    fn left_out_flags_name_their_reason() {
        assert_eq!(left_out("invtsc"), Some(LeftOut::MigrationBlocker));
        assert_eq!(left_out("svm"), Some(LeftOut::Nested));
        assert_eq!(left_out("cet-ss"), Some(LeftOut::WindowsCet));
        assert_eq!(left_out("pdcm"), Some(LeftOut::Pmu));
        assert_eq!(left_out("kvm-pv-eoi"), Some(LeftOut::Provided));
        assert_eq!(left_out("hypervisor"), Some(LeftOut::Provided));
        assert_eq!(left_out("a b"), Some(LeftOut::Grammar));
        assert_eq!(left_out("avx2"), None);
        // Every flag QEMU names is in Proxmox VE's grammar.
        for f in cpudata::index().feature_names() {
            assert!(proxmox_accepts(&f), "{f}");
        }
    }

    #[test]
    fn the_section_parses_back_to_the_same_model() {
        let m = over(&[&sample(HASWELL)]);
        let text = m.section();
        assert!(text.starts_with("cpu-model: evc\n\tflags +"), "{text}");
        let parsed =
            crate::pve::custom_models::parse(&text, std::path::Path::new("cpu-models.conf"));
        let parsed = parsed.unwrap();
        let conf = parsed.get("custom-evc").unwrap();
        assert_eq!(m.differences(conf), Vec::<String>::new());
        // Another spelling of the same flag is the same model.
        let mut other = conf.clone();
        let idx = cpudata::index();
        let alias = other.flags.iter_mut().find_map(|f| {
            let def = &idx.data.features[*idx.feature.get(f.name.as_str())?];
            Some((f, *def.aliases.first()?))
        });
        let (f, alias) = alias.expect("an added flag QEMU also spells otherwise");
        f.name = alias.to_string();
        assert!(m.differences(&other).is_empty(), "{alias}");
        other.flags.remove(0);
        other.phys_bits = Some(crate::cpu::cpuconf::PhysBits::Bits(40));
        let d = m.differences(&other);
        assert!(d[0].starts_with("flags only here: +"), "{d:?}");
        assert_eq!(d[1], "phys-bits 40 there, unset here");
    }
}
