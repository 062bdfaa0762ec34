//! What QEMU is started with: [`launch`], the one function that turns a
//! VM's configuration (as qemu-server reads it) and the node it starts on
//! into the accelerator, `-cpu`, vCPU count and the [`Requirement`] every
//! command and the hook judge.
//!
//! It follows qemu-server 9.2 (`config_to_command`, `CPUConfig.pm`
//! `get_cpu_options`, `get_pve_cpu_flags`, `get_hyperv_enlightenments`,
//! `Machine.pm` `get_vm_machine`): templates start minimised under TCG,
//! foreign architectures are emulated, Windows guests get Hyper-V
//! enlightenments by `ostype` and machine version, and `hv_evmcs` is added
//! only where the start node is Intel. The `-cpu` string is built exactly
//! as qemu-server builds it, so Proxmox's own `test/cfg2cmd` cases are its
//! test table (`tests/it/cfg2cmd.rs`). Pure: no I/O.

mod machine;

use std::collections::BTreeMap;

use crate::cpu::cpuconf::{self, CpuConf, PhysBits};
use crate::cpu::custom_models::CustomModels;
use crate::cpu::models;
use crate::cpu::requirement::{self, Requirement};

pub use machine::{MachineVersion, QemuVersion};

/// The values of a VM configuration that decide what QEMU is started with
/// (`crate::pve::vmconf::VmConfig::launch_spec`). Equal specs launch the
/// same on equal nodes, so they key memos.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VmSpec {
    /// `cpu:` as written.
    pub cpu: Option<String>,
    /// `kvm:` (`None`: absent, so on for the node's own architecture).
    pub kvm: Option<bool>,
    /// `arch:` (`None`: the node's).
    pub arch: Option<String>,
    /// `template: 1`.
    pub template: bool,
    /// `ostype:`.
    pub ostype: Option<String>,
    /// `machine:` as written.
    pub machine: Option<String>,
    /// `creation-qemu` of `meta:`.
    pub creation_qemu: Option<String>,
    /// `bios:`.
    pub bios: Option<String>,
    /// A GPU passed through as primary VGA (`hostpciN: …,x-vga=1`).
    pub gpu_passthrough: bool,
    /// `sockets:` (or `smp:`).
    pub sockets: Option<u32>,
    /// `cores:`.
    pub cores: Option<u32>,
    /// The last `-cpu`/`--cpu` of `args:`, which overrides Proxmox's.
    pub args_cpu: Option<String>,
    /// `runningcpu:` of a hibernated VM, which it resumes with.
    pub runningcpu: Option<String>,
    /// The `-cpu` its QEMU runs with now (read from the running process,
    /// or recorded at its cold start): what a live migration moves.
    pub qemu_cpu: Option<String>,
    /// `hugepages: 1024`.
    pub hugepages_1g: bool,
}

/// `spec` as [`launch`] reads it: its vCPUs as one count, `ostype` as
/// the Windows version and Solaris test it is read through, `bios` only
/// where the Hyper-V enlightenments look at it (Windows Vista and 7),
/// `meta: creation-qemu` only for Windows (its machine version), and a
/// template as the minimal configuration it is started with. Equal keys
/// launch alike on equal nodes, so memos key on them (a 10 000-VM cluster
/// has far fewer of them than configurations).
#[must_use]
pub fn launch_key(spec: &VmSpec) -> VmSpec {
    if spec.template {
        return VmSpec {
            template: true,
            ..VmSpec::default()
        };
    }
    let win = windows_version(spec.ostype.as_deref());
    let ostype = if spec.ostype.as_deref() == Some("solaris") {
        Some("solaris".to_string())
    } else {
        (win > 0).then(|| format!("win{win}"))
    };
    VmSpec {
        sockets: Some(vcpus_of(spec)),
        cores: None,
        ostype,
        bios: spec
            .bios
            .clone()
            .filter(|b| b == "ovmf" && (6..8).contains(&win)),
        creation_qemu: spec.creation_qemu.clone().filter(|_| win > 0),
        ..spec.clone()
    }
}

/// sockets × cores, as qemu-server counts them (0 or absent is 1): the
/// requirement's `vcpus`, and nothing else of a launch.
#[must_use]
pub fn vcpus_of(spec: &VmSpec) -> u32 {
    if spec.template {
        // Started with the minimal configuration (see `launch`).
        return 1;
    }
    spec.sockets
        .filter(|&s| s > 0)
        .unwrap_or(1)
        .saturating_mul(spec.cores.filter(|&c| c > 0).unwrap_or(1))
}

/// What pve-cpuguard knows of the node a VM starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StartNode<'a> {
    /// Its architecture (Proxmox VE nodes judged here are `x86_64`).
    pub arch: &'a str,
    /// CPUID vendor (`GenuineIntel`, `AuthenticAMD`), if known.
    pub vendor: Option<&'a str>,
    /// Its QEMU's version, if known.
    pub qemu: Option<QemuVersion>,
    /// `vmx` or `svm`, whichever its /proc/cpuinfo lists (`nested-virt`).
    pub nested_flag: Option<&'static str>,
}

impl StartNode<'_> {
    /// A node nothing is known of.
    pub const UNKNOWN: StartNode<'static> = StartNode {
        arch: "x86_64",
        vendor: None,
        qemu: None,
        nested_flag: None,
    };
}

impl<'a> StartNode<'a> {
    /// The start node a capability describes.
    #[must_use]
    pub fn of(cap: &'a crate::cpu::capability::Capability) -> StartNode<'a> {
        StartNode {
            arch: "x86_64",
            vendor: Some(cap.vendor.as_str()),
            qemu: cap.qemu_version,
            nested_flag: cap.nested_flag(),
        }
    }
}

/// A VM as the guard judges it: the configuration its next cold start
/// uses (`[PENDING]` applied) and the one it runs with now, and the
/// custom models they may name.
#[derive(Debug, Clone)]
pub struct VmSpecs<'a> {
    /// What the next start uses.
    pub next_start: VmSpec,
    /// What the running guest was started with (the main section).
    pub running: VmSpec,
    /// The cluster's custom CPU models.
    pub custom: &'a CustomModels,
    /// Where the running guest was cold-started, when recorded: its CPU is
    /// that node's (`host`, `max`, the vendor), whichever node it runs on
    /// now.
    pub cold_start: Option<String>,
}

impl VmSpecs<'_> {
    /// The requirement the verdict judges for `question` on `target`: a
    /// start builds the VM's `-cpu` on the target itself; a live migration
    /// moves a guest whose `-cpu` was built where it was cold-started,
    /// assumed to be the source it runs on now.
    #[must_use]
    pub fn requirement(
        &self,
        question: &crate::cpu::verdict::Question<'_>,
        target: &crate::cpu::capability::Capability,
    ) -> Requirement {
        use crate::cpu::verdict::Question;
        match question {
            Question::Start => launch(&self.next_start, &StartNode::of(target), self.custom),
            Question::Live { source } => launch(
                &self.running,
                &source.map_or(StartNode::UNKNOWN, StartNode::of),
                self.custom,
            ),
        }
        .requirement
    }

    /// The same VM with `cpu:` set to `value` (what `qm set VMID --cpu
    /// VALUE` would make of it), for checking a suggestion.
    #[must_use]
    pub fn with_cpu(&self, value: &str) -> Self {
        let mut next = self.clone();
        for spec in [&mut next.next_start, &mut next.running] {
            spec.cpu = Some(value.to_string());
            spec.args_cpu = None;
            spec.runningcpu = None;
            spec.qemu_cpu = None;
        }
        next.cold_start = None;
        next
    }
}

/// What kind of guest QEMU runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Guest {
    /// An x86-64 guest (under KVM or TCG).
    #[default]
    X86,
    /// A template: started only for backups, minimised to TCG.
    Template,
    /// A guest of another architecture, emulated.
    Emulated {
        /// Its `arch:`.
        arch: String,
    },
}

/// What QEMU is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What kind of guest.
    pub guest: Guest,
    /// Under KVM (`false`: TCG).
    pub kvm: bool,
    /// The guest architecture.
    pub arch: String,
    /// The `-cpu` argument, or why qemu-server would not start the VM.
    pub cpu_arg: Result<String, String>,
    /// The machine version (`11.0+pve2`), when it could be worked out.
    pub machine: Option<String>,
    /// sockets × cores.
    pub vcpus: u32,
    /// What the VM needs of the node, for the verdict.
    pub requirement: Requirement,
}

/// Computes what QEMU is started with for `spec` on `node`.
#[must_use]
pub fn launch(spec: &VmSpec, node: &StartNode<'_>, custom: &CustomModels) -> Launch {
    // Templates: `config_to_command` replaces the config by a minimal one
    // ("they can only start for backup"), `kvm => 0` "to prevent an error
    // on hosts without virtualization extensions"; cpu, ostype, machine,
    // sockets and cores fall back to their defaults.
    let minimal;
    let (spec, guest_kind) = if spec.template {
        minimal = VmSpec {
            template: true,
            kvm: Some(false),
            bios: spec.bios.clone(),
            ..VmSpec::default()
        };
        (&minimal, Some(Guest::Template))
    } else {
        (spec, None)
    };
    let arch = spec.arch.clone().unwrap_or_else(|| node.arch.to_string());
    let native = arch == node.arch;
    // `$kvm //= 1 if is_native_arch($arch)`.
    let kvm = spec.kvm.unwrap_or(native);
    let guest = guest_kind.unwrap_or(if arch == "x86_64" {
        Guest::X86
    } else {
        Guest::Emulated { arch: arch.clone() }
    });
    let vcpus = vcpus_of(spec);

    let qemu = node.qemu.unwrap_or(QemuVersion::LATEST_KNOWN);
    let machine = machine::version(spec, qemu);
    let mut error = None;
    if let Err(e) = &machine {
        error = Some(e.clone());
    }
    if kvm && !native {
        error = Some(format!(
            "KVM cannot run a {arch} guest on a {} node; set `kvm: 0` to emulate it",
            node.arch
        ));
    }

    let cpu_arg = match (
        &error,
        spec.qemu_cpu.as_ref().or(spec.runningcpu.as_ref()),
        &spec.args_cpu,
    ) {
        (Some(e), _, _) if spec.qemu_cpu.is_none() => Err(e.clone()),
        // What a running QEMU was started with stands, whatever the node.
        (_, Some(running), _) if spec.qemu_cpu.is_some() => Ok(running.clone()),
        (Some(e), _, _) => Err(e.clone()),
        // Resuming a hibernated VM forces its `runningcpu` (`vm_start`).
        (None, Some(running), _) => Ok(running.clone()),
        (None, None, _) => {
            let ctx = CpuContext {
                spec,
                arch: &arch,
                kvm,
                node,
                qemu,
                machine: machine.as_ref().ok().copied(),
                custom,
            };
            cpu_options(&ctx)
        }
    };
    let requirement = requirement_of(spec, &guest, kvm, &cpu_arg, node, qemu, &machine, custom);
    // A node's QEMU matters only where it is known.
    let known_machine = machine
        .as_ref()
        .ok()
        .copied()
        .filter(|_| node.qemu.is_some() || spec.machine.is_some());
    let requirement = Requirement {
        vcpus,
        guest: guest.clone(),
        start_error: error,
        machine: known_machine,
        ..requirement
    };
    Launch {
        guest,
        kvm,
        arch,
        // What QEMU finally takes: an `args:` `-cpu` comes later on the
        // command line and wins.
        cpu_arg: match (&spec.args_cpu, cpu_arg) {
            (Some(args), Ok(_)) if spec.runningcpu.is_none() && spec.qemu_cpu.is_none() => {
                Ok(args.clone())
            }
            (_, arg) => arg,
        },
        machine: machine.ok().map(|m| m.to_string()),
        vcpus,
        requirement,
    }
}

/// The requirement of the launch: the `cpu:` value resolved with the
/// flags qemu-server adds (or the exact `-cpu` of a resume or `args:`).
#[allow(clippy::too_many_arguments)]
fn requirement_of(
    spec: &VmSpec,
    guest: &Guest,
    kvm: bool,
    cpu_arg: &Result<String, String>,
    node: &StartNode<'_>,
    qemu: QemuVersion,
    machine: &Result<machine::MachineVersion, String>,
    custom: &CustomModels,
) -> Requirement {
    let mut req = if *guest != Guest::X86 {
        // Nothing of the node's CPU: TCG emulates it.
        let mut r = requirement::from_cpu_value("qemu64", &CustomModels::default());
        r.cpu = spec.cpu.clone().unwrap_or_else(|| match guest {
            Guest::Emulated { .. } => "max".into(),
            _ => "qemu64".into(),
        });
        r.cputype.clone_from(&r.cpu);
        r
    } else if let Some(running) = &spec.qemu_cpu {
        // Messages say "CPU 'kvm64' (running: …)".
        let mut r = requirement::from_qemu_cpu_arg(running);
        r.cpu = spec
            .cpu
            .clone()
            .unwrap_or_else(|| default_cpu_type("x86_64", kvm).into());
        r
    } else if let (Some(running), Ok(_)) = (&spec.runningcpu, cpu_arg) {
        let mut r = requirement::from_qemu_cpu_arg(running);
        r.cpu = format!(
            "{} (resuming with runningcpu {running})",
            spec.cpu
                .as_deref()
                .unwrap_or(default_cpu_type("x86_64", kvm))
        );
        r
    } else if let Some(args) = &spec.args_cpu {
        let mut r = requirement::from_qemu_cpu_arg(args);
        r.cpu = format!("{args} (from `args: -cpu`, which overrides `cpu:`)");
        r.running_cpu = None;
        r
    } else {
        let value = spec
            .cpu
            .as_deref()
            .unwrap_or(default_cpu_type("x86_64", kvm));
        let auto = auto_flags(
            spec,
            kvm,
            node,
            qemu,
            machine.as_ref().ok().copied(),
            value,
            custom,
        );
        requirement::from_cpu_value_with(value, custom, &auto)
    };
    req.hugepages_1g = spec.hugepages_1g;
    req.kvm = kvm;
    req
}

/// qemu-server `get_default_cpu_type`.
#[must_use]
pub fn default_cpu_type(arch: &str, kvm: bool) -> &'static str {
    match (arch, kvm) {
        ("aarch64", true) => "host",
        ("aarch64", false) => "max",
        (_, true) => "kvm64",
        (_, false) => "qemu64",
    }
}

/// qemu-server `windows_version`: 5 for XP/2003/2000, 6 for Vista/2008,
/// N for `winN`, 0 otherwise.
#[must_use]
pub fn windows_version(ostype: Option<&str>) -> u32 {
    match ostype {
        Some("wxp" | "w2k3" | "w2k") => 5,
        Some("w2k8" | "wvista") => 6,
        Some(o) => o
            .strip_prefix("win")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        None => 0,
    }
}

/// The last `-cpu` or `--cpu` in an `args:` value, split as qemu-server
/// splits it (`PVE::Tools::split_args`, shell words: `'-cpu' 'host'` is
/// `-cpu host`). QEMU takes the last `-cpu` of its command line, and
/// `args:` comes after qemu-server's own.
#[must_use]
pub fn args_cpu(args: &str) -> Option<String> {
    let words = shell_words(args);
    let mut found = None;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "-cpu" || w == "--cpu" {
            found = Some(it.next().cloned().unwrap_or_default());
        }
    }
    found
}

/// Shell-like word splitting: blanks separate words; single quotes keep
/// everything; double quotes keep everything but `\"` and `\\`; a
/// backslash outside quotes keeps the next character. An unterminated
/// quote runs to the end (qemu-server would refuse such `args`, and the
/// `-cpu` it may hold is still the best guess).
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => cur.push('\\'),
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Everything `get_cpu_options` reads.
struct CpuContext<'a> {
    spec: &'a VmSpec,
    arch: &'a str,
    kvm: bool,
    node: &'a StartNode<'a>,
    qemu: QemuVersion,
    machine: Option<machine::MachineVersion>,
    custom: &'a CustomModels,
}

impl CpuContext<'_> {
    /// `$version_guard`: the machine version is at least this.
    fn machine_at_least(&self, major: u32, minor: u32, pve: u32) -> bool {
        self.machine.is_some_and(|m| m.at_least(major, minor, pve))
    }
}

/// One entry of qemu-server's flag hashes: `op` is `+`, `-` or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CpuFlag {
    op: &'static str,
    value: Option<String>,
}

type FlagSet = BTreeMap<String, CpuFlag>;

fn flag(set: &mut FlagSet, name: &str, op: &'static str, value: Option<&str>) {
    set.insert(
        name.to_string(),
        CpuFlag {
            op,
            value: value.map(str::to_string),
        },
    );
}

/// What the `cpu:` value names: the parsed value, the custom model it
/// refers to, and the QEMU model qemu-server passes.
struct Named<'a> {
    conf: Option<CpuConf>,
    custom: Option<&'a CpuConf>,
    builtin_flags: &'static [&'static str],
    cputype: String,
}

fn named<'a>(ctx: &CpuContext<'a>) -> Result<Named<'a>, String> {
    let mut out = Named {
        conf: None,
        custom: None,
        builtin_flags: &[],
        cputype: default_cpu_type(ctx.arch, ctx.kvm).to_string(),
    };
    let Some(value) = ctx.spec.cpu.as_deref() else {
        return Ok(out);
    };
    let conf = cpuconf::parse(value).map_err(|e| format!("Cannot parse cpu description: {e}"))?;
    let mut cputype = conf.cputype().to_string();
    if ctx.arch == "x86_64" {
        if let Some(b) = models::BUILTINS.iter().find(|b| b.name == cputype) {
            cputype = "qemu64".into();
            out.builtin_flags = b.flags;
        } else if cputype.starts_with("custom-") {
            let model = ctx
                .custom
                .get(&cputype)
                .ok_or_else(|| format!("custom cpu model '{cputype}' does not exist"))?;
            cputype = model
                .reported_model
                .clone()
                .unwrap_or_else(|| "kvm64".into());
            out.custom = Some(model);
        }
        // qemu-server `$depreacated_cpu_map` (sic).
        cputype = match cputype.as_str() {
            "Icelake-Client" => "Icelake-Server".into(),
            "Icelake-Client-noTSX" => "Icelake-Server-noTSX".into(),
            _ => cputype,
        };
    }
    out.cputype = cputype;
    out.conf = Some(conf);
    Ok(out)
}

/// The vendor qemu-server forces for an x86 model (`None`: the host's).
fn forced_vendor(cputype: &str) -> Option<String> {
    match cputype {
        "host" | "max" | "kvm64" | "kvm32" | "qemu64" | "qemu32" => None,
        _ => models::proxmox_vendor(cputype).filter(|v| v != "default"),
    }
}

/// qemu-server `get_cpu_options`: the `-cpu` argument.
fn cpu_options(ctx: &CpuContext<'_>) -> Result<String, String> {
    let named = named(ctx)?;
    let x86 = ctx.arch == "x86_64";
    if x86 && !is_x86_model(&named.cputype) {
        return Err(format!(
            "CPU model '{}' does not exist for configured vCPU architecture '{}'",
            named.cputype, ctx.arch
        ));
    }
    let vm = named.conf.as_ref();
    let mut kvm_off = ctx.spec.gpu_passthrough;
    let mut hv_vendor_id = None;
    if let Some(c) = named.custom {
        if let Some(h) = c.hidden {
            kvm_off = h;
        }
        hv_vendor_id.clone_from(&c.hv_vendor_id);
    }
    if let Some(c) = vm {
        if let Some(h) = c.hidden {
            kvm_off = h;
        }
        if c.hv_vendor_id.is_some() {
            hv_vendor_id.clone_from(&c.hv_vendor_id);
        }
    }

    let layers = flag_layers(ctx, &named, kvm_off, hv_vendor_id.as_deref());
    let mut out = named.cputype.clone();
    if let Some(level) = vm
        .and_then(|c| c.level)
        .or(named.custom.and_then(|c| c.level))
    {
        if x86 {
            out.push_str(&format!(",level={level}"));
        }
    }
    let mut flags = FlagSet::new();
    for layer in layers {
        resolve_layer(&mut flags, layer, ctx.node.nested_flag);
    }
    for (name, f) in &flags {
        out.push(',');
        out.push_str(f.op);
        out.push_str(name);
        if let Some(v) = f.value.as_deref().filter(|v| !v.is_empty() && *v != "0") {
            out.push('=');
            out.push_str(v);
        }
    }
    for (opt, get) in [
        (
            "guest-phys-bits",
            phys_guest as fn(&CpuConf) -> Option<String>,
        ),
        ("phys-bits", phys_host),
    ] {
        let mut piece = String::new();
        for conf in [named.custom, vm].into_iter().flatten() {
            match get(conf) {
                Some(v) if v == "host" => piece = ",host-phys-bits=true".into(),
                Some(v) => piece = format!(",{opt}={v}"),
                None => {}
            }
        }
        out.push_str(&piece);
    }
    Ok(out)
}

fn phys_guest(c: &CpuConf) -> Option<String> {
    c.guest_phys_bits.map(|b| b.to_string())
}

fn phys_host(c: &CpuConf) -> Option<String> {
    c.phys_bits.map(|p| match p {
        PhysBits::Host => "host".into(),
        PhysBits::Bits(b) => b.to_string(),
    })
}

/// Whether qemu-server's x86 model list has the model (`host`, `max`,
/// `kvm64`, `qemu64` and the named ones).
fn is_x86_model(cputype: &str) -> bool {
    matches!(
        cputype,
        "host" | "max" | "kvm64" | "kvm32" | "qemu64" | "qemu32"
    ) || models::proxmox_vendor(cputype).is_some()
}

/// qemu-server's flag hashes, in the order `resolve_cpu_flags` merges
/// them (a later one replaces an earlier entry of the same name): its own
/// flags, Hyper-V enlightenments, the built-in type's, the custom model's,
/// the VM's, and the forced ones.
fn flag_layers(
    ctx: &CpuContext<'_>,
    named: &Named<'_>,
    kvm_off: bool,
    hv_vendor_id: Option<&str>,
) -> Vec<FlagSet> {
    let x86 = ctx.arch == "x86_64";
    let winversion = windows_version(ctx.spec.ostype.as_deref());
    let pve = pve_flags(ctx, &named.cputype, winversion);
    let hv = if ctx.kvm && x86 {
        hyperv_enlightenments(ctx, winversion, hv_vendor_id)
    } else {
        FlagSet::new()
    };
    let builtin = named
        .builtin_flags
        .iter()
        .map(|f| {
            (
                (*f).to_string(),
                CpuFlag {
                    op: "+",
                    value: None,
                },
            )
        })
        .collect();
    let custom = named
        .custom
        .map(|c| changes(&c.flags, false))
        .unwrap_or_default();
    let vm = named
        .conf
        .as_ref()
        .map(|c| changes(&c.flags, true))
        .unwrap_or_default();
    let mut forced = FlagSet::new();
    if named.cputype != "host" && ctx.kvm && x86 {
        flag(&mut forced, "enforce", "", None);
    }
    if kvm_off && x86 {
        flag(&mut forced, "kvm", "", Some("off"));
    }
    if x86 {
        if let Some(v) = forced_vendor(&named.cputype) {
            flag(&mut forced, "vendor", "", Some(&v));
        }
    }
    vec![pve, hv, builtin, custom, vm, forced]
}

/// `+a;-b` as a flag hash. A VM's own list keeps only the flags Proxmox
/// allows there (`$cpu_flag_supported_re`); a custom model's keeps any.
fn changes(list: &[cpuconf::FlagChange], vm_level: bool) -> FlagSet {
    let mut set = FlagSet::new();
    for c in list {
        if vm_level && !crate::cpu::flags::PROXMOX_VM_FLAGS.contains(&c.name.as_str()) {
            continue;
        }
        flag(&mut set, &c.name, if c.add { "+" } else { "-" }, None);
    }
    set
}

/// Merges one layer; `nested-virt` becomes the start node's `vmx` or
/// `svm` (dropped, as qemu-server drops it with a warning, when neither).
fn resolve_layer(flags: &mut FlagSet, layer: FlagSet, nested: Option<&str>) {
    for (name, f) in layer {
        let name = if name == "nested-virt" {
            match nested {
                Some(n) => n.to_string(),
                None => continue,
            }
        } else {
            name
        };
        flags.insert(name, f);
    }
}

/// qemu-server `get_pve_cpu_flags`.
fn pve_flags(ctx: &CpuContext<'_>, cputype: &str, winversion: u32) -> FlagSet {
    let x86 = ctx.arch == "x86_64";
    let mut f = FlagSet::new();
    if cputype == "kvm64" && x86 {
        flag(&mut f, "lahf_lm", "+", None);
    }
    if ctx.spec.ostype.as_deref() == Some("solaris") {
        flag(&mut f, "x2apic", "-", None);
    }
    if cputype == "kvm64" || cputype == "kvm32" {
        flag(&mut f, "sep", "+", None);
    }
    if cputype.starts_with("Opteron") {
        flag(&mut f, "rdtscp", "-", None);
    }
    if ctx.machine_at_least(2, 3, 0) && ctx.kvm && x86 {
        flag(&mut f, "kvm_pv_unhalt", "+", None);
        flag(&mut f, "kvm_pv_eoi", "+", None);
    }
    if x86 && ctx.qemu.at_least(11, 0) && winversion >= 11 {
        flag(&mut f, "cet-ibt", "-", None);
        flag(&mut f, "cet-ss", "-", None);
    }
    if x86 && ctx.qemu.at_least(11, 0) && cputype == "host" && !ctx.machine_at_least(11, 0, 0) {
        flag(&mut f, "vmx-mbec", "-", None);
    }
    f
}

/// qemu-server `get_hyperv_enlightenments`.
fn hyperv_enlightenments(
    ctx: &CpuContext<'_>,
    winversion: u32,
    hv_vendor_id: Option<&str>,
) -> FlagSet {
    let mut f = FlagSet::new();
    if winversion < 6 || (ctx.spec.bios.as_deref() == Some("ovmf") && winversion < 8) {
        return f;
    }
    if ctx.spec.gpu_passthrough || hv_vendor_id.is_some() {
        flag(
            &mut f,
            "hv_vendor_id",
            "",
            Some(hv_vendor_id.unwrap_or("proxmox")),
        );
    }
    if ctx.machine_at_least(2, 3, 0) {
        flag(&mut f, "hv_spinlocks", "", Some("0x1fff"));
        flag(&mut f, "hv_vapic", "", None);
        flag(&mut f, "hv_time", "", None);
    } else {
        flag(&mut f, "hv_spinlocks", "", Some("0xffff"));
    }
    if ctx.machine_at_least(2, 6, 0) {
        for n in ["hv_reset", "hv_vpindex", "hv_runtime"] {
            flag(&mut f, n, "", None);
        }
    }
    if winversion >= 7 {
        flag(&mut f, "hv_relaxed", "", None);
        if ctx.machine_at_least(2, 12, 0) {
            flag(&mut f, "hv_synic", "", None);
            flag(&mut f, "hv_stimer", "", None);
        }
        if ctx.machine_at_least(3, 1, 0) {
            flag(&mut f, "hv_ipi", "", None);
        }
    }
    // "Enable hv_evmcs for Windows 11/2022/2025 to mitigate issues with
    // VBS" (machine 11.0+pve2), read from the start node's /proc/cpuinfo.
    if ctx.node.vendor == Some("GenuineIntel") && evmcs_applies(ctx, winversion) {
        flag(&mut f, "hv_evmcs", "", None);
    }
    f
}

/// Whether qemu-server adds `hv_evmcs` on an Intel start node.
fn evmcs_applies(ctx: &CpuContext<'_>, winversion: u32) -> bool {
    winversion >= 11 && ctx.machine_at_least(11, 0, 2)
}

/// The flags qemu-server adds by itself that change what the guest needs
/// of the node, as changes applied before the model's own list: what
/// [`requirement::from_cpu_value_with`] layers under the VM's flags.
fn auto_flags(
    spec: &VmSpec,
    kvm: bool,
    node: &StartNode<'_>,
    qemu: QemuVersion,
    machine: Option<machine::MachineVersion>,
    value: &str,
    custom: &CustomModels,
) -> requirement::AutoFlags {
    let ctx = CpuContext {
        spec,
        arch: "x86_64",
        kvm,
        node,
        qemu,
        machine,
        custom,
    };
    let cputype = named(&ctx).map_or_else(|_| value.to_string(), |n| n.cputype);
    let winversion = windows_version(spec.ostype.as_deref());
    let mut auto = requirement::AutoFlags::default();
    for (name, f) in pve_flags(&ctx, &cputype, winversion) {
        // kvm_pv_* are KVM paravirtual features every KVM offers; lahf_lm,
        // sep and Opteron's rdtscp the model table already applies.
        if matches!(name.as_str(), "x2apic" | "cet-ibt" | "cet-ss" | "vmx-mbec") {
            auto.features.push((name, f.op == "+"));
        }
    }
    if kvm {
        let hv_vendor_id = None;
        for (name, _) in hyperv_enlightenments(&ctx, winversion, hv_vendor_id) {
            if name != "hv_vendor_id" && name != "hv_spinlocks" {
                auto.hyperv.push(name.replace('_', "-"));
            }
        }
        if node.vendor.is_none() && evmcs_applies(&ctx, winversion) {
            auto.unknown = Some(
                "qemu-server adds hv_evmcs to a Windows 11+ guest with machine 11.0+pve2 or newer when it starts on an Intel node, and the vendor of the node this guest was started on is not known".into(),
            );
        }
        if auto.hyperv.iter().any(|h| h == "hv-evmcs") {
            auto.notes.push(
                "qemu-server added hv_evmcs by itself (Windows 11+ started on an Intel node with machine 11.0+pve2 or newer); for a running guest, assumed started on the node it runs on now".into(),
            );
        }
    }
    auto
}
