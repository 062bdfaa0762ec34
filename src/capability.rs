//! What one node can give a guest: [`Capability`].
//!
//! Built from /proc/cpuinfo today; a node's record may later come from QEMU's
//! own answer under KVM instead (`View::QemuKvm`). The verdict only ever sees
//! this type, so it does not care where the facts came from.

use std::collections::BTreeSet;

use crate::cpuinfo::CpuInfo;
use crate::flags::{self, HostFeatures};

/// Where a capability's feature set came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Derived from /proc/cpuinfo through the flag rules.
    Cpuinfo,
    /// QEMU's `query-cpu-model-expansion` of `host` under KVM.
    QemuKvm,
}

impl View {
    /// The stable name used in JSON and text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            View::Cpuinfo => "cpuinfo",
            View::QemuKvm => "qemu-kvm",
        }
    }
}

/// A node's CPU as far as guests are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// CPUID vendor string.
    pub vendor: String,
    /// Marketing name, for messages.
    pub model_name: String,
    /// CPU family and model, to tell identical hosts apart.
    pub family_model: Option<(u32, u32)>,
    /// Physical address bits.
    pub phys_bits: Option<u32>,
    /// QEMU features present and unverifiable.
    pub features: HostFeatures,
    /// Where the features came from.
    pub view: View,
}

impl Capability {
    /// Derives a capability from parsed /proc/cpuinfo.
    #[must_use]
    pub fn from_cpuinfo(info: &CpuInfo) -> Self {
        Capability {
            vendor: info.vendor.clone(),
            model_name: info.model_name.clone(),
            family_model: info.family.zip(info.model),
            phys_bits: info.phys_bits,
            features: flags::host_features(info),
            view: View::Cpuinfo,
        }
    }

    /// Whether the host proves it has `feature` (canonical QEMU name).
    #[must_use]
    pub fn has(&self, feature: &str) -> bool {
        self.features.present.contains(feature)
    }

    /// Features of `wanted` this host lacks (unverifiable ones excluded).
    #[must_use]
    pub fn missing<'a>(&self, wanted: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        wanted
            .into_iter()
            .filter(|f| !self.has(f) && !self.features.unverifiable.contains(*f))
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
            .filter(|f| self.features.unverifiable.contains(*f))
            .cloned()
            .collect()
    }

    /// Intel or AMD virtualisation flag name, for `nested-virt`.
    #[must_use]
    pub fn nested_flag(&self) -> Option<&'static str> {
        match self.vendor.as_str() {
            "GenuineIntel" => Some("vmx"),
            "AuthenticAMD" | "HygonGenuine" => Some("svm"),
            _ => None,
        }
    }
}
