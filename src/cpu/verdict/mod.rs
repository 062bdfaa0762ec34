//! The verdict: can this node give this VM its CPU?
//!
//! A pure function of a [`Requirement`], the target's [`Capability`] and,
//! for a live migration, the source's. Every refusal carries typed reasons;
//! a false refusal is as much a bug as a false accept, so anything the data
//! cannot decide is `Unknown` or a note, never a guess.

pub mod codes;
mod rules;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cpu::capability::{Capability, FeatureCheck};
use crate::cpu::requirement::Requirement;
pub use rules::{source_reads, vcpus_and_hugepages_on, SourceReads};
use rules::{Case, Findings, Needs, Rule, Under, RULES};

/// What is being decided.
#[derive(Debug, Clone, Copy)]
pub enum Question<'a> {
    /// Can the VM start on the target at all?
    Start,
    /// Can the running VM move live from `source` to the target?
    /// `None` when the source's capability is not known.
    Live {
        /// Source node capability.
        source: Option<&'a Capability>,
    },
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Required features the target lacks (QEMU spelling).
    MissingFlags(Vec<String>),
    /// The guest sees the host's vendor, and it would change.
    VendorChange { source: String, target: String },
    /// Live: `phys-bits=N` larger than the target's width, and the target
    /// narrower than the source the guest runs on (`None`: not known).
    PhysBitsTooLarge {
        requested: u32,
        target: u32,
        source: Option<u32>,
    },
    /// `phys-bits=host` with different widths on source and target.
    PhysBitsHostDiffers { source: u32, target: u32 },
    /// `cpu: host`/`max`: the source offers features the target lacks
    /// (shared: every such guest moving between two nodes lacks the same).
    HostFlagsNotSubset(Arc<[String]>),
    /// `nested-virt` resolves to vmx on one side and svm on the other.
    NestedVirtAcrossVendors { source: String, target: String },
    /// 1 GiB huge pages without `pdpe1gb` on the target.
    HugepagesWithoutPdpe1gb,
    /// The target has no usable KVM (its /proc/cpuinfo lists neither `vmx`
    /// nor `svm`), and the VM runs under KVM.
    NoKvm,
    /// `cpu: host` with `kvm: 0`: QEMU's `host` model needs KVM.
    HostCpuNeedsKvm,
    /// A Hyper-V enlightenment only Intel's KVM module implements
    /// (`hv-evmcs`), on a node that runs another.
    HyperVNeedsIntelVmx { flag: String },
    /// `phys-bits=N` outside what QEMU accepts for a 64-bit CPU (32-52).
    PhysBitsOutOfRange { requested: u32 },
    /// `phys-bits=N` on a CPU type without long mode.
    PhysBitsOn32BitCpu { cputype: String },
    /// `guest-phys-bits=N` above the guest's physical address width on
    /// this node (or below 32).
    GuestPhysBitsOutOfRange { requested: u32, limit: u32 },
    /// More vCPUs (sockets × cores) than the node has logical CPUs:
    /// qemu-server refuses ("MAX N vcpus allowed per VM on this node").
    TooManyVcpus { vcpus: u32, processors: u32 },
    /// qemu-server refuses to start the VM on the node whatever its CPU
    /// (its QEMU is too old for the machine version, say): its message.
    QemuServerRefuses(String),
    /// The guest's machine version is newer than the node's QEMU.
    MachineNewerThanQemu { machine: String, qemu: String },
}

impl Reason {
    /// Stable identifier for JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Reason::MissingFlags(_) => "missing-flags",
            Reason::VendorChange { .. } => "vendor-change",
            Reason::PhysBitsTooLarge { .. } => "phys-bits-too-large",
            Reason::PhysBitsHostDiffers { .. } => "phys-bits-host-differs",
            Reason::HostFlagsNotSubset(_) => "host-flags-not-subset",
            Reason::NestedVirtAcrossVendors { .. } => "nested-virt-across-vendors",
            Reason::HugepagesWithoutPdpe1gb => "hugepages-without-pdpe1gb",
            Reason::NoKvm => "no-kvm",
            Reason::HostCpuNeedsKvm => "host-cpu-needs-kvm",
            Reason::HyperVNeedsIntelVmx { .. } => "hyperv-needs-intel-vmx",
            Reason::PhysBitsOutOfRange { .. } => "phys-bits-out-of-range",
            Reason::PhysBitsOn32BitCpu { .. } => "phys-bits-on-32-bit-cpu",
            Reason::GuestPhysBitsOutOfRange { .. } => "guest-phys-bits-out-of-range",
            Reason::TooManyVcpus { .. } => "too-many-vcpus",
            Reason::QemuServerRefuses(_) => "qemu-server-refuses-start",
            Reason::MachineNewerThanQemu { .. } => "machine-newer-than-qemu",
        }
    }

    /// Flags this reason says are missing, if any.
    #[must_use]
    pub fn missing_flags(&self) -> &[String] {
        match self {
            Reason::MissingFlags(f) => f,
            Reason::HostFlagsNotSubset(f) => f,
            _ => &[],
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::MissingFlags(flags) => write!(f, "missing flags: {}", flags.join(", ")),
            Reason::VendorChange { source, target } => write!(
                f,
                "vendor change {source} -> {target}: this CPU type shows the host's vendor, which would change under the running guest"
            ),
            Reason::PhysBitsTooLarge {
                requested,
                target,
                source,
            } => {
                write!(
                    f,
                    "phys-bits={requested} is larger than the target's {target} physical address bits"
                )?;
                if let Some(s) = source {
                    write!(f, " (the source has {s})")?;
                }
                f.write_str(": the running guest was told it may use addresses up to that width and may already use some above the target's, which KVM there cannot map; QEMU only warns at a fresh start, so stop the VM and start it on the target instead")
            }
            Reason::PhysBitsHostDiffers { source, target } => write!(
                f,
                "phys-bits=host with different widths: source {source} bits, target {target} bits"
            ),
            Reason::HostFlagsNotSubset(flags) => write!(
                f,
                "the source CPU gives the guest flags the target lacks: {}",
                flags.join(", ")
            ),
            Reason::NestedVirtAcrossVendors { source, target } => write!(
                f,
                "nested-virt across vendors: the guest has {source} on the source, the target only offers {target}"
            ),
            Reason::HugepagesWithoutPdpe1gb => {
                f.write_str("1 GiB hugepages need pdpe1gb, which the target lacks")
            }
            Reason::NoKvm => f.write_str(
                "the node has no usable KVM: its /proc/cpuinfo lists neither vmx nor svm (virtualisation off in the firmware, or a virtual machine without nested virtualisation), so Proxmox VE refuses to start KVM guests there (\"KVM virtualisation configured, but not available\"); only VMs with `kvm: 0` run there",
            ),
            Reason::HostCpuNeedsKvm => f.write_str(
                "cpu type host with `kvm: 0`: QEMU refuses the host model under TCG (\"CPU model 'host' requires KVM or HVF\"), on every node",
            ),
            Reason::PhysBitsOutOfRange { requested } => write!(
                f,
                "phys-bits={requested}: QEMU accepts 32 to 52 for a 64-bit CPU and refuses to start with any other value (\"phys-bits should be between 32 and 52\"), on every node"
            ),
            Reason::PhysBitsOn32BitCpu { cputype } => write!(
                f,
                "{cputype} is a 32-bit CPU type, for which QEMU refuses any phys-bits (\"phys-bits is not user-configurable in 32 bit\"), on every node"
            ),
            Reason::GuestPhysBitsOutOfRange { requested, limit } => write!(
                f,
                "guest-phys-bits={requested}: QEMU accepts 32 up to the guest's physical address width, {limit} bits here, and refuses to start otherwise (\"guest-phys-bits should be between 32 and {limit}\")"
            ),
            Reason::TooManyVcpus { processors, .. } => write!(
                f,
                "more vCPUs (sockets × cores) than the node's {processors} logical CPUs: qemu-server refuses to start it (\"MAX {processors} vcpus allowed per VM on this node\")"
            ),
            Reason::QemuServerRefuses(why) => write!(f, "qemu-server refuses to start it here: {why}"),
            Reason::MachineNewerThanQemu { machine, qemu } => write!(
                f,
                "the guest runs with machine version {machine}, newer than this node's QEMU {qemu}, which cannot run it"
            ),
            Reason::HyperVNeedsIntelVmx { flag } => write!(
                f,
                "{flag} needs Intel VT-x with kvm_intel's nested virtualisation on: only KVM's Intel module implements the enlightened VMCS, and QEMU refuses to start without it (\"Hyper-V enlightened VMCS is not supported by kernel\")"
            ),
        }
    }
}

/// The three possible answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Safe.
    Compatible,
    /// Unsafe, with reasons.
    Incompatible,
    /// Cannot be decided from the data at hand.
    Unknown,
}

impl Outcome {
    /// Stable identifier for JSON and text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Compatible => "compatible",
            Outcome::Incompatible => "incompatible",
            Outcome::Unknown => "unknown",
        }
    }
}

/// A verdict with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// The answer.
    pub outcome: Outcome,
    /// Why incompatible (empty otherwise).
    pub reasons: Vec<Reason>,
    /// Why unknown (empty otherwise).
    pub unknown: Vec<String>,
    /// Things worth knowing that do not change the answer.
    pub notes: Vec<String>,
    /// Which view of the target decided: "from /proc/cpuinfo" or
    /// "checked with QEMU 7.2.22 under KVM".
    pub checked_with: String,
    /// The named model's vendor when it is not the host's (the guest then
    /// sees that vendor; also said in `notes`), so that listings can say it
    /// once for all such models.
    pub model_vendor: Option<String>,
}

impl Verdict {
    /// Every missing flag named by any reason, sorted, deduplicated.
    #[must_use]
    pub fn missing_flags(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .reasons
            .iter()
            .flat_map(|r| r.missing_flags().iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The reasons in one line, or why the answer is unknown when there
    /// are none: what the audit's cells and the decision's lists of other
    /// nodes say after a node's name.
    #[must_use]
    pub fn summary(&self) -> String {
        if self.reasons.is_empty() {
            return self.unknown.join("; ");
        }
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// JSON fragment shared by every command that reports a verdict.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "verdict": self.outcome.as_str(),
            "missing_flags": self.missing_flags(),
            "reasons": self.reasons.iter().map(|r| json!({"code": r.code(), "message": r.to_string()})).collect::<Vec<_>>(),
            "unknown": self.unknown,
            "notes": self.notes,
            "checked_with": self.checked_with,
        })
    }
}

/// Decides whether `target` can give the VM described by `req` its CPU:
/// every applicable row of [`rules::RULES`], in order.
#[must_use]
pub fn judge(req: &Requirement, target: &Capability, question: Question<'_>) -> Verdict {
    judge_knowing(req, target, question, Known::default())
}

/// What a `host` or `max` guest cold-started on `source` was given that
/// `target` lacks (rule `host-flags-subset`): the same for every such
/// requirement, so a caller judging many of them asks it once per pair of
/// nodes and gives it to [`judge_knowing`].
#[must_use]
pub fn host_lacking(source: &Capability, target: &Capability) -> Arc<[String]> {
    target.missing_of_set(&source.features().present).into()
}

/// The features `req` needs checked against `target` (rule `features`):
/// the same for a start and any live migration there, so a caller judging
/// both asks it once and gives it to [`judge_knowing`].
#[must_use]
pub fn feature_check(req: &Requirement, target: &Capability) -> FeatureCheck {
    target.check_features(&req.base, &required_features(req, target))
}

/// What a caller judging many questions worked out once for several of
/// them ([`judge_knowing`]); what is `None` is worked out where needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// [`host_lacking`] of the live migration's source and the target.
    pub host_lacking: Option<&'a Arc<[String]>>,
    /// [`feature_check`] of the requirement and the target.
    pub features: Option<&'a FeatureCheck>,
}

/// [`judge`], with what `known` says already worked out: the same verdict.
#[must_use]
pub fn judge_knowing(
    req: &Requirement,
    target: &Capability,
    question: Question<'_>,
    known: Known<'_>,
) -> Verdict {
    let source = match question {
        Question::Start => None,
        Question::Live { source } => source,
    };
    let under = if req.kvm { Under::Kvm } else { Under::Tcg };
    let case = Case {
        req,
        target,
        question,
        source,
        required: required_features(req, target),
        known,
    };
    let mut found = Findings::default();
    let mut source_asked = false;
    for rule in RULES.iter().filter(|r| applies(r, under)) {
        if !rule.decides_alone && !source_asked {
            source_asked = true;
            if matches!(question, Question::Live { source: None }) && needs_source(req, under) {
                found.unknown.push("the source node's CPU is not known (no cache record): the checks that compare source and target could not run".into());
            }
        }
        if let Needs::Source { when } = rule.needs {
            if source.is_none() || !when(req) {
                continue;
            }
        }
        let before = (found.reasons.len(), found.unknown.len());
        (rule.check)(&case, &mut found);
        if rule.decides_alone && before != (found.reasons.len(), found.unknown.len()) {
            break;
        }
    }
    let outcome = if !found.reasons.is_empty() {
        Outcome::Incompatible
    } else if !found.unknown.is_empty() {
        Outcome::Unknown
    } else {
        Outcome::Compatible
    };
    Verdict {
        outcome,
        reasons: found.reasons,
        unknown: found.unknown,
        notes: found.notes,
        checked_with: target.view.describe(),
        model_vendor: found.model_vendor,
    }
}

/// The names of the verdict's rules, in the order they run (and their
/// findings are reported).
pub fn rule_names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.name)
}

fn applies(rule: &Rule, under: Under) -> bool {
    rule.under == Under::Either || rule.under == under
}

/// Whether a live decision on this VM depends on knowing the source: some
/// rule that applies to it says so in its row.
/// Whether what the VM's running guest was given depends on the node it
/// was cold-started on (`host`, `max`, `nested-virt`, `phys-bits=host`, a
/// vendor taken from the host): then a live migration's safety cannot be
/// judged without the source's CPU.
#[must_use]
pub fn depends_on_source(req: &Requirement) -> bool {
    needs_source(req, if req.kvm { Under::Kvm } else { Under::Tcg })
}

fn needs_source(req: &Requirement, under: Under) -> bool {
    RULES
        .iter()
        .filter(|r| applies(r, under))
        .any(|r| matches!(r.needs, Needs::Source { when } if when(req)))
}

/// The requirement's features, plus vmx or svm for `nested-virt` by the
/// target's KVM module (borrowed unless `nested-virt` adds to them: this
/// runs for every node).
fn required_features<'a>(req: &'a Requirement, target: &Capability) -> Cow<'a, BTreeSet<String>> {
    // Asked only for nested-virt: the node's KVM module is a lookup.
    let nested = (req.kvm && req.nested_virt)
        .then(|| target.nested_flag())
        .flatten();
    match nested {
        Some(flag) => {
            let mut with = req.features.clone();
            with.insert(flag.to_string());
            Cow::Owned(with)
        }
        None => Cow::Borrowed(&req.features),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cpu::capability::View;
    use crate::cpu::custom_models::CustomModels;
    use crate::cpu::flags::HostFeatures;
    use crate::cpu::requirement::from_cpu_value;

    /// A KVM host (`vmx` on Intel, `svm` on AMD) whose present features are
    /// kvm64's plus `extra` (QEMU names).
    fn host(vendor: &str, bits: u32, extra: &str) -> Capability {
        let kvm = if vendor == "GenuineIntel" {
            "vmx"
        } else {
            "svm"
        };
        bare_host(vendor, bits, &format!("{kvm} {extra}"))
    }

    /// As [`host`], without the virtualisation flag unless `extra` has it.
    pub(crate) fn bare_host(vendor: &str, bits: u32, extra: &str) -> Capability {
        let none = CustomModels::default();
        let mut present: BTreeSet<String> = from_cpu_value("x86-64-v3", &none).features;
        present.extend(from_cpu_value("kvm64", &none).features);
        present.extend(
            crate::cpu::flags::KVM_PROVIDED
                .iter()
                .map(|s| (*s).to_string()),
        );
        present.extend(extra.split_whitespace().map(str::to_string));
        Capability::new(
            vendor,
            format!("{vendor} test CPU"),
            Some((6, 85)),
            Some(bits),
            HostFeatures {
                present,
                unverifiable: BTreeSet::from(["fzrm".to_string()]),
            },
            View::Cpuinfo,
        )
    }

    const INTEL: &str = "GenuineIntel";
    const AMD: &str = "AuthenticAMD";

    struct Case {
        name: &'static str,
        cpu: &'static str,
        hugepages_1g: bool,
        source: Option<Capability>,
        live: bool,
        target: Capability,
        outcome: Outcome,
        codes: &'static [&'static str],
        missing: &'static [&'static str],
    }

    fn case(name: &'static str, cpu: &'static str, target: Capability) -> Case {
        Case {
            name,
            cpu,
            hugepages_1g: false,
            source: None,
            live: false,
            target,
            outcome: Outcome::Compatible,
            codes: &[],
            missing: &[],
        }
    }

    impl Case {
        fn live(mut self, source: Capability) -> Self {
            self.live = true;
            self.source = Some(source);
            self
        }
        fn live_unknown_source(mut self) -> Self {
            self.live = true;
            self
        }
        fn hugepages(mut self) -> Self {
            self.hugepages_1g = true;
            self
        }
        fn refused(
            mut self,
            codes: &'static [&'static str],
            missing: &'static [&'static str],
        ) -> Self {
            self.outcome = Outcome::Incompatible;
            self.codes = codes;
            self.missing = missing;
            self
        }
        fn unknown(mut self) -> Self {
            self.outcome = Outcome::Unknown;
            self
        }
    }

    #[test]
    fn every_rule_has_its_own_name() {
        let names: Vec<&str> = rule_names().collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')));
    }

    #[test]
    fn rules_deciding_alone_run_first() {
        // A rule that decides alone after one that only adds notes would
        // leave those notes on a verdict they do not belong to.
        let first_other = RULES.iter().position(|r| !r.decides_alone).unwrap();
        assert!(RULES[first_other..].iter().all(|r| !r.decides_alone));
    }

    #[test]
    fn verdict_table() {
        let v4 = "avx512f avx512bw avx512cd avx512dq avx512vl";
        let cases = vec![
            case("v3 type on v3 host", "x86-64-v3", host(INTEL, 46, "")),
            case("v4 type on v3 host", "x86-64-v4", host(INTEL, 46, "")).refused(
                &["missing-flags"],
                &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
            ),
            case("v4 type on v4 host", "x86-64-v4", host(INTEL, 46, v4)),
            case(
                "avx512f without avx512vl",
                "x86-64-v4",
                host(INTEL, 46, "avx512f avx512bw avx512cd avx512dq"),
            )
            .refused(&["missing-flags"], &["avx512vl"]),
            case(
                "vm flag +pdpe1gb missing",
                "x86-64-v3,flags=+pdpe1gb",
                host(INTEL, 46, ""),
            )
            .refused(&["missing-flags"], &["pdpe1gb"]),
            case(
                "vm flag -pcid removes a need",
                "x86-64-v3,flags=-pcid",
                host(INTEL, 46, ""),
            ),
            case(
                "kvm64 live Intel -> AMD is a vendor change",
                "kvm64",
                host(AMD, 48, ""),
            )
            .live(host(INTEL, 46, ""))
            .refused(&["vendor-change"], &[]),
            case(
                "x86-64-v2-AES live Intel -> AMD is a vendor change",
                "x86-64-v2-AES",
                host(AMD, 48, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["vendor-change"], &[]),
            case(
                "kvm64 start on another vendor is fine",
                "kvm64",
                host(AMD, 48, ""),
            ),
            case(
                "kvm64 live without source record is unknown",
                "kvm64",
                host(INTEL, 46, ""),
            )
            .live_unknown_source()
            .unknown(),
            case(
                "phys-bits larger than target starts",
                "x86-64-v3,phys-bits=48",
                host(INTEL, 46, ""),
            ),
            case(
                "phys-bits larger than target, live from a wider source",
                "x86-64-v3,phys-bits=48",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["phys-bits-too-large"], &[]),
            case(
                "phys-bits equal to target",
                "x86-64-v3,phys-bits=46",
                host(INTEL, 46, ""),
            ),
            case(
                "phys-bits=host different widths live",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 48, ""))
            .refused(&["phys-bits-host-differs"], &[]),
            case(
                "phys-bits=host same width live",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 46, "")),
            case(
                "phys-bits=host on start",
                "x86-64-v3,phys-bits=host",
                host(INTEL, 39, ""),
            ),
            case(
                "host: source flags not on target",
                "host",
                host(INTEL, 46, ""),
            )
            .live(host(INTEL, 46, v4))
            .refused(
                &["host-flags-not-subset"],
                &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
            ),
            case("host: source subset of target", "host", host(INTEL, 46, v4))
                .live(host(INTEL, 46, "")),
            case("max behaves like host", "max", host(INTEL, 46, ""))
                .live(host(INTEL, 46, "avx512f"))
                .refused(&["host-flags-not-subset"], &["avx512f"]),
            // The guest on the Intel source has vmx (nested), which AMD lacks.
            case("host across vendors", "host", host(AMD, 46, ""))
                .live(host(INTEL, 46, ""))
                .refused(&["vendor-change", "host-flags-not-subset"], &["vmx"]),
            case(
                "nested-virt across vendors",
                "x86-64-v3,flags=+nested-virt",
                host(AMD, 48, "svm"),
            )
            .live(host(INTEL, 48, "vmx"))
            .refused(&["vendor-change", "nested-virt-across-vendors"], &[]),
            case(
                "nested-virt on a node without KVM",
                "x86-64-v3,flags=+nested-virt",
                bare_host(INTEL, 46, ""),
            )
            .refused(&["no-kvm"], &[]),
            case(
                "nested-virt on Intel with vmx",
                "x86-64-v3,flags=+nested-virt",
                host(INTEL, 46, "vmx"),
            ),
            case(
                "1 GiB hugepages without pdpe1gb",
                "x86-64-v3",
                host(INTEL, 46, ""),
            )
            .hugepages()
            .refused(&["hugepages-without-pdpe1gb"], &[]),
            case(
                "1 GiB hugepages with pdpe1gb",
                "x86-64-v3",
                host(INTEL, 46, "pdpe1gb"),
            )
            .hugepages(),
            case("unknown model", "NoSuchCPU-v9", host(INTEL, 46, "")).unknown(),
            case(
                "unknown flag",
                "x86-64-v3,flags=+no-such-flag",
                host(INTEL, 46, ""),
            )
            .unknown(),
            case(
                "unverifiable feature is a note, not a refusal",
                "x86-64-v3,flags=+fzrm",
                host(INTEL, 46, ""),
            ),
        ];
        for c in cases {
            let mut req = from_cpu_value(c.cpu, &CustomModels::default());
            req.hugepages_1g = c.hugepages_1g;
            let mode = if c.live {
                Question::Live {
                    source: c.source.as_ref(),
                }
            } else {
                Question::Start
            };
            let v = judge(&req, &c.target, mode);
            assert_eq!(v.outcome, c.outcome, "{}: {v:?}", c.name);
            let codes: Vec<&str> = v.reasons.iter().map(Reason::code).collect();
            assert_eq!(codes, c.codes, "{}", c.name);
            assert_eq!(v.missing_flags(), c.missing, "{}", c.name);
        }
    }

    #[test]
    fn unverifiable_features_are_named_in_a_note() {
        let req = from_cpu_value("x86-64-v3,flags=+fzrm", &CustomModels::default());
        let v = judge(&req, &host(INTEL, 46, ""), Question::Start);
        assert!(v.notes.iter().any(|n| n.contains("fzrm")), "{v:?}");
    }

    #[test]
    fn named_model_keeps_its_vendor_across_hosts() {
        // Proxmox forces vendor= for named models, so Intel->AMD is no vendor change.
        let req = from_cpu_value("x86-64-v2", &CustomModels::default());
        assert!(req.vendor_from_host());
        let req = from_cpu_value("Nehalem", &CustomModels::default());
        assert!(!req.vendor_from_host(), "{req:?}");
    }
}
