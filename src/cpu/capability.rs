//! What one node can give a guest: [`Capability`].
//!
//! Built from /proc/cpuinfo ([`Capability::from_cpuinfo`]) or from QEMU's
//! own answer under KVM ([`Capability::from_qemu_report`], `View::QemuKvm`).
//! The verdict only ever sees this type; [`Capability::check_features`] is
//! the one place where the two views are told apart.

use std::collections::{BTreeMap, BTreeSet};

use once_cell::sync::OnceCell;

use crate::cpu::cpudata;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::flags::{self, HostFeatures, HostTest};
use crate::cpu::launch::QemuVersion;
use crate::cpu::qemu_report::{Accel, QemuReport};
use crate::cpu::requirement::GuestCpu;
use crate::cpu::word_list::WordList;

/// Where a capability's feature set came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Derived from /proc/cpuinfo through the flag rules.
    Cpuinfo,
    /// QEMU's `query-cpu-model-expansion` of `host` under KVM, with its
    /// per-model answers.
    QemuKvm(Box<QemuAnswers>),
}

impl View {
    /// The stable name used in JSON and text.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            View::Cpuinfo => "cpuinfo",
            View::QemuKvm(q) if q.accel == Accel::Tcg => "qemu-tcg",
            View::QemuKvm(_) => "qemu-kvm",
        }
    }

    /// How a verdict on this view was reached, for people.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            View::Cpuinfo => "from /proc/cpuinfo".into(),
            View::QemuKvm(q) => format!(
                "checked with QEMU {} under {}",
                q.qemu_version,
                q.accel.label()
            ),
        }
    }
}

/// What QEMU said beyond the host feature set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuAnswers {
    /// QEMU version that answered.
    pub qemu_version: String,
    /// Accelerator the answers are for.
    pub accel: Accel,
    /// Model name → features QEMU cannot give it (canonical spelling).
    pub models: BTreeMap<String, Vec<String>>,
    /// The same node's features as /proc/cpuinfo shows them, if known, to
    /// explain where the views disagree.
    pub cpuinfo: Option<HostFeatures>,
}

/// The outcome of checking required features against one capability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureCheck {
    /// Required features the node cannot give (sorted).
    pub missing: Vec<String>,
    /// Required features the view can neither confirm nor deny.
    pub unverifiable: BTreeSet<String>,
    /// Explanations: which answer was used, where the views disagree.
    pub notes: Vec<String>,
}

/// Where /proc/cpuinfo and QEMU under KVM disagree about a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disagreement {
    /// /proc/cpuinfo shows them, KVM cannot give them.
    pub cpuinfo_only: BTreeSet<String>,
    /// KVM gives them, /proc/cpuinfo does not show them.
    pub kvm_only: BTreeSet<String>,
    /// /proc/cpuinfo cannot show them; KVM gives them.
    pub settled_present: BTreeSet<String>,
}

impl Disagreement {
    /// Compares the two views of one host over `features`; `kvm_gives`
    /// answers for the KVM side.
    #[must_use]
    pub fn between(
        cpuinfo: &HostFeatures,
        kvm_gives: impl Fn(&str) -> bool,
        features: &BTreeSet<String>,
    ) -> Self {
        let mut d = Disagreement::default();
        for f in features {
            let kvm = kvm_gives(f);
            if cpuinfo.unverifiable.contains(f) {
                if kvm {
                    d.settled_present.insert(f.clone());
                }
            } else if cpuinfo.present.contains(f) && !kvm {
                d.cpuinfo_only.insert(f.clone());
            } else if !cpuinfo.present.contains(f) && kvm {
                d.kvm_only.insert(f.clone());
            }
        }
        d
    }

    /// One note per kind of disagreement, for `label` ("KVM" or "TCG").
    #[must_use]
    pub fn notes(&self, label: &str) -> Vec<String> {
        self.notes_within(label, usize::MAX)
    }

    /// Whether `note` is one of [`Disagreement::notes`] (whatever the
    /// features and label): a verdict carries them for the features its
    /// type needs, which a report that states the disagreement once (`inspect
    /// --probe`) leaves out.
    #[must_use]
    pub fn is_note(note: &str) -> bool {
        (note.starts_with("/proc/cpuinfo shows ") && note.ends_with(" to a guest"))
            || note.contains(" although /proc/cpuinfo does not show ")
            || note.starts_with("/proc/cpuinfo cannot show ")
    }

    /// [`Disagreement::notes`], a list of more than `max` features said by
    /// its count and the first `max` (`50 flags, e.g. abm, adx, …`).
    #[must_use]
    pub fn notes_within(&self, label: &str, max: usize) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.cpuinfo_only.is_empty() {
            notes.push(format!(
                "/proc/cpuinfo shows {} but {label} cannot give {} to a guest",
                spell(&self.cpuinfo_only, max),
                them(&self.cpuinfo_only)
            ));
        }
        if !self.kvm_only.is_empty() {
            notes.push(format!(
                "{label} offers {} although /proc/cpuinfo does not show {}",
                spell(&self.kvm_only, max),
                them(&self.kvm_only)
            ));
        }
        if !self.settled_present.is_empty() {
            notes.push(format!(
                "/proc/cpuinfo cannot show {}; {label} offers {}",
                spell(&self.settled_present, max),
                them(&self.settled_present)
            ));
        }
        notes
    }
}

fn them(set: &BTreeSet<String>) -> &'static str {
    if set.len() == 1 {
        "it"
    } else {
        "them"
    }
}

/// Canonical names, with the /proc/cpuinfo spelling where it differs; more
/// than `max` of them as their count and the first `max`.
fn spell(set: &BTreeSet<String>, max: usize) -> String {
    let names = set
        .iter()
        .take(max)
        .map(|f| match flags::linux_name(f) {
            Some(l) if l != f => format!("{f} ({l})"),
            _ => f.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    if set.len() > max {
        format!("{} flags, e.g. {names}, …", set.len())
    } else {
        names
    }
}

/// The KVM module a node runs guests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmModule {
    /// `kvm_intel` (Intel VT-x; also Zhaoxin/Centaur).
    Vmx,
    /// `kvm_amd` (AMD-V; also Hygon).
    Svm,
}

/// CPUID vendor strings of the x86 CPUs KVM runs on.
const X86_VENDORS: &[&str] = &[
    "GenuineIntel",
    "AuthenticAMD",
    "HygonGenuine",
    "CentaurHauls",
    "  Shanghai  ",
    "Shanghai",
];

/// Whether `vendor` is the CPUID vendor string of an x86 CPU that KVM
/// runs on (see [`Capability::x86_vendor`]).
#[must_use]
pub fn is_x86_vendor(vendor: &str) -> bool {
    X86_VENDORS.contains(&vendor)
}

/// A node's CPU as far as guests are concerned.
///
/// The feature set of a /proc/cpuinfo view is derived on first use: a
/// decision that only asks about the few features a VM needs
/// ([`Capability::has`], [`Capability::missing`]) evaluates just those, which
/// is what keeps the hookscript's survey of every node cheap.
#[derive(Debug, Clone)]
pub struct Capability {
    /// CPUID vendor string.
    pub vendor: String,
    /// Marketing name, for messages.
    pub model_name: String,
    /// CPU family and model, to tell identical hosts apart.
    pub family_model: Option<(u32, u32)>,
    /// Physical address bits.
    pub phys_bits: Option<u32>,
    /// QEMU features present and unverifiable (see [`Capability::features`]).
    features: OnceCell<HostFeatures>,
    /// [`Capability::kvm_module`], worked out on first use: rules ask it of
    /// every node for every question (from `vendor`, `view` and the flags,
    /// which nothing changes once the capability is made).
    kvm_module: OnceCell<Option<KvmModule>>,
    /// The /proc/cpuinfo lists the features are derived from, if any.
    flags: Option<HostFlags>,
    /// Where the features came from.
    pub view: View,
    /// Logical CPUs (/proc/cpuinfo's processors), if known: qemu-server
    /// starts no VM with more vCPUs.
    pub processors: Option<u32>,
    /// The node's QEMU version, when its QEMU answered.
    pub qemu_version: Option<QemuVersion>,
}

/// The node's logical CPUs, when the /proc/cpuinfo read lists them all.
fn processors(info: &CpuInfo) -> Option<u32> {
    info.logical_cpus
}

/// A host's /proc/cpuinfo `flags` and `bugs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFlags {
    /// Linux flag names.
    pub flags: WordList,
    /// Linux bug names, when the kernel printed the line.
    pub bugs: Option<WordList>,
}

impl HostFlags {
    /// The answer for one canonical QEMU feature (see [`flags::host_answer`]).
    #[must_use]
    pub fn answer(&self, feature: &str) -> Option<bool> {
        let (has, host_bug) = self.lookups();
        flags::host_answer(feature, has, host_bug)
    }

    /// Every feature's answer.
    #[must_use]
    pub fn features(&self) -> HostFeatures {
        let (has, host_bug) = self.lookups();
        flags::host_features_with(has, host_bug)
    }

    /// The flag and bug lookups the rules take.
    fn lookups(
        &self,
    ) -> (
        impl Fn(&str) -> bool + '_,
        Option<impl Fn(&str) -> bool + '_>,
    ) {
        (
            |f: &str| self.flags.contains(f),
            self.bugs.as_ref().map(|b| move |x: &str| b.contains(x)),
        )
    }
}

impl PartialEq for Capability {
    fn eq(&self, other: &Self) -> bool {
        self.same_cpu(other)
            && self.processors == other.processors
            && self.qemu_version == other.qemu_version
    }
}

impl Capability {
    /// Whether both describe the same CPU (what a guest of `cpu: host`
    /// sees), whatever the node's size and QEMU version.
    #[must_use]
    pub fn same_cpu(&self, other: &Self) -> bool {
        self.vendor == other.vendor
            && self.model_name == other.model_name
            && self.family_model == other.family_model
            && self.phys_bits == other.phys_bits
            && self.view == other.view
            && self.features() == other.features()
    }
}

impl Eq for Capability {}

impl Capability {
    /// A capability with a known feature set.
    #[must_use]
    pub fn new(
        vendor: impl Into<String>,
        model_name: impl Into<String>,
        family_model: Option<(u32, u32)>,
        phys_bits: Option<u32>,
        features: HostFeatures,
        view: View,
    ) -> Self {
        Capability {
            vendor: vendor.into(),
            model_name: model_name.into(),
            family_model,
            phys_bits,
            features: OnceCell::with_value(features),
            kvm_module: OnceCell::new(),
            flags: None,
            view,
            processors: None,
            qemu_version: None,
        }
    }

    /// Derives a capability from parsed /proc/cpuinfo.
    #[must_use]
    pub fn from_cpuinfo(info: &CpuInfo) -> Self {
        let mut cap = Capability::from_flags(
            info.vendor.clone(),
            info.model_name.clone(),
            info.family.zip(info.model),
            info.phys_bits,
            HostFlags {
                flags: info.flags.clone(),
                bugs: info.bugs.clone(),
            },
        );
        cap.processors = processors(info);
        cap
    }

    /// A /proc/cpuinfo view from its parts (a cache record has them as
    /// lists already).
    #[must_use]
    pub fn from_flags(
        vendor: String,
        model_name: String,
        family_model: Option<(u32, u32)>,
        phys_bits: Option<u32>,
        flags: HostFlags,
    ) -> Self {
        Capability {
            vendor,
            model_name,
            family_model,
            phys_bits,
            features: OnceCell::new(),
            kvm_module: OnceCell::new(),
            flags: Some(flags),
            view: View::Cpuinfo,
            processors: None,
            qemu_version: None,
        }
    }

    /// Every QEMU feature the host gives and cannot be checked for.
    #[must_use]
    pub fn features(&self) -> &HostFeatures {
        self.features.get_or_init(|| {
            self.flags
                .as_ref()
                .map(HostFlags::features)
                .unwrap_or_default()
        })
    }

    /// `Some(true)` present, `Some(false)` absent, `None` unverifiable.
    fn answer(&self, feature: &str) -> Option<bool> {
        match (self.features.get(), &self.flags) {
            (None, Some(flags)) => flags.answer(feature),
            _ => {
                let all = self.features();
                if all.present.contains(feature) {
                    Some(true)
                } else if all.unverifiable.contains(feature) {
                    None
                } else {
                    Some(false)
                }
            }
        }
    }

    /// Derives a capability from QEMU's answer. The present features are the
    /// `true` ones of the expansion plus those QEMU/KVM give every guest
    /// ([`flags::host_test`] says `Provided`); nothing is unverifiable. The
    /// node's /proc/cpuinfo, when given, supplies the physical address
    /// width (QEMU's `host` expansion reports 0 there) and the names, and is
    /// kept to explain disagreements.
    #[must_use]
    pub fn from_qemu_report(view: &QemuReport, cpuinfo: Option<&CpuInfo>) -> Self {
        let mut present = view.host_features.clone();
        for def in &cpudata::index().data.features {
            if flags::host_test(def.qemu) == HostTest::Provided {
                present.insert(def.qemu.to_string());
            }
        }
        let pick = |q: &str, c: Option<&String>| {
            if q.is_empty() {
                c.cloned().unwrap_or_default()
            } else {
                q.to_string()
            }
        };
        Capability {
            vendor: pick(&view.host.vendor, cpuinfo.map(|i| &i.vendor)),
            model_name: pick(&view.host.model_id, cpuinfo.map(|i| &i.model_name)),
            family_model: view
                .host
                .family
                .zip(view.host.model)
                .or_else(|| cpuinfo.and_then(|i| i.family.zip(i.model))),
            phys_bits: cpuinfo.and_then(|i| i.phys_bits),
            features: OnceCell::with_value(HostFeatures {
                present,
                unverifiable: BTreeSet::new(),
            }),
            kvm_module: OnceCell::new(),
            flags: None,
            processors: cpuinfo.and_then(processors),
            qemu_version: QemuVersion::parse(&view.qemu_version),
            view: View::QemuKvm(Box::new(QemuAnswers {
                qemu_version: view.qemu_version.clone(),
                accel: view.accel,
                models: view.models.clone(),
                cpuinfo: cpuinfo.map(flags::host_features),
            })),
        }
    }

    /// Checks the features a VM requires. With QEMU's answers and a named
    /// model QEMU knows, the model's own features are missing exactly when
    /// QEMU lists them in `unavailable-features` (what `enforce` refuses);
    /// features the VM adds on top are checked against what KVM offers.
    /// Without QEMU's answers this is [`Capability::missing`] and
    /// [`Capability::unverifiable`].
    #[must_use]
    pub fn check_features(&self, base: &GuestCpu, required: &BTreeSet<String>) -> FeatureCheck {
        let View::QemuKvm(q) = &self.view else {
            let mut check = FeatureCheck::default();
            if let Some(all) = self.features.get() {
                // Both sets sorted: one merge rather than a lookup per
                // feature (the audit checks thousands of requirements).
                for f in required.difference(&all.present) {
                    if all.unverifiable.contains(f) {
                        check.unverifiable.insert(f.clone());
                    } else {
                        check.missing.push(f.clone());
                    }
                }
                return check;
            }
            for f in required {
                match self.answer(f) {
                    Some(true) => {}
                    Some(false) => check.missing.push(f.clone()),
                    None => {
                        check.unverifiable.insert(f.clone());
                    }
                }
            }
            return check;
        };
        let mut notes = Vec::new();
        let model = match base {
            GuestCpu::Model { qemu_model, .. } => Some(qemu_model.as_str()),
            GuestCpu::Host | GuestCpu::Max => None,
        };
        let answer = model.and_then(|m| q.models.get(m).map(|u| (m, u)));
        let mut missing: BTreeSet<String> = BTreeSet::new();
        match answer {
            Some((m, unavailable)) => {
                let idx = cpudata::index();
                let own: BTreeSet<String> = idx
                    .model_named(m)
                    .map(|model| model.features.clone())
                    .unwrap_or_default();
                for f in required {
                    let gone = if own.contains(f) {
                        unavailable.contains(f)
                    } else {
                        !self.has(f)
                    };
                    if gone {
                        missing.insert(f.clone());
                    }
                }
            }
            None => {
                if let (Some(m), false) = (model, q.models.is_empty()) {
                    notes.push(format!(
                        "QEMU {} on this node does not define {m}; its features were checked one by one",
                        q.qemu_version
                    ));
                }
                missing.extend(required.iter().filter(|f| !self.has(f)).cloned());
            }
        }
        if let Some(cpuinfo) = &q.cpuinfo {
            let d = Disagreement::between(cpuinfo, |f| !missing.contains(f), required);
            notes.extend(d.notes(q.accel.label()));
        }
        FeatureCheck {
            missing: missing.into_iter().collect(),
            unverifiable: BTreeSet::new(),
            notes,
        }
    }

    /// Whether the host proves it has `feature` (canonical QEMU name).
    #[must_use]
    pub fn has(&self, feature: &str) -> bool {
        self.answer(feature) == Some(true)
    }

    /// Whether /proc/cpuinfo can neither confirm nor deny `feature`.
    #[must_use]
    pub fn cannot_tell(&self, feature: &str) -> bool {
        self.answer(feature).is_none()
    }

    /// [`Capability::missing`] of a whole set, such as another node's
    /// features (a `host` guest's on a live migration): once this host's
    /// features are worked out (the audit does so first), one merge of two
    /// sorted sets rather than a lookup per feature.
    #[must_use]
    pub fn missing_of_set(&self, wanted: &BTreeSet<String>) -> Vec<String> {
        match self.features.get() {
            Some(all) => wanted
                .difference(&all.present)
                .filter(|f| !all.unverifiable.contains(*f))
                .cloned()
                .collect(),
            None => self.missing(wanted),
        }
    }

    /// Features of `wanted` this host lacks (unverifiable ones excluded).
    #[must_use]
    pub fn missing<'a>(&self, wanted: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        wanted
            .into_iter()
            .filter(|f| self.answer(f) == Some(false))
            .cloned()
            .collect()
    }

    /// Features of `wanted` this host can neither confirm nor deny.
    #[must_use]
    pub fn unverifiable<'a>(
        &self,
        wanted: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<String> {
        wanted
            .into_iter()
            .filter(|f| self.cannot_tell(f))
            .cloned()
            .collect()
    }

    /// Intel or AMD virtualisation flag name, for `nested-virt`: the
    /// flag of the node's KVM module, as qemu-server resolves it from the
    /// host's /proc/cpuinfo (`CPUFlags.pm`: the first of `svm|vmx`), or by
    /// vendor where a view has no /proc/cpuinfo.
    #[must_use]
    pub fn nested_flag(&self) -> Option<&'static str> {
        match self.kvm_module() {
            Some(KvmModule::Vmx) => Some("vmx"),
            Some(KvmModule::Svm) => Some("svm"),
            None => match self.vendor.as_str() {
                "GenuineIntel" => Some("vmx"),
                "AuthenticAMD" | "HygonGenuine" => Some("svm"),
                _ => None,
            },
        }
    }

    /// Which KVM module the node runs guests with, `None` when it has no
    /// usable KVM.
    ///
    /// From /proc/cpuinfo: Linux prints `vmx`/`svm` only when the CPU has
    /// the extension and the firmware left it enabled (`arch/x86/kernel/cpu/
    /// feat_ctl.c` clears VMX when `IA32_FEAT_CTL` locks it off), and
    /// `kvm_intel`/`kvm_amd` refuse to load without it (`vmx.c`
    /// `cpu_has_kvm_support`, `svm.c` `kvm_is_svm_supported`); qemu-server
    /// then dies with "KVM virtualisation configured, but not available".
    /// QEMU's answer under KVM proves KVM works; its module is then read
    /// from the /proc/cpuinfo beside it, else from the vendor.
    #[must_use]
    pub fn kvm_module(&self) -> Option<KvmModule> {
        *self.kvm_module.get_or_init(|| self.kvm_module_now())
    }

    fn kvm_module_now(&self) -> Option<KvmModule> {
        let by_flags = |has: &dyn Fn(&str) -> bool| {
            if has("vmx") {
                Some(KvmModule::Vmx)
            } else if has("svm") {
                Some(KvmModule::Svm)
            } else {
                None
            }
        };
        let by_vendor = || match self.vendor.as_str() {
            "AuthenticAMD" | "HygonGenuine" => Some(KvmModule::Svm),
            _ => Some(KvmModule::Vmx),
        };
        match &self.view {
            View::QemuKvm(q) if q.accel != Accel::Tcg => q
                .cpuinfo
                .as_ref()
                .and_then(|c| by_flags(&|f| c.present.contains(f)))
                .or_else(by_vendor),
            // QEMU answered under TCG: the /proc/cpuinfo beside it decides;
            // without one nothing says KVM is missing.
            View::QemuKvm(q) => match &q.cpuinfo {
                Some(c) => by_flags(&|f| c.present.contains(f)),
                None => by_vendor(),
            },
            View::Cpuinfo => by_flags(&|f| self.answer(f) == Some(true)),
        }
    }

    /// Whether the vendor string is one of an x86 CPU that KVM runs on
    /// (Linux `arch/x86/kernel/cpu/`: intel.c, amd.c, hygon.c, centaur.c,
    /// zhaoxin.c). Anything else (`unknown`, a missing `vendor_id`) is not
    /// a CPU pve-cpuguard can judge.
    #[must_use]
    pub fn x86_vendor(&self) -> bool {
        is_x86_vendor(&self.vendor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<CpuInfo> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cpuinfo");
        let mut infos: Vec<CpuInfo> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| crate::reach::local::cpuinfo(&e.unwrap().path()).ok())
            .collect();
        assert!(infos.len() > 10, "the samples are there");
        // A kernel that prints no `bugs` line: the bug rules cannot tell.
        let mut old = infos[0].clone();
        old.bugs = None;
        infos.push(old);
        infos
    }

    #[test]
    fn one_feature_answers_agree_with_the_whole_set() {
        let names: Vec<&str> = cpudata::index()
            .data
            .features
            .iter()
            .map(|f| f.qemu)
            .chain(["no-such-feature", ""])
            .collect();
        for info in samples() {
            let lazy = Capability::from_cpuinfo(&info);
            let all = flags::host_features(&info);
            for f in &names {
                let expected = if all.present.contains(*f) {
                    Some(true)
                } else if all.unverifiable.contains(*f) {
                    None
                } else {
                    Some(false)
                };
                assert_eq!(lazy.answer(f), expected, "{f} on {}", info.model_name);
            }
            assert!(lazy.features.get().is_none(), "answered without the set");
            assert_eq!(lazy.features(), &all);
        }
    }

    /// A `host` guest's live migration asks what the target lacks of the
    /// source's whole set: the merge answers as a lookup per feature does,
    /// before and after the target's set is worked out.
    #[test]
    fn missing_of_a_set_is_missing_of_each_feature() {
        let infos = samples();
        let mut lacking = 0;
        for source in &infos {
            let wanted = &flags::host_features(source).present;
            for target in &infos {
                let lazy = Capability::from_cpuinfo(target);
                let expected = lazy.missing(wanted);
                lacking += expected.len();
                assert_eq!(lazy.missing_of_set(wanted), expected);
                let _ = lazy.features();
                assert_eq!(
                    lazy.missing_of_set(wanted),
                    expected,
                    "{}",
                    target.model_name
                );
            }
        }
        assert!(lacking > 0, "some sample lacks what another has");
    }

    /// Checking a requirement's features by one merge (once the host's set
    /// is worked out) finds what a lookup per feature finds, unverifiable
    /// ones apart.
    #[test]
    fn a_feature_check_is_the_same_by_merge_and_by_lookup() {
        let none = crate::cpu::custom_models::CustomModels::default();
        let mut required =
            crate::cpu::requirement::from_cpu_value("Icelake-Server", &none).features;
        required.extend(["no-such-feature".to_string(), "fzrm".to_string()]);
        let mut found = 0;
        for info in samples() {
            let lazy = Capability::from_cpuinfo(&info);
            let base = GuestCpu::Max;
            let by_lookup = lazy.check_features(&base, &required);
            let _ = lazy.features();
            let by_merge = lazy.check_features(&base, &required);
            assert_eq!(by_merge, by_lookup, "{}", info.model_name);
            found += by_merge.missing.len() + by_merge.unverifiable.len();
        }
        assert!(found > 0);
    }

    #[test]
    fn equality_does_not_depend_on_what_was_derived_yet() {
        let info = &samples()[0];
        let a = Capability::from_cpuinfo(info);
        let b = Capability::from_cpuinfo(info);
        let _ = a.features();
        assert_eq!(a, b);
        assert!(b.features.get().is_some());
    }

    #[test]
    fn every_disagreement_note_is_known_as_one() {
        let set = |l: &[&str]| l.iter().map(ToString::to_string).collect::<BTreeSet<_>>();
        let d = Disagreement {
            cpuinfo_only: set(&["pni", "sse4.1"]),
            kvm_only: set(&["cx16"]),
            settled_present: set(&["umip"]),
        };
        for label in ["KVM", "TCG"] {
            let notes = d.notes(label);
            assert_eq!(notes.len(), 3);
            assert!(notes.iter().all(|n| Disagreement::is_note(n)), "{notes:?}");
            let short = d.notes_within(label, 1);
            assert!(short.iter().all(|n| Disagreement::is_note(n)), "{short:?}");
            assert!(
                short[0].starts_with("/proc/cpuinfo shows 2 flags, e.g. pni, …"),
                "{short:?}"
            );
        }
        assert!(!Disagreement::is_note(
            "QEMU 7.2 on this node does not define EPYC"
        ));
    }

    #[test]
    fn flags_in_any_order_are_found() {
        let f = HostFlags {
            flags: ["sse4_2", "fpu", "aes"].into_iter().collect(),
            bugs: Some(["mds", "cpu_meltdown"].into_iter().collect()),
        };
        assert_eq!(f.answer("aes"), Some(true));
        assert_eq!(f.answer("sse4.2"), Some(true));
        assert_eq!(f.answer("avx"), Some(false));
        assert_eq!(f.answer("mds-no"), Some(false));
    }
}
