//! VM configuration files (`/etc/pve/nodes/<node>/qemu-server/<vmid>.conf`).
//!
//! Only the main section counts: it is the current, running configuration.
//! `[PENDING]` (not yet applied), `[special:…]` (cloud-init, fleecing) and
//! snapshot sections (`[name]`) are skipped (qemu-server `parse_vm_config`).

use std::path::Path;

use crate::cpu::custom_models::CustomModels;
use crate::cpu::requirement::{self, Requirement, VmCpu};
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
    /// The CPU-relevant values, for the core's
    /// [`crate::cpu::requirement::from_vm`].
    #[must_use]
    pub fn cpu_inputs(&self) -> VmCpu<'_> {
        VmCpu {
            cpu: self.cpu.as_deref(),
            kvm: self.kvm(),
            arch: self.arch.as_deref(),
            args_cpu: self.args_cpu(),
            runningcpu: self.runningcpu.as_deref(),
            hibernated: self.vmstate.is_some(),
            hugepages_1g: self.hugepages_1g(),
        }
    }

    /// What this VM needs from a node (custom models resolved).
    #[must_use]
    pub fn requirement(&self, custom: &CustomModels) -> Requirement {
        requirement::from_vm(&self.cpu_inputs(), custom)
    }

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

/// Reads a VM config file: its main section only.
///
/// Reading stops at the first section header (`[PENDING]`, a snapshot,
/// `[special:…]`), which is all [`parse`] looks at: snapshots repeat the
/// whole config, so the main section is often a fraction of the file.
/// The read buffer is per thread and reused, so reading thousands of
/// configs allocates only what the parsed values need (issue 16).
///
/// # Errors
/// Unreadable or malformed files, naming the line.
pub fn read(path: &Path) -> Result<VmConfig> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut scanned = 0;
        crate::fsutil::read_head(path, &mut buf, 4096, |b| {
            let found = main_section_end(b, scanned).is_some();
            // Rescan the last, possibly incomplete, line next time.
            scanned = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
            found
        })
        .map_err(|e| Error::io(path, e))?;
        let main = &buf[..main_section_end(&buf, 0).unwrap_or(buf.len())];
        let text =
            std::str::from_utf8(main).map_err(|_| Error::parse(path, 1, "not valid UTF-8 text"))?;
        parse(text, path)
    })
}

/// Where the main section ends in a config's bytes: the start of the
/// first line (at or after `from`, a line start) whose first
/// non-whitespace character is `[`, as [`parse`] decides.
fn main_section_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut line_start = from;
    while line_start < bytes.len() {
        let rest = &bytes[line_start..];
        let first = rest.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r'));
        match first {
            Some(i) if rest[i] == b'[' => return Some(line_start),
            _ => {}
        }
        match rest.iter().position(|&c| c == b'\n') {
            Some(nl) => line_start += nl + 1,
            None => return None,
        }
    }
    None
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
    use proptest::prelude::*;

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

    /// Reading stops at the first section header, whatever the block
    /// boundaries: a main section longer than one read block, with the
    /// header split across two blocks, gives what parsing the whole file
    /// gives.
    #[test]
    fn read_stops_at_the_header_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for pad in [4000, 4090, 4094, 4095, 4096, 8190] {
            let mut text = String::from("cpu: host\n");
            while text.len() < pad {
                text.push_str("#x\n");
            }
            text.push_str("  [snap]\ncpu: kvm64\n");
            let path = dir.path().join(format!("{pad}.conf"));
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read(&path).unwrap(), parse(&text, &path).unwrap(), "{pad}");
        }
        // Invalid UTF-8 after the main section is never read.
        let path = dir.path().join("bytes.conf");
        std::fs::write(&path, b"cpu: max\n[snap]\nname: \xff\n").unwrap();
        assert_eq!(read(&path).unwrap().cpu.as_deref(), Some("max"));
        std::fs::write(&path, b"name: \xff\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("UTF-8"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// `read` (main section only, block by block) and `parse` of the
        /// whole text agree on any config.
        #[test]
        fn read_agrees_with_parse(
            lines in proptest::collection::vec(
                "(cpu|name|hookscript|lock|memory|#c| \\[snap\\]|\\[PENDING\\]|\t\\[x\\]|)(: [a-z0-9,=+;-]{0,300})?",
                0..60,
            )
        ) {
            let text = lines.join("\n");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("100.conf");
            std::fs::write(&path, &text).unwrap();
            let whole = parse(&text, &path).map_err(|e| e.to_string());
            let read = read(&path).map_err(|e| e.to_string());
            prop_assert_eq!(read, whole);
        }
    }
}
