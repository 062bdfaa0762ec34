//! `/etc/pve/virtual-guest/cpu-models.conf`: cluster-wide custom CPU models.
//!
//! Format (Proxmox SectionConfig, pve-docs `cpu-models.conf.adoc`): a header
//! `cpu-model: NAME` at column 0, then indented `key value` lines with the
//! same keys as the VM `cpu:` option; VMs refer to a model as `custom-NAME`.

use std::path::Path;

use crate::cpu::cpuconf::CpuConf;
pub use crate::cpu::custom_models::CustomModels;
use crate::error::{Error, Result};
use crate::pve::section_config;

/// Reads the file; a missing file means no custom models.
///
/// # Errors
/// Unreadable or malformed files, naming the line.
pub fn read(path: &Path) -> Result<CustomModels> {
    crate::fsutil::parse_optional(path, parse)
}

/// Parses the file's text; `origin` names it in errors. The syntax is
/// [`section_config`]'s; only `cpu-model` sections are valid here.
///
/// # Errors
/// Malformed lines, unknown section types or keys, invalid values, naming
/// the line.
pub fn parse(text: &str, origin: &Path) -> Result<CustomModels> {
    let mut out = CustomModels::default();
    for section in section_config::parse(text, origin)? {
        if section.kind != "cpu-model" {
            return Err(Error::parse(
                origin,
                section.line,
                format!("unknown section type '{}' (valid: cpu-model)", section.kind),
            ));
        }
        let mut conf = CpuConf::default();
        for (key, value, line) in &section.props {
            conf.set(key, value)
                .map_err(|m| Error::parse(origin, *line, m))?;
        }
        out.models.insert(section.id, conf);
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
        assert!(e
            .to_string()
            .starts_with("f:1: indented property line outside"));
        let e = parse("vm: x\n", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("unknown section type 'vm'"));
    }
}
