//! The VM `cpu:` property string (qemu-server `CPUConfig.pm`, `$cpu_fmt`).
//!
//! Both forms Proxmox writes are accepted: `host` and
//! `cputype=x86-64-v3,flags=+pdpe1gb;-pcid,phys-bits=host`. The same format,
//! spelled `key value` per line, is used by custom models.

use crate::error::quoted;

/// A `phys-bits` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhysBits {
    /// A fixed width, 8–64.
    Bits(u32),
    /// `host`: whatever the node has.
    Host,
}

impl std::fmt::Display for PhysBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhysBits::Bits(n) => write!(f, "{n}"),
            PhysBits::Host => f.write_str("host"),
        }
    }
}

/// One `+flag` / `-flag` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// `true` for `+`.
    pub add: bool,
    /// Flag as written (Proxmox/QEMU spelling).
    pub name: String,
}

/// A parsed `cpu:` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuConf {
    /// `cputype`, `None` when absent (→ `kvm64`).
    pub cputype: Option<String>,
    /// `flags`, in order.
    pub flags: Vec<FlagChange>,
    /// `phys-bits`.
    pub phys_bits: Option<PhysBits>,
    /// `hidden`.
    pub hidden: Option<bool>,
    /// `hv-vendor-id`.
    pub hv_vendor_id: Option<String>,
    /// `reported-model` (custom models only).
    pub reported_model: Option<String>,
    /// `guest-phys-bits`.
    pub guest_phys_bits: Option<u32>,
    /// `level`.
    pub level: Option<u32>,
}

impl CpuConf {
    /// The CPU type, with Proxmox's default.
    #[must_use]
    pub fn cputype(&self) -> &str {
        self.cputype.as_deref().unwrap_or("kvm64")
    }

    /// Applies one `key`/`value` pair; shared by the property string and
    /// the `key value` lines of cpu-models.conf.
    ///
    /// # Errors
    /// A message naming the key and the valid values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "cputype" => self.cputype = Some(nonempty(key, value)?.to_string()),
            "flags" => self.flags = parse_flags(value)?,
            "phys-bits" => {
                self.phys_bits = Some(if value == "host" {
                    PhysBits::Host
                } else {
                    PhysBits::Bits(int_in(key, value, 8, 64)?)
                });
            }
            "guest-phys-bits" => self.guest_phys_bits = Some(int_in(key, value, 32, 64)?),
            "level" => self.level = Some(int_in(key, value, 0, u32::MAX)?),
            "hidden" => self.hidden = Some(parse_bool(key, value)?),
            "hv-vendor-id" => self.hv_vendor_id = Some(nonempty(key, value)?.to_string()),
            "reported-model" => self.reported_model = Some(nonempty(key, value)?.to_string()),
            _ => {
                return Err(format!(
                    "unknown cpu option '{}' (valid: cputype, flags, phys-bits, guest-phys-bits, hidden, hv-vendor-id, reported-model, level)",
                    quoted(key)
                ))
            }
        }
        Ok(())
    }
}

/// Parses a `cpu:` property string.
///
/// # Errors
/// A message saying which part is wrong.
pub fn parse(value: &str) -> Result<CpuConf, String> {
    let mut conf = CpuConf::default();
    let mut seen: Vec<&str> = Vec::new();
    for (i, part) in value.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!(
                "empty element in cpu property string '{}'",
                quoted(value)
            ));
        }
        let (key, val) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None if i == 0 => ("cputype", part),
            None => {
                return Err(format!(
                    "'{}' is not key=value in '{}'",
                    quoted(part),
                    quoted(value)
                ))
            }
        };
        if seen.contains(&key) {
            return Err(format!(
                "duplicate key '{}' in '{}'",
                quoted(key),
                quoted(value)
            ));
        }
        seen.push(key);
        conf.set(key, val)?;
    }
    Ok(conf)
}

/// Parses `+a;-b` into flag changes.
///
/// # Errors
/// An element without `+`/`-` or with characters QEMU does not allow.
pub fn parse_flags(value: &str) -> Result<Vec<FlagChange>, String> {
    let mut out = Vec::new();
    for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (add, name) = if let Some(n) = item.strip_prefix('+') {
            (true, n)
        } else if let Some(n) = item.strip_prefix('-') {
            (false, n)
        } else {
            return Err(format!(
                "flag '{}' must start with '+' or '-'",
                quoted(item)
            ));
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("invalid flag name in '{}'", quoted(item)));
        }
        out.push(FlagChange {
            add,
            name: name.to_string(),
        });
    }
    Ok(out)
}

fn nonempty<'a>(key: &str, value: &'a str) -> Result<&'a str, String> {
    if value.is_empty() {
        Err(format!("'{key}' needs a value"))
    } else {
        Ok(value)
    }
}

fn int_in(key: &str, value: &str, min: u32, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            if key == "phys-bits" {
                format!(
                    "invalid phys-bits '{}' (valid: {min}-{max} or host)",
                    quoted(value)
                )
            } else {
                format!("invalid {key} '{}' (valid: {min}-{max})", quoted(value))
            }
        })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "on" | "yes" | "true" => Ok(true),
        "0" | "off" | "no" | "false" => Ok(false),
        _ => Err(format!("invalid {key} '{}' (valid: 0 or 1)", quoted(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form() {
        let c = parse("host").unwrap();
        assert_eq!(c.cputype(), "host");
        assert!(c.flags.is_empty());
    }

    #[test]
    fn long_form_with_everything() {
        let c = parse("cputype=x86-64-v3,flags=+pdpe1gb;-pcid,phys-bits=host,hidden=1").unwrap();
        assert_eq!(c.cputype(), "x86-64-v3");
        assert_eq!(
            c.flags,
            vec![
                FlagChange {
                    add: true,
                    name: "pdpe1gb".into()
                },
                FlagChange {
                    add: false,
                    name: "pcid".into()
                }
            ]
        );
        assert_eq!(c.phys_bits, Some(PhysBits::Host));
        assert_eq!(c.hidden, Some(true));
    }

    #[test]
    fn leading_bare_type_then_options() {
        let c = parse("Skylake-Server-IBRS,flags=+pcid;+spec-ctrl;+pdpe1gb,phys-bits=42").unwrap();
        assert_eq!(c.cputype(), "Skylake-Server-IBRS");
        assert_eq!(c.flags.len(), 3);
        assert_eq!(c.phys_bits, Some(PhysBits::Bits(42)));
    }

    #[test]
    fn missing_type_defaults_to_kvm64() {
        assert_eq!(parse("flags=+aes").unwrap().cputype(), "kvm64");
    }

    #[test]
    fn errors_are_explained() {
        assert!(parse("x,phys-bits=99")
            .unwrap_err()
            .contains("8-64 or host"));
        assert!(parse("x,flags=aes").unwrap_err().contains("'+' or '-'"));
        assert!(parse("x,bogus=1")
            .unwrap_err()
            .contains("unknown cpu option 'bogus'"));
        assert!(parse("x,,y").is_err());
        assert!(parse("cputype=a,cputype=b")
            .unwrap_err()
            .contains("duplicate"));
        assert!(parse("x,flags=+a b")
            .unwrap_err()
            .contains("invalid flag name"));
    }
}
