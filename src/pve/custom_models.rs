//! `/etc/pve/virtual-guest/cpu-models.conf`: cluster-wide custom CPU models.
//!
//! Format (Proxmox SectionConfig, pve-docs `cpu-models.conf.adoc`): a header
//! `cpu-model: NAME` at column 0, then indented `key value` lines with the
//! same keys as the VM `cpu:` option; VMs refer to a model as `custom-NAME`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cpu::cpuconf::CpuConf;
use crate::error::{Error, Result};

/// All custom models by name (without the `custom-` prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomModels {
    /// Name → definition.
    pub models: BTreeMap<String, CpuConf>,
}

impl CustomModels {
    /// Looks up `custom-NAME` or `NAME`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&CpuConf> {
        self.models
            .get(name.strip_prefix("custom-").unwrap_or(name))
    }
}

/// Reads the file; a missing file means no custom models.
///
/// # Errors
/// Unreadable or malformed files, naming the line.
pub fn read(path: &Path) -> Result<CustomModels> {
    match crate::fsutil::read_raw(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::parse(path, 1, "not valid UTF-8 text"))?;
            parse(&text, path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CustomModels::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Parses the file's text; `origin` names it in errors.
///
/// # Errors
/// Malformed lines, unknown keys or invalid values, naming the line.
pub fn parse(text: &str, origin: &Path) -> Result<CustomModels> {
    let mut out = CustomModels::default();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            current = None;
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let Some((kind, name)) = line.split_once(':') else {
                return Err(Error::parse(
                    origin,
                    n,
                    format!("expected `cpu-model: NAME`, found {trimmed:?}"),
                ));
            };
            let (kind, name) = (kind.trim(), name.trim());
            if kind != "cpu-model" {
                return Err(Error::parse(
                    origin,
                    n,
                    format!("unknown section type '{kind}' (valid: cpu-model)"),
                ));
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(Error::parse(
                    origin,
                    n,
                    format!("invalid model name {name:?}"),
                ));
            }
            if out.models.contains_key(name) {
                return Err(Error::parse(
                    origin,
                    n,
                    format!("model '{name}' is defined twice"),
                ));
            }
            out.models.insert(name.to_string(), CpuConf::default());
            current = Some(name.to_string());
            continue;
        }
        let Some(name) = &current else {
            return Err(Error::parse(
                origin,
                n,
                "option line outside a `cpu-model:` section",
            ));
        };
        let (key, value) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));
        let conf = out.models.get_mut(name).expect("section inserted above");
        conf.set(key, value.trim())
            .map_err(|m| Error::parse(origin, n, m))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::cpuconf::PhysBits;

    #[test]
    fn docs_example() {
        let text = "cpu-model: avx\n    flags +avx;+avx2\n    phys-bits host\n    hidden 0\n    hv-vendor-id proxmox\n    reported-model kvm64\n\n\
                    cpu-model: epyc-lite\n\tflags -pcid\n\treported-model EPYC-Rome\n";
        let m = parse(text, Path::new("cpu-models.conf")).unwrap();
        let avx = m.get("custom-avx").unwrap();
        assert_eq!(avx.flags.len(), 2);
        assert_eq!(avx.phys_bits, Some(PhysBits::Host));
        assert_eq!(avx.reported_model.as_deref(), Some("kvm64"));
        assert_eq!(
            m.get("epyc-lite").unwrap().reported_model.as_deref(),
            Some("EPYC-Rome")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("cpu-model: a\n\tphys-bits 7\n", Path::new("f")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:2: invalid phys-bits '7' (valid: 8-64 or host)"
        );
        let e = parse("\tflags +a\n", Path::new("f")).unwrap_err();
        assert!(e.to_string().starts_with("f:1: option line outside"));
        let e = parse("vm: x\n", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("unknown section type 'vm'"));
    }
}
