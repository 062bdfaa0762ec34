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
/// [`section_config`]'s; only `cpu-model` sections are models here.
///
/// Every VM start reads this file, so one bad line must not keep every VM
/// from being judged: as Proxmox VE does, lines outside every model (and
/// sections of another type) are set aside (`ignored`), and a model with
/// a line that cannot be read is `unreadable` — a VM using it is unknown
/// (the policy decides), the others are judged as usual.
///
/// # Errors
/// None today; the `Result` is kept for [`crate::fsutil::parse_optional`].
pub fn parse(text: &str, origin: &Path) -> Result<CustomModels> {
    let read = section_config::parse_lenient(text, origin);
    let mut out = CustomModels::default();
    let mut doubtful: Vec<Option<String>> = vec![None; read.sections.len()];
    for p in read.problems {
        match p.section {
            Some(i) => {
                doubtful[i].get_or_insert_with(|| p.error.to_string());
            }
            None => out.ignored.push(p.error.to_string()),
        }
    }
    for (section, doubt) in read.sections.into_iter().zip(doubtful) {
        if section.kind != "cpu-model" {
            out.ignored.push(
                Error::parse(
                    origin,
                    section.line,
                    format!("unknown section type '{}' (valid: cpu-model)", section.kind),
                )
                .to_string(),
            );
            continue;
        }
        let mut conf = CpuConf::default();
        let mut why = doubt;
        for (key, value, line) in &section.props {
            if why.is_some() {
                break;
            }
            if let Err(m) = conf.set(key, value) {
                why = Some(Error::parse(origin, *line, m).to_string());
            }
        }
        match why {
            Some(why) => {
                out.unreadable.insert(section.id, why);
            }
            None => {
                out.models.insert(section.id, conf);
            }
        }
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
    fn a_bad_line_is_set_aside_and_names_the_line() {
        // A value the model cannot take: that model is unreadable, the
        // next one is read.
        let m = parse(
            "cpu-model: a\n\tphys-bits 7\n\ncpu-model: b\n\tflags +avx\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(
            m.unreadable("custom-a"),
            Some("f:2: invalid phys-bits '7' (valid: 8-64 or host)")
        );
        assert!(m.get("a").is_none());
        assert!(m.get("custom-b").is_some());
        // A line outside every model, and another section type: set aside,
        // each named.
        let m = parse("\tflags +a\nvm: x\n\ncpu-model: c\n", Path::new("f")).unwrap();
        assert!(m.ignored[0].starts_with("f:1: indented property line outside"));
        assert!(m.ignored[1].contains("unknown section type 'vm'"));
        assert!(m.get("c").is_some());
        // A duplicate key makes its model doubtful.
        let m = parse("cpu-model: d\n\tflags +a\n\tflags +b\n", Path::new("f")).unwrap();
        assert!(m
            .unreadable("d")
            .unwrap()
            .contains("f:3: duplicate property 'flags'"));
    }
}
