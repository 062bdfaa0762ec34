//! VM configuration files (`/etc/pve/nodes/<node>/qemu-server/<vmid>.conf`),
//! read with qemu-server's own grammar (`parse_vm_config` in
//! `src/PVE/QemuServer.pm`, qemu-server 9.2):
//!
//! - a section starts only on a line that is, from column 0, `[PENDING]`,
//!   `[special:cloudinit]`/`[special:fleecing]`, `[name]` (a snapshot,
//!   `[a-z][a-z0-9_-]+`) or any other `[...]` (an unknown section, whose
//!   lines are skipped), case-insensitively, with only blanks after it;
//! - a key line is `key: value` with the key at column 0
//!   (`[a-z][a-z_-]*\d*`); anything else is warned about and skipped by
//!   qemu-server, so it is skipped here (an indented `  cpu: kvm64` is not
//!   the VM's CPU);
//! - a value qemu-server's type check rejects (a boolean that is not one,
//!   an integer that is not one, a line feed) is skipped, so the default
//!   applies. A `cpu:` value is kept as written and checked by
//!   [`VmConfig::check_cpu`]: a value pve-cpuguard cannot read makes the
//!   answer unknown rather than guessed.
//!
//! The main section is the configuration as it runs; `[PENDING]` holds
//! changes qemu-server applies at the next cold start
//! ([`VmConfig::with_pending`]). Snapshot and special sections are not read.

use std::path::Path;

use crate::cpu::custom_models::CustomModels;
use crate::cpu::launch::{self, Launch, StartNode, VmSpec};
use crate::error::{Error, Result};

/// The keys pve-cpuguard reads, as qemu-server reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// Raw `cpu:` value.
    pub cpu: Option<String>,
    /// `arch:` (the node's own, `x86_64`, when absent).
    pub arch: Option<String>,
    /// `hugepages:` (`2`, `1024`, `any`).
    pub hugepages: Option<String>,
    /// `lock:` (e.g. `migrate`).
    pub lock: Option<String>,
    /// `tags:` as written (`a;b`).
    pub tags: Option<String>,
    /// `runningcpu:`: the `-cpu` of a suspended/snapshotted VM.
    pub runningcpu: Option<String>,
    /// `runningmachine:`: the machine it ran with.
    pub runningmachine: Option<String>,
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
    /// `kvm:` as qemu-server's boolean check read it (`None`: absent or
    /// not a boolean, so the default applies).
    pub kvm: Option<bool>,
    /// `template:` (`true`: a template, started only for backups).
    pub template: bool,
    /// `machine:` (`pc-q35-11.0+pve2`, `q35`, `type=q35,viommu=…`).
    pub machine: Option<String>,
    /// `meta:` (`creation-qemu=9.2.0,ctime=…`).
    pub meta: Option<String>,
    /// `bios:` (`seabios`, `ovmf`).
    pub bios: Option<String>,
    /// `sockets:`.
    pub sockets: Option<u32>,
    /// `smp:`, the old spelling of `sockets:` (which wins when both are set).
    pub smp: Option<u32>,
    /// `cores:`.
    pub cores: Option<u32>,
    /// Whether a `hostpciN:` passes a GPU through as primary VGA (`x-vga=1`):
    /// qemu-server then hides KVM and sets a Hyper-V vendor id.
    pub gpu_passthrough: bool,
    /// The line of the `cpu:` key, for messages.
    pub cpu_line: Option<usize>,
    /// Lines qemu-server skips (not `key: value` at column 0, or a value
    /// its type check rejects), for notes.
    pub skipped_lines: Vec<usize>,
    /// The `[PENDING]` section, if any: values that replace the main
    /// section's at the next cold start, and the keys it deletes.
    pub pending: Option<Box<Pending>>,
}

/// A `[PENDING]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// The pending values (only the keys set there are `Some`).
    pub values: VmConfig,
    /// Keys the pending `delete:` removes (a leading `!`, "force", dropped).
    pub delete: Vec<String>,
}

impl VmConfig {
    /// The configuration the next cold start uses: qemu-server applies
    /// `[PENDING]` (`vmconfig_apply_pending`) before the `pre-start`
    /// hookscript of an ordinary start. Without pending changes, a copy.
    #[must_use]
    pub fn with_pending(&self) -> VmConfig {
        let mut conf = self.clone();
        let Some(pending) = conf.pending.take() else {
            return conf;
        };
        for key in &pending.delete {
            conf.clear(key);
        }
        conf.overlay(&pending.values);
        conf
    }

    /// Whether `[PENDING]` changes anything pve-cpuguard reads.
    #[must_use]
    pub fn has_cpu_relevant_pending(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|_| self.launch_spec() != self.with_pending().launch_spec())
    }

    /// The values that decide what QEMU is started with, for
    /// [`crate::cpu::launch::launch`].
    #[must_use]
    pub fn launch_spec(&self) -> VmSpec {
        VmSpec {
            cpu: self.cpu.clone(),
            kvm: self.kvm,
            arch: self.arch.clone(),
            template: self.template,
            ostype: self.ostype.clone(),
            machine: self.machine.clone(),
            creation_qemu: self.creation_qemu(),
            bios: self.bios.clone(),
            gpu_passthrough: self.gpu_passthrough,
            sockets: self.sockets.or(self.smp),
            cores: self.cores,
            args_cpu: self.args.as_deref().and_then(launch::args_cpu),
            runningcpu: if self.vmstate.is_some() {
                self.runningcpu.clone()
            } else {
                None
            },
            hugepages_1g: self.hugepages_1g(),
            qemu_cpu: None,
        }
    }

    /// What QEMU is started with on `node` (custom models resolved).
    #[must_use]
    pub fn launch(&self, node: &StartNode, custom: &CustomModels) -> Launch {
        launch::launch(&self.launch_spec(), node, custom)
    }

    /// `creation-qemu` of `meta:`, the QEMU the VM was created with.
    #[must_use]
    pub fn creation_qemu(&self) -> Option<String> {
        self.meta.as_deref()?.split(',').find_map(|kv| {
            kv.strip_prefix("creation-qemu=")
                .map(|v| v.trim().to_string())
        })
    }

    /// Whether 1 GiB huge pages back the guest memory.
    #[must_use]
    pub fn hugepages_1g(&self) -> bool {
        self.hugepages.as_deref() == Some("1024")
    }

    /// Whether the guest runs under KVM when started on an x86-64 node:
    /// `kvm: 0` selects TCG, QEMU's emulator (qemu-server
    /// `config_to_command`), and so does any architecture other than the
    /// node's own; templates always run under TCG.
    #[must_use]
    pub fn kvm(&self) -> bool {
        !self.template
            && self
                .kvm
                .unwrap_or_else(|| self.arch.as_deref().is_none_or(|a| a == "x86_64"))
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
                    "cannot parse cpu '{}': {e}\nnote: Proxmox VE cannot start the VM with it either; fix it with `qm set VMID --cpu TYPE[,flags=...]`",
                    crate::error::quoted(value)
                ),
            )
        })
    }

    /// Whether `args:` passes its own `-cpu`, overriding Proxmox's.
    #[must_use]
    pub fn args_cpu(&self) -> Option<String> {
        launch::args_cpu(self.args.as_deref()?)
    }

    /// Stores one key line's value, as qemu-server's type check reads it;
    /// `false` when the check rejects it (the line is then skipped).
    fn set(&mut self, key: &str, value: &str, line: usize) -> bool {
        let text = || Some(unquote(value).to_string());
        match key {
            "cpu" => {
                self.cpu = Some(value.to_string());
                self.cpu_line = Some(line);
            }
            "arch" => self.arch = text(),
            "hugepages" => self.hugepages = text(),
            "lock" => self.lock = text(),
            "tags" => self.tags = text(),
            "runningcpu" => self.runningcpu = text(),
            "runningmachine" => self.runningmachine = Some(value.to_string()),
            "vmstate" => self.vmstate = Some(value.to_string()),
            "hookscript" => self.hookscript = Some(value.to_string()),
            "ostype" => self.ostype = text(),
            "name" => self.name = Some(value.to_string()),
            "machine" => self.machine = Some(value.to_string()),
            "meta" => self.meta = Some(value.to_string()),
            "bios" => self.bios = text(),
            "kvm" => match boolean(value) {
                Some(b) => self.kvm = Some(b),
                None => return false,
            },
            "template" => match boolean(value) {
                Some(b) => self.template = b,
                None => return false,
            },
            "sockets" | "smp" | "cores" => {
                let Some(n) = integer(value) else {
                    return false;
                };
                match key {
                    "sockets" => self.sockets = Some(n),
                    "smp" => self.smp = Some(n),
                    _ => self.cores = Some(n),
                }
            }
            // qemu-server hides KVM and sets a Hyper-V vendor id for a GPU
            // passed through as the primary VGA (`PCI.pm`, `x-vga`).
            k if k.starts_with("hostpci")
                && k[7..].bytes().all(|b| b.is_ascii_digit())
                && value.split(',').any(|kv| {
                    kv.trim()
                        .strip_prefix("x-vga=")
                        .is_some_and(|b| boolean(b) == Some(true))
                }) =>
            {
                self.gpu_passthrough = true;
            }
            _ => {}
        }
        true
    }

    /// Removes a key (a pending `delete:`).
    fn clear(&mut self, key: &str) {
        match key {
            "cpu" => {
                self.cpu = None;
                self.cpu_line = None;
            }
            "arch" => self.arch = None,
            "hugepages" => self.hugepages = None,
            "lock" => self.lock = None,
            "tags" => self.tags = None,
            "runningcpu" => self.runningcpu = None,
            "runningmachine" => self.runningmachine = None,
            "vmstate" => self.vmstate = None,
            "args" => self.args = None,
            "hookscript" => self.hookscript = None,
            "ostype" => self.ostype = None,
            "name" => self.name = None,
            "kvm" => self.kvm = None,
            "template" => self.template = false,
            "machine" => self.machine = None,
            "meta" => self.meta = None,
            "bios" => self.bios = None,
            "sockets" => self.sockets = None,
            "smp" => self.smp = None,
            "cores" => self.cores = None,
            _ => {}
        }
    }

    /// Copies every value `over` sets onto `self`.
    fn overlay(&mut self, over: &VmConfig) {
        fn take<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
            if src.is_some() {
                dst.clone_from(src);
            }
        }
        take(&mut self.cpu, &over.cpu);
        take(&mut self.cpu_line, &over.cpu_line);
        take(&mut self.arch, &over.arch);
        take(&mut self.hugepages, &over.hugepages);
        take(&mut self.lock, &over.lock);
        take(&mut self.tags, &over.tags);
        take(&mut self.runningcpu, &over.runningcpu);
        take(&mut self.runningmachine, &over.runningmachine);
        take(&mut self.vmstate, &over.vmstate);
        take(&mut self.args, &over.args);
        take(&mut self.hookscript, &over.hookscript);
        take(&mut self.ostype, &over.ostype);
        take(&mut self.name, &over.name);
        take(&mut self.kvm, &over.kvm);
        take(&mut self.machine, &over.machine);
        take(&mut self.meta, &over.meta);
        take(&mut self.bios, &over.bios);
        take(&mut self.sockets, &over.sockets);
        take(&mut self.smp, &over.smp);
        take(&mut self.cores, &over.cores);
        self.template |= over.template;
        self.gpu_passthrough |= over.gpu_passthrough;
    }
}

/// qemu-server's boolean (`check_type`): `1`/`0`, or on/off, yes/no,
/// true/false in any case.
fn boolean(value: &str) -> Option<bool> {
    match value {
        "1" => Some(true),
        "0" => Some(false),
        v if ["on", "yes", "true"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t)) =>
        {
            Some(true)
        }
        v if ["off", "no", "false"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t)) =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// qemu-server's integer (`^\d+$`).
fn integer(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Larger than any vCPU count: saturate rather than reject.
    Some(value.parse().unwrap_or(u32::MAX))
}

/// A plain string value loses one pair of surrounding double quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// What a line is, in qemu-server's grammar.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Pending,
    /// Any other section (snapshot, special, unknown).
    OtherSection,
    Comment,
    Key(&'a str, &'a str),
    /// `delete: a,b` (valid only in `[PENDING]`).
    Delete(&'a str),
    /// Not a line qemu-server reads.
    Skipped,
}

/// Perl's `\s`: space, tab, line feed, vertical tab, form feed, carriage return.
fn is_perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn classify(line: &str) -> Line<'_> {
    if line.chars().all(is_perl_space) {
        return Line::Blank;
    }
    if let Some(rest) = line.strip_prefix('[') {
        // `^\[([^\]]*)\]\s*$`, the widest of the section regexes: every
        // other one matches a subset of it.
        if let Some(close) = rest.find(']') {
            let (name, after) = (&rest[..close], &rest[close + 1..]);
            if after.chars().all(is_perl_space) {
                return if name.eq_ignore_ascii_case("PENDING") {
                    Line::Pending
                } else {
                    Line::OtherSection
                };
            }
        }
    }
    if line.starts_with('#') {
        return Line::Comment;
    }
    let key_end = line
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_lowercase() || (i > 0 && (c == '_' || c == '-' || c.is_ascii_digit())))
        })
        .map_or(line.len(), |(i, _)| i);
    let key = &line[..key_end];
    // `[a-z][a-z_\-]*\d*`: digits only at the end.
    let letters = key.trim_end_matches(|c: char| c.is_ascii_digit());
    if key.is_empty() || letters.contains(|c: char| c.is_ascii_digit()) {
        return Line::Skipped;
    }
    let Some(rest) = line[key_end..].strip_prefix(':') else {
        return Line::Skipped;
    };
    let value = rest.trim_matches(is_perl_space);
    if value.is_empty() {
        return Line::Skipped;
    }
    if key == "delete" {
        return Line::Delete(value);
    }
    Line::Key(key, value)
}

/// Reads a VM config file: its main section and `[PENDING]`.
///
/// Reading stops at the first other section (a snapshot, `[special:…]`),
/// which is all [`parse`] looks at: snapshots repeat the whole config, so
/// they are often most of the file. The read buffer is per thread and
/// reused, so reading thousands of configs allocates only what the parsed
/// values need (issue 16).
///
/// # Errors
/// Unreadable files.
pub fn read(path: &Path) -> Result<VmConfig> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut scanned = 0;
        // Where the main section and `[PENDING]` end, once found: each line
        // is looked at once, as it arrives.
        let mut end = None;
        crate::fsutil::read_head(path, &mut buf, 4096, |b| {
            end = read_end(b, scanned);
            // Rescan the last, possibly incomplete, line next time.
            scanned = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
            end.is_some()
        })
        .map_err(|e| Error::io(path, e))?;
        let head = &buf[..end.unwrap_or(buf.len())];
        // Valid UTF-8 is checked at speed; only an invalid config pays for
        // its replacement characters.
        match std::str::from_utf8(head) {
            Ok(text) => parse(text, path),
            Err(_) => parse(&String::from_utf8_lossy(head), path),
        }
    })
}

/// Where the part [`parse`] reads ends in a config's bytes: the start of
/// the first complete line (at or after `from`, a line start) that opens a
/// section other than `[PENDING]`.
fn read_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut line_start = from;
    while line_start < bytes.len() {
        let rest = &bytes[line_start..];
        let nl = newline(rest)?;
        if rest[0] == b'[' {
            let line = String::from_utf8_lossy(&rest[..nl]);
            if classify(&line) == Line::OtherSection {
                return Some(line_start);
            }
        }
        line_start += nl + 1;
    }
    None
}

/// The index of the first `\n` in `bytes`, eight bytes at a time (as
/// `memchr` does): every line of 10 000 configs is looked for in an audit.
fn newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        // Zero where a byte is `\n`; the test says whether any byte of
        // the word is zero (never wrongly; which one, the loop below).
        let w = u64::from_ne_bytes(word) ^ NEWLINES;
        if w.wrapping_sub(ONES) & !w & HIGH != 0 {
            break;
        }
        at += 8;
    }
    bytes[at..].iter().position(|&c| c == b'\n').map(|p| at + p)
}

/// Parses a VM config's text (main section and `[PENDING]`); `origin`
/// names it in errors.
///
/// # Errors
/// None today: qemu-server skips every line it cannot read, and so does
/// this; the `Result` is kept for callers that name the file.
pub fn parse(text: &str, _origin: &Path) -> Result<VmConfig> {
    let mut main = VmConfig::default();
    let mut pending: Option<Pending> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        match classify(raw) {
            Line::Blank | Line::Comment => {}
            Line::Pending => {
                if pending.is_some() {
                    // "duplicate section": qemu-server warns and starts it anew.
                    main.skipped_lines.push(n);
                }
                pending = Some(Pending::default());
            }
            Line::OtherSection => break,
            Line::Delete(list) => match pending.as_mut() {
                Some(p) => p.delete.extend(
                    list.split(|c: char| c == ',' || c == ';' || is_perl_space(c))
                        .map(|k| k.trim_start_matches('!'))
                        .filter(|k| !k.is_empty())
                        .map(str::to_string),
                ),
                // "property 'delete' is only allowed in [PENDING]"
                None => main.skipped_lines.push(n),
            },
            Line::Key(key, value) => {
                let conf = match pending.as_mut() {
                    Some(p) => &mut p.values,
                    None => &mut main,
                };
                if key == "args" {
                    conf.args = Some(value.to_string());
                    continue;
                }
                // A line feed cannot occur (lines are split on it); a
                // carriage return inside the value is rejected.
                if value.contains('\r') || !conf.set(key, value, n) {
                    main.skipped_lines.push(n);
                }
            }
            Line::Skipped => main.skipped_lines.push(n),
        }
    }
    main.pending = pending.map(Box::new);
    Ok(main)
}

#[cfg(test)]
mod tests;
