//! What QEMU says one node can give a guest: the [`QemuReport`].
//!
//! /proc/cpuinfo shows the host CPU, not what KVM exposes; QEMU's answer
//! under KVM does (how it is asked is `crate::reach::kvm_probe`). These are
//! the values only, so the core can decide from a recorded answer.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The accelerator QEMU is asked about.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM: what guests really get. Needs a usable /dev/kvm.
    #[default]
    Kvm,
    /// QEMU's emulator: only for machines without KVM (tests); it does not
    /// tell what KVM can give.
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// For messages: "KVM" or "TCG".
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }

    /// The model expanded: `host` needs KVM, so TCG expands `max`.
    #[must_use]
    pub fn expanded_model(self) -> &'static str {
        match self {
            Accel::Kvm => "host",
            Accel::Tcg => "max",
        }
    }
}

/// QEMU's identification of the host CPU, from the `host` expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuHost {
    /// CPUID vendor string.
    #[serde(default)]
    pub vendor: String,
    /// CPUID family.
    #[serde(default)]
    pub family: Option<u32>,
    /// CPUID model.
    #[serde(default)]
    pub model: Option<u32>,
    /// CPUID stepping.
    #[serde(default)]
    pub stepping: Option<u32>,
    /// Brand string (`model-id`).
    #[serde(default)]
    pub model_id: String,
}

/// What QEMU says one node can give a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuReport {
    /// QEMU version, `major.minor.micro`.
    pub qemu_version: String,
    /// Distribution package version QEMU reports (may be empty).
    #[serde(default)]
    pub qemu_package: String,
    /// The accelerator the answers are for.
    pub accel: Accel,
    /// The host CPU as QEMU identifies it.
    #[serde(default)]
    pub host: QemuHost,
    /// Canonical QEMU names of the CPU features that are `true` in the
    /// expansion of `host` (of `max` under TCG).
    pub host_features: BTreeSet<String>,
    /// Every model QEMU defines → the features it cannot give that model
    /// (canonical spelling where pve-cpuguard knows the feature, QEMU's
    /// otherwise). Empty list: the model starts with `enforce`.
    pub models: BTreeMap<String, Vec<String>>,
    /// The local QEMU binary that answered, as
    /// [`crate::fsutil::identity`] gave it when probed on this node; absent
    /// for a probe over SSH. A node whose binary changed since (a QEMU
    /// upgrade) no longer trusts its record without a full reading
    /// (`crate::cache::current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

impl QemuReport {
    /// "QEMU 7.2.22 under KVM", for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("QEMU {} under {}", self.qemu_version, self.accel.label())
    }
}

/// The JSON shown by `inspect` for a view (also the cache's shape).
#[must_use]
pub fn to_json(view: &QemuReport) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}
