//! CPU types a VM can be configured with, and the features each requires.
//!
//! Three sources, all resolved to a set of canonical QEMU features:
//! - Proxmox VE's built-in abstract types `x86-64-v2`, `-v2-AES`, `-v3`,
//!   `-v4`: QEMU `qemu64` plus flags (qemu-server `CPUConfig.pm`,
//!   `$builtin_models_by_arch`, identical in 8.3.13 and 9.2.6);
//! - QEMU named models (embedded table, see [`crate::cpu::cpudata`]);
//! - flags Proxmox itself adds or removes (`get_pve_cpu_flags`): `+lahf_lm`
//!   and `+sep` for `kvm64`, `+sep` for `kvm32`, `-rdtscp` for `Opteron*`.

use std::collections::BTreeSet;

use crate::cpu::cpudata;
use crate::cpu::flags;

/// One Proxmox built-in abstract CPU type.
#[derive(Debug)]
pub struct Builtin {
    /// Name as written in `cpu:`.
    pub name: &'static str,
    /// Flags added to `qemu64`, QEMU spelling, as in CPUConfig.pm.
    pub flags: &'static [&'static str],
}

const V2: &[&str] = &["popcnt", "pni", "sse4.1", "sse4.2", "ssse3"];
const V2_AES: &[&str] = &["aes", "popcnt", "pni", "sse4.1", "sse4.2", "ssse3"];
const V3: &[&str] = &[
    "aes", "popcnt", "pni", "sse4.1", "sse4.2", "ssse3", "avx", "avx2", "bmi1", "bmi2", "f16c",
    "fma", "abm", "movbe", "xsave",
];
const V4: &[&str] = &[
    "aes", "popcnt", "pni", "sse4.1", "sse4.2", "ssse3", "avx", "avx2", "bmi1", "bmi2", "f16c",
    "fma", "abm", "movbe", "xsave", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
];

/// Proxmox VE's built-in abstract types, lowest first.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "x86-64-v2",
        flags: V2,
    },
    Builtin {
        name: "x86-64-v2-AES",
        flags: V2_AES,
    },
    Builtin {
        name: "x86-64-v3",
        flags: V3,
    },
    Builtin {
        name: "x86-64-v4",
        flags: V4,
    },
];

/// A resolved base CPU type (before VM-level flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedType {
    /// `host`: the node's own CPU.
    Host,
    /// `max`: everything the accelerator offers.
    Max,
    /// Any model with a fixed feature set.
    Model {
        /// The QEMU model actually used (`qemu64` for x86-64-vN).
        qemu_model: String,
        /// Vendor forced by Proxmox, or `None` when the guest sees the host's.
        vendor: Option<String>,
        /// Required canonical QEMU features.
        features: BTreeSet<String>,
    },
}

/// Why a CPU type could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

/// Resolves a `cputype` value (not `custom-…`) to its base requirement.
///
/// # Errors
/// Unknown names, and names Proxmox accepts but the embedded QEMU table
/// does not define.
pub fn resolve(cputype: &str) -> Result<ResolvedType, UnknownType> {
    match cputype {
        "host" => return Ok(ResolvedType::Host),
        "max" => return Ok(ResolvedType::Max),
        _ => {}
    }
    if let Some(b) = BUILTINS.iter().find(|b| b.name == cputype) {
        let mut features = qemu_model_features("qemu64").unwrap_or_default();
        features.extend(b.flags.iter().map(|f| canon(f)));
        return Ok(ResolvedType::Model {
            qemu_model: "qemu64".into(),
            vendor: None,
            features,
        });
    }
    // qemu-server `$depreacated_cpu_map` (sic): QEMU dropped Icelake-Client.
    let cputype = match cputype {
        "Icelake-Client" => "Icelake-Server",
        "Icelake-Client-noTSX" => "Icelake-Server-noTSX",
        other => other,
    };
    let idx = cpudata::index();
    let Some(&i) = idx.models.get(cputype) else {
        let reason = if idx.data.unresolved.contains(&cputype) {
            format!(
                "Proxmox VE knows the CPU type '{cputype}', but QEMU {} (the model table pve-cpuguard carries) does not define it",
                idx.data.qemu.version
            )
        } else {
            format!("unknown CPU type '{}' (not a Proxmox VE built-in nor a QEMU {} model; custom models are written 'custom-NAME')", crate::error::quoted(cputype), idx.data.qemu.version)
        };
        return Err(UnknownType(reason));
    };
    let model = idx.model(i);
    let mut features: BTreeSet<String> = model.features.clone();
    for dropped in flags::KVM_DROPPED {
        features.remove(*dropped);
    }
    match cputype {
        "kvm64" => features.extend(["lahf-lm", "sep"].map(String::from)),
        "kvm32" => {
            features.insert("sep".into());
        }
        t if t.starts_with("Opteron") => {
            features.remove("rdtscp");
        }
        _ => {}
    }
    let vendor = proxmox_vendor(cputype)
        .or_else(|| Some(model.vendor.clone()))
        .filter(|v| v != "default");
    Ok(ResolvedType::Model {
        qemu_model: model.name.clone(),
        vendor,
        features,
    })
}

fn qemu_model_features(name: &str) -> Option<BTreeSet<String>> {
    let idx = cpudata::index();
    let mut f = idx.model_named(name)?.features.clone();
    for dropped in flags::KVM_DROPPED {
        f.remove(*dropped);
    }
    Some(f)
}

fn canon(flag: &str) -> String {
    flags::canonical(flag).unwrap_or(flag).to_string()
}

/// The vendor Proxmox VE forces for a model name, if it lists the name.
#[must_use]
pub fn proxmox_vendor(name: &str) -> Option<String> {
    cpudata::index()
        .data
        .proxmox_models
        .get(name)
        .map(|v| (*v).to_string())
}

/// Every CPU type Proxmox VE accepts, built-ins first then named models in
/// the order of the embedded list.
#[must_use]
pub fn proxmox_cpu_types() -> Vec<String> {
    let mut out: Vec<String> = vec!["kvm64".into()];
    out.extend(BUILTINS.iter().map(|b| b.name.to_string()));
    for name in cpudata::index().data.proxmox_models.keys() {
        if !out.iter().any(|o| o == name) {
            out.push((*name).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_added_from_libvirt_resolves_with_its_vendor_and_features() {
        let Ok(ResolvedType::Model {
            qemu_model,
            vendor,
            features,
        }) = resolve("GraniteRapids-v4")
        else {
            panic!("GraniteRapids-v4 does not resolve");
        };
        assert_eq!(qemu_model, "GraniteRapids-v4");
        assert_eq!(vendor.as_deref(), Some("GenuineIntel"));
        // v4 is v3 plus CET (shadow stack and indirect branch tracking).
        let Ok(ResolvedType::Model { features: v3, .. }) = resolve("GraniteRapids-v3") else {
            panic!("GraniteRapids-v3 does not resolve");
        };
        let added: Vec<&str> = features.difference(&v3).map(String::as_str).collect();
        assert_eq!(added, ["cet-ibt", "cet-ss"]);
        assert!(v3.is_subset(&features));
    }
}
