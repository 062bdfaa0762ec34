//! `inspect --probe kvm|tcg`: QEMU's answer beside /proc/cpuinfo's, each
//! difference between the two said once (issue 23: the same 50-flag list
//! was printed as a note and again as the disagreement, and every CPU type
//! repeated the other view's reasons).

use std::fmt::Write as _;
use std::time::Duration;

use crate::app::cli::InspectArgs;
use crate::cache::truth;
use crate::cpu::capability::{Capability, Disagreement};
use crate::cpu::cpudata;
use crate::cpu::cpuinfo::CpuInfo;
use crate::cpu::level::{self, Floor, Level};
use crate::cpu::verdict::{Outcome, Verdict};
use crate::error::Result;
use crate::reach::kvm_probe::{self, ProbeOptions, QemuReport};

use super::inspect::judge_all;

/// Features named before a longer list is counted.
const FLAGS_SHOWN: usize = 8;

/// The KVM side of `inspect --probe`.
pub(super) struct KvmSide {
    pub(super) view: QemuReport,
    pub(super) level: Level,
    pub(super) types: Vec<(String, Verdict)>,
    pub(super) disagreement: Disagreement,
}

impl KvmSide {
    /// Asks this machine's QEMU, when `--probe` says so.
    ///
    /// # Errors
    /// The probe's ([`kvm_probe::ProbeError`]).
    pub(super) fn probe(
        args: &InspectArgs,
        info: &CpuInfo,
        cap: &Capability,
    ) -> Result<Option<KvmSide>> {
        let Some(accel) = args.probe else {
            return Ok(None);
        };
        let opts = ProbeOptions {
            qemu: args.qemu.clone(),
            timeout: Duration::from_secs(args.probe_timeout),
            ..ProbeOptions::new(accel)
        };
        let view = kvm_probe::probe_local(&opts)?;
        let kcap = Capability::from_qemu_report(&view, Some(info));
        let all = cpudata::index().feature_names();
        let disagreement = Disagreement::between(cap.features(), |f| kcap.has(f), &all);
        Ok(Some(KvmSide {
            level: level::of(&kcap),
            types: judge_all(&kcap),
            view,
            disagreement,
        }))
    }
}

/// The QEMU block of the text: what answered, then where /proc/cpuinfo
/// says otherwise, each difference once. QEMU's answer decides, so its
/// level is the `Level:` line above (`level`); `cap` is the cpuinfo view.
pub(super) fn write_kvm(s: &mut String, k: &KvmSide, level: &Level, cap: &Capability) {
    let v = &k.view;
    let package = if v.qemu_package.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.qemu_package)
    };
    let label = v.accel.label();
    let _ = writeln!(
        s,
        "\n{label} view:   QEMU {}{package} under {label}: {} CPU features, {} models",
        v.qemu_version,
        v.host_features.len(),
        v.models.len()
    );
    let mut lines = Vec::new();
    let alone = level::of(cap);
    // Below the floor for another reason (no vmx/svm listed, yet KVM
    // works) is a difference too, though both are `below-kvm64`.
    if truth::level_name(&alone) != truth::level_name(level)
        || alone.floor.code() != level.floor.code()
    {
        let mut line = format!(
            "/proc/cpuinfo alone would say {}",
            truth::level_name(&alone)
        );
        if alone.floor == Floor::NoKvm && level.floor != Floor::NoKvm {
            let _ = write!(
                line,
                " (it lists neither vmx nor svm, yet QEMU runs guests under {label})"
            );
        }
        lines.push(line);
    }
    let notes = k.disagreement.notes_within(label, FLAGS_SHOWN);
    let long = [
        &k.disagreement.cpuinfo_only,
        &k.disagreement.kvm_only,
        &k.disagreement.settled_present,
    ]
    .iter()
    .any(|l| l.len() > FLAGS_SHOWN);
    lines.extend(notes);
    if long {
        lines.push(format!(
            "(every flag: `pve-cpuguard inspect --probe {} -o json`, kvm.disagreement)",
            v.accel.as_str()
        ));
    }
    if lines.is_empty() {
        let _ = writeln!(s, "Disagree:   nothing (both views give the same features)");
    }
    for (i, n) in lines.iter().enumerate() {
        let head = if i == 0 { "Disagree:" } else { "" };
        let _ = writeln!(s, "{head:<11} {n}");
    }
}

/// /proc/cpuinfo's answer for a type where it is not QEMU's (`yes`, `no`,
/// `unknown`); `None` where both answer alike.
pub(super) fn other_answer(kvm: &Verdict, cpuinfo: &Verdict) -> Option<&'static str> {
    (kvm.outcome != cpuinfo.outcome).then_some(match cpuinfo.outcome {
        Outcome::Compatible => "yes",
        Outcome::Incompatible => "no",
        Outcome::Unknown => "unknown",
    })
}
