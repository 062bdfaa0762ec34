//! VM configuration files (`/etc/pve/nodes/<node>/qemu-server/<vmid>.conf`).
//!
//! Only the main section counts: it is the current, running configuration.
//! `[PENDING]` (not yet applied), `[special:…]` (cloud-init, fleecing) and
//! snapshot sections (`[name]`) are skipped (qemu-server `parse_vm_config`).

use std::path::Path;

use crate::error::{Error, Result};

/// The main-section keys pve-cpuguard cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// Raw `cpu:` value.
    pub cpu: Option<String>,
    /// `arch:` (`x86_64` when absent).
    pub arch: Option<String>,
    /// `hugepages:` (`2`, `1024`, `any`).
    pub hugepages: Option<String>,
    /// `lock:` (e.g. `migrate`).
    pub lock: Option<String>,
    /// `runningcpu:`: the `-cpu` of a suspended/snapshotted VM.
    pub runningcpu: Option<String>,
    /// `vmstate:`: the saved RAM of a hibernated VM (it resumes with
    /// `runningcpu`).
    pub vmstate: Option<String>,
    /// `args:`: extra QEMU arguments.
    pub args: Option<String>,
    /// `hookscript:`.
    pub hookscript: Option<String>,
    /// `ostype:`.
    pub ostype: Option<String>,
    /// `name:`.
    pub name: Option<String>,
    /// `kvm:` (`1` when absent); `0` runs the guest under TCG.
    pub kvm: Option<String>,
    /// The line of the `cpu:` key, for messages.
    pub cpu_line: Option<usize>,
}

impl VmConfig {
    /// Whether 1 GiB huge pages back the guest memory.
    #[must_use]
    pub fn hugepages_1g(&self) -> bool {
        self.hugepages.as_deref() == Some("1024")
    }

    /// Whether the guest runs under KVM. `kvm: 0` selects TCG, QEMU's
    /// emulator (qemu-server `config_to_command`: `-accel tcg`); the values
    /// are those of a Proxmox VE boolean (`PVE::JSONSchema`).
    #[must_use]
    pub fn kvm(&self) -> bool {
        !matches!(
            self.kvm.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("0" | "off" | "no" | "false")
        )
    }

    /// Checks that the `cpu:` value is a valid property string: qemu-server
    /// `get_cpu_options` dies parsing anything else, so such a VM starts
    /// nowhere and no verdict applies; it is an input error.
    ///
    /// # Errors
    /// [`Error::Parse`] naming `origin`, the line and the value.
    pub fn check_cpu(&self, origin: &Path) -> Result<()> {
        let Some(value) = self.cpu.as_deref() else {
            return Ok(());
        };
        crate::cpu::cpuconf::parse(value).map(drop).map_err(|e| {
            Error::parse(
                origin,
                self.cpu_line.unwrap_or(1),
                format!(
                    "cannot parse cpu '{value}': {e}\nnote: Proxmox VE cannot start the VM with it either; fix it with `qm set VMID --cpu TYPE[,flags=...]`"
                ),
            )
        })
    }

    /// Whether `args:` passes its own `-cpu`, overriding Proxmox's.
    #[must_use]
    pub fn args_cpu(&self) -> Option<&str> {
        let args = self.args.as_deref()?;
        let mut words = args.split_whitespace();
        while let Some(w) = words.next() {
            if w == "-cpu" {
                return Some(words.next().unwrap_or(""));
            }
        }
        None
    }
}

/// Reads a VM config file.
///
/// # Errors
/// Unreadable or malformed files, naming the line.
pub fn read(path: &Path) -> Result<VmConfig> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::parse(path, 1, "not valid UTF-8 text"))?;
    parse(&text, path)
}

/// Parses a VM config's text; `origin` names it in errors.
///
/// # Errors
/// A main-section line that is not `key: value`, naming the line.
pub fn parse(text: &str, origin: &Path) -> Result<VmConfig> {
    let mut conf = VmConfig::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            // Everything after the first section header is not the main section.
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            return Err(Error::parse(
                origin,
                n,
                format!(
                    "expected `key: value`, found {:?}",
                    trimmed.chars().take(60).collect::<String>()
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(Error::parse(origin, n, format!("invalid key {key:?}")));
        }
        let value = Some(value.trim().to_string());
        match key {
            "cpu" => {
                conf.cpu = value;
                conf.cpu_line = Some(n);
            }
            "arch" => conf.arch = value,
            "hugepages" => conf.hugepages = value,
            "lock" => conf.lock = value,
            "runningcpu" => conf.runningcpu = value,
            "vmstate" => conf.vmstate = value,
            "args" => conf.args = value,
            "hookscript" => conf.hookscript = value,
            "ostype" => conf.ostype = value,
            "name" => conf.name = value,
            "kvm" => conf.kvm = value,
            _ => {}
        }
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "#my vm\n#second line\nboot: order=scsi0\ncores: 4\ncpu: x86-64-v2-AES\nhugepages: 1024\nlock: migrate\nmemory: 4096\nname: web1\nparent: snap\n\n\
        [PENDING]\ncpu: host\n\n[special:cloudinit]\nipconfig0: ip=dhcp\n\n[snap]\ncpu: kvm64\nsnaptime: 1737549549\n";

    #[test]
    fn only_the_main_section_counts() {
        let c = parse(CONF, Path::new("100.conf")).unwrap();
        assert_eq!(c.cpu.as_deref(), Some("x86-64-v2-AES"));
        assert_eq!(c.lock.as_deref(), Some("migrate"));
        assert!(c.hugepages_1g());
        assert_eq!(c.name.as_deref(), Some("web1"));
    }

    #[test]
    fn args_cpu_is_found() {
        let c = parse("args: -cpu host,+invtsc -smp 2\n", Path::new("x")).unwrap();
        assert_eq!(c.args_cpu(), Some("host,+invtsc"));
        let c = parse("args: -device foo\n", Path::new("x")).unwrap();
        assert_eq!(c.args_cpu(), None);
    }

    #[test]
    fn unparseable_cpu_is_an_input_error_naming_file_line_and_value() {
        let path = Path::new("/etc/pve/qemu-server/100.conf");
        let c = parse("name: a\ncpu: x86-64-v3,flags=avx2\n", path).unwrap();
        let e = c.check_cpu(path).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
        let text = e.to_string();
        assert!(
            text.starts_with("/etc/pve/qemu-server/100.conf:2: cannot parse cpu 'x86-64-v3,flags=avx2': flag 'avx2' must start with '+' or '-'\nnote: "),
            "{text}"
        );
        for fine in [
            "cpu: host\n",
            "name: no cpu line\n",
            "cpu: x86-64-v3,flags=+no-such-flag\n",
        ] {
            assert!(parse(fine, path).unwrap().check_cpu(path).is_ok(), "{fine}");
        }
    }

    #[test]
    fn kvm_key_selects_tcg() {
        for (text, kvm) in [
            ("kvm: 0\n", false),
            ("kvm: 1\n", true),
            ("name: x\n", true),
            ("kvm: off\n", false),
        ] {
            assert_eq!(parse(text, Path::new("x")).unwrap().kvm(), kvm, "{text}");
        }
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let e = parse(
            "cores: 2\nthis is wrong\n",
            Path::new("/etc/pve/qemu-server/100.conf"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/pve/qemu-server/100.conf:2: expected `key: value`, found \"this is wrong\""
        );
    }
}
