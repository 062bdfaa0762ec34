//! Node capabilities for unit tests, shared by every layer's tests: a KVM
//! host with exactly the features of a CPU level.

use std::collections::BTreeSet;

use crate::cpu::capability::{Capability, View};
use crate::cpu::custom_models::CustomModels;
use crate::cpu::flags::HostFeatures;
use crate::cpu::requirement::from_cpu_value;

/// A KVM host of `vendor` (with its module's flag, `vmx` or `svm`) that has
/// the features of `level` and of kvm64, as its /proc/cpuinfo view.
pub(crate) fn kvm_host(vendor: &str, level: &str) -> Capability {
    let none = CustomModels::default();
    let mut present: BTreeSet<String> = from_cpu_value(level, &none).features;
    present.extend(from_cpu_value("kvm64", &none).features);
    present.insert(
        if vendor == "AuthenticAMD" {
            "svm"
        } else {
            "vmx"
        }
        .into(),
    );
    Capability::new(
        vendor,
        "test",
        None,
        Some(46),
        HostFeatures {
            present,
            unverifiable: BTreeSet::new(),
        },
        View::Cpuinfo,
    )
}
