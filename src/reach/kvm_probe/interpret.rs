//! What QEMU printed, turned into a [`QemuReport`], purely: recorded
//! transcripts test it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cpu::flags;
use crate::cpu::qemu_report::{Accel, QemuHost, QemuReport};
use crate::error::ProbeError;
use crate::reach::qmp::{QmpError, Transcript};

/// Turns what QEMU printed into a [`QemuReport`]. `binary` names it in errors.
///
/// # Errors
/// [`ProbeError::NoKvm`] when QEMU says KVM cannot be used, otherwise
/// [`ProbeError::Protocol`] for anything but a complete, successful exchange.
pub fn interpret(
    stdout: &[u8],
    stderr: &[u8],
    accel: Accel,
    binary: &str,
) -> Result<QemuReport, ProbeError> {
    let stderr_text = tail(&String::from_utf8_lossy(stderr), 2000);
    parse_transcript(stdout, accel).map_err(|error| {
        if accel == Accel::Kvm {
            if let Some(line) = kvm_failure(&stderr_text) {
                return ProbeError::NoKvm {
                    detail: format!("{binary}: {line}"),
                };
            }
        }
        ProbeError::Protocol {
            binary: binary.to_string(),
            error: error.to_string(),
            stderr: stderr_text,
        }
    })
}

/// The line of QEMU's stderr saying KVM could not be initialised, if any
/// (QEMU `accel/kvm/kvm-all.c`: "Could not access KVM kernel module: …",
/// "failed to initialize kvm: …").
fn kvm_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("could not access kvm") || l.contains("failed to initialize kvm")
        })
        .map(|l| l.trim().to_string())
}

/// The last `max` characters of `s`.
pub(super) fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(max)).collect()
}

/// Parses a whole transcript of [`script`].
///
/// # Errors
/// Garbage, a missing greeting or answer, an error answer, or answers of the
/// wrong shape.
pub fn parse_transcript(stdout: &[u8], accel: Accel) -> Result<QemuReport, QmpError> {
    let t = Transcript::parse(stdout)?;
    let version_answer = t.answer("version")?;
    let (qemu_version, qemu_package) = version(version_answer)
        .or_else(|| version(t.greeting.get("version")?))
        .ok_or_else(|| shape("version", "no qemu.major/minor/micro"))?;
    let props = t
        .answer("expansion")?
        .get("model")
        .and_then(|m| m.get("props"))
        .and_then(Value::as_object)
        .ok_or_else(|| shape("expansion", "no model.props object"))?;
    let definitions = t
        .answer("definitions")?
        .as_array()
        .ok_or_else(|| shape("definitions", "not a list"))?;
    Ok(QemuReport {
        qemu_version,
        qemu_package,
        accel,
        host: host_ident(props),
        host_features: expansion_features(props),
        models: model_answers(definitions),
        binary: None,
    })
}

fn shape(id: &str, what: &str) -> QmpError {
    QmpError::Failed {
        id: id.to_string(),
        class: "UnexpectedAnswer".into(),
        desc: what.to_string(),
    }
}

/// `{"qemu": {"major", "minor", "micro"}, "package"}` → ("7.2.22", package).
fn version(v: &Value) -> Option<(String, String)> {
    let q = v.get("qemu")?;
    let n = |k: &str| q.get(k).and_then(Value::as_u64);
    let version = format!("{}.{}.{}", n("major")?, n("minor")?, n("micro")?);
    let package = v
        .get("package")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    Some((version, package))
}

/// The `true` boolean properties that are CPU features, in canonical names.
/// Properties that are no feature (`kvm`, `pmu`, `migratable`,
/// `host-phys-bits`, …) are not in the feature table and fall away.
#[must_use]
pub fn expansion_features(props: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    props
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(k, _)| flags::canonical(k))
        .map(str::to_string)
        .collect()
}

fn host_ident(props: &serde_json::Map<String, Value>) -> QemuHost {
    let s = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let n = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok())
    };
    QemuHost {
        vendor: s("vendor"),
        family: n("family"),
        model: n("model"),
        stepping: n("stepping"),
        model_id: s("model-id"),
    }
}

/// Model name → canonical unavailable features, for every definition that
/// carries `unavailable-features` (QEMU omits it where it cannot tell).
#[must_use]
pub fn model_answers(definitions: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for d in definitions {
        let Some(name) = d.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(list) = d.get("unavailable-features").and_then(Value::as_array) else {
            continue;
        };
        let mut missing: Vec<String> = list
            .iter()
            .filter_map(Value::as_str)
            .map(|f| flags::canonical(f).unwrap_or(f).to_string())
            .collect();
        missing.sort();
        missing.dedup();
        out.insert(name.to_string(), missing);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cpu::qemu_report::to_json;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/qmp")
            .join(name);
        std::fs::read(p).unwrap()
    }

    #[test]
    fn recorded_kvm_transcript_parses() {
        let v = parse_transcript(&fixture("qemu-7.2-pvm-epyc-kvm.jsonl"), Accel::Kvm).unwrap();
        assert_eq!(v.qemu_version, "7.2.22");
        assert!(v.qemu_package.starts_with("Debian"));
        assert_eq!(v.host.vendor, "AuthenticAMD");
        assert_eq!(v.host.family, Some(25));
        // The nested KVM here cannot give SSE3 even though cpuinfo shows it.
        assert!(!v.host_features.contains("pni"));
        assert!(v.host_features.contains("lm"));
        assert!(v.host_features.contains("lahf-lm"), "alias lahf_lm folded");
        assert!(!v.host_features.contains("kvm"), "not a CPU feature");
        assert!(
            !v.host_features.contains("lahf_lm"),
            "canonical spelling only"
        );
        assert_eq!(v.models["kvm64"], vec!["pni".to_string()]);
        assert_eq!(v.models["max"], Vec::<String>::new());
        assert!(v.models["Haswell-v1"].contains(&"sse4.1".to_string()));
        assert_eq!(v.models.len(), 132);
    }

    #[test]
    fn view_round_trips_through_json() {
        let v = parse_transcript(&fixture("qemu-7.2-pvm-epyc-tcg.jsonl"), Accel::Tcg).unwrap();
        assert_eq!(v.accel, Accel::Tcg);
        let back: QemuReport = serde_json::from_value(to_json(&v)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn kvm_refusal_on_stderr_is_no_kvm() {
        let e = interpret(
            b"",
            b"Could not access KVM kernel module: No such file or directory\nqemu-system-x86_64: failed to initialize kvm: No such file or directory\n",
            Accel::Kvm,
            "qemu",
        )
        .unwrap_err();
        assert!(matches!(e, ProbeError::NoKvm { .. }), "{e}");
        assert!(e.to_string().contains("Could not access KVM kernel module"));
        let e = interpret(b"", b"", Accel::Kvm, "qemu").unwrap_err();
        assert!(matches!(e, ProbeError::Protocol { .. }), "{e}");
    }

    #[test]
    fn truncated_transcript_names_the_missing_answer() {
        let full = fixture("qemu-7.2-pvm-epyc-kvm.jsonl");
        let text = String::from_utf8(full).unwrap();
        let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        let e = parse_transcript(cut.as_bytes(), Accel::Kvm).unwrap_err();
        assert_eq!(
            e,
            QmpError::Missing {
                id: "definitions".into()
            }
        );
    }
}
