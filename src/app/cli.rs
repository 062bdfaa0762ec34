//! Command-line definitions. Each `///` comment is the help text users see.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::cli_settings::{
    AttachSettings, CheckSettings, HookSettings, MetricsSettings, MigrateSettings, RolloutSettings,
    WhyNotSettings,
};
use crate::app::output::Format;
use crate::conf::config;
use crate::conf::settings::SshArgs;
use crate::cpu::qemu_report::Accel;

const EXIT_CODES: &str = "\
Exit codes:
  0  compatible / ok
  1  incompatible or refused (scan: some nodes failed)
  2  usage, configuration or input error
  3  unknown (not enough data to decide)";

/// Safe live migration across mixed CPU generations in Proxmox VE clusters.
///
/// pve-cpuguard learns every node's CPU, computes the cluster baseline, and
/// refuses VM starts and migrations whose target cannot give the VM its CPU,
/// explaining which flags are missing and which CPU type would work.
#[derive(Debug, Parser)]
#[command(name = "pve-cpuguard", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t, global = true)]
    pub output: Format,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show this host's CPU, its level and every Proxmox CPU type it can run.
    Inspect(InspectArgs),
    /// Explain whether this host can run a given CPU type, and what is missing.
    #[command(name = "why-not")]
    WhyNot(WhyNotArgs),
    /// The VM hookscript: `pre-start` refuses a start or incoming migration
    /// this node cannot give the VM's CPU (set it up with `attach`).
    Hook(HookArgs),
    /// Check a migration with the cache, then run `qm migrate` — or refuse
    /// without running it.
    Migrate(MigrateArgs),
    /// Show which nodes a VM can move to, without moving it.
    Check(CheckArgs),
    /// Read every node's CPU (each node's published record from the cluster
    /// file system first; without a usable one, this node locally and the
    /// others over SSH, all in parallel), update the cache, and print each
    /// node's level and the cluster CPU type.
    ///
    /// A published record (DIR/nodes/NODE/pve-cpuguard.json, see `publish`)
    /// is used when it is valid and younger than the staleness limit; an
    /// invalid one is reported with its path. Host keys are verified
    /// against Proxmox VE's known_hosts files. Exit 0
    /// when every node answered, 1 when some failed (the cluster type then
    /// uses their last known data, and says so), 2 on configuration errors.
    Scan(ScanArgs),
    /// Describe this node's CPU (its /proc/cpuinfo and what its QEMU can
    /// give a guest under KVM, with kernel, microcode and versions) and
    /// write the record to DIR/nodes/NODE/pve-cpuguard.json, where every
    /// node's `scan` reads it from the cluster file system without SSH.
    ///
    /// When this node is new, or its CPU capability dropped since its last
    /// record (a BIOS setting, a microcode update), it says which VMs can
    /// no longer start or live-migrate here.
    ///
    /// Run at boot, hourly before the scan, and after a QEMU upgrade by the
    /// package. Exit 0 when written; 1 when the cluster file system is
    /// read-only (no quorum: the last published record stays); 2 on
    /// configuration, input or other write errors.
    Publish(PublishArgs),
    /// Show the cached view of the cluster (no network): each node's level,
    /// the age of its data, stale records and the last drift.
    ///
    /// Exit 0 when every node has fresh data, 1 when some record is stale or
    /// missing, 3 when the cache holds no data.
    Status(StatusArgs),
    /// From the cache: the strict cluster level, the best named QEMU model
    /// every node supports (same vendor only), and the near misses.
    ///
    /// With --custom-model NAME, also a flag-level baseline (what EVC's
    /// masks do): a cpu-models.conf section with that model as
    /// `reported-model` and every further flag all nodes give under KVM,
    /// judged by the verdict on every node (start, and live migration
    /// between every two) before it is printed; --apply adds it through
    /// `pvesh create /cluster/qemu/custom-cpu-models` (Proxmox VE 9.2 and
    /// later), never changing another model.
    ///
    /// Exit 0 from fresh data (and a custom model accepted on every node,
    /// added or already there), 1 when stale or missing records were
    /// involved, or the custom model is refused somewhere, differs from
    /// the one of that name in cpu-models.conf, or pvesh failed, 2 on
    /// usage errors, 3 when the cache holds no data.
    Baseline(BaselineArgs),
    /// Every VM of the cluster against every node, from the cache: where
    /// each could start and live-migrate to, and the VMs at risk.
    ///
    /// Flags VMs whose CPU type is above the cluster baseline, `host`/`max`
    /// VMs in a cluster whose nodes differ, HA-managed VMs that could not be
    /// recovered onto some node, and VMs without the guard's hookscript;
    /// for each, the CPU type that would make it movable everywhere. Exit 0
    /// when nothing is flagged, 1 when something is, 3 when the cache holds
    /// no node data.
    ///
    /// `--output json` states each distinct answer, verdict, requirement and
    /// finding once, in tables the VMs refer to by id (`format` 2; the
    /// fields and how ids resolve: docs/json.md).
    Audit(AuditArgs),
    /// Put the guard's hookscript on VMs of this node: copy the hook file
    /// into the storage's snippets directory, then `qm set VMID
    /// --hookscript STORAGE:snippets/pve-cpuguard-hook`.
    ///
    /// A VM that already has another hookscript keeps it: it is recorded in
    /// /etc/pve/pve-cpuguard/chain.conf and runs after the guard allows.
    /// Exit 0 when every selected VM is done, 1 when some could not be
    /// changed, 2 on configuration errors (e.g. a storage without snippets).
    Attach(AttachArgs),
    /// Undo `attach` on VMs of this node: put back the hookscript each VM
    /// had (or remove the guard's), and drop its chain.conf entry. The hook
    /// file stays in the snippets directory.
    Detach(DetachArgs),
    /// Keep Proxmox VE's HA stack on nodes each VM's CPU can run on: for
    /// every HA-managed VM, every node where it can start (HA recovery is
    /// a cold start), those it can also live-migrate to from its current
    /// node at the higher priority (from the cache), grouped into strict
    /// node-affinity rules in /etc/pve/ha/rules.cfg, managed with
    /// `ha-manager rules add|set|remove`.
    ///
    /// Only rules of pve-cpuguard (id `cpuguard-…` and its comment) are
    /// changed; a VM in an administrator's rule gets none, and a rule that
    /// lets HA pick a node its VM cannot run on is reported with the change
    /// to make. Without --apply nothing changes. Exit 0 when the rules are
    /// current and nothing conflicts, 1 when calls are pending, failed or
    /// were refused (no quorum) or a conflict remains, 2 on input errors,
    /// 3 when the cache holds no node data.
    #[command(name = "ha-rules")]
    HaRules(HaRulesArgs),
    /// Keep ProxLB on nodes each VM's CPU can be live-migrated to: for
    /// every VM of this node, `plb_pin_<node>` tags for those nodes, or
    /// `plb_ignore_cpuguard` when there is none but its own, set with
    /// `qm set VMID --tags …` keeping every other tag.
    ///
    /// Only tags pve-cpuguard wrote (recorded in
    /// /etc/pve/pve-cpuguard/proxlb-tags.json) are ever removed; a VM with
    /// ProxLB tags of the administrator's gets none. Without --apply
    /// nothing changes. Exit 0 when this node's tags are current, 1 when calls are
    /// pending or failed, 2 on input errors, 3 when the cache holds no
    /// node data.
    #[command(name = "proxlb-tags")]
    ProxlbTags(ProxlbTagsArgs),
    /// What a change would do, before it is made: a node added or retired,
    /// VMs given another CPU type. From the cache and /etc/pve; nothing is
    /// changed.
    ///
    /// For the cluster before → after: its CPU type and best named model;
    /// for every VM, the nodes it gains or loses for a start and a live
    /// migration; the VMs left with no node; the HA rules `ha-rules` would
    /// then write; for --set-cpu, the `qm set` commands. Exit 0 when
    /// nothing gets worse, 1 when some VM loses a node (or cannot use an
    /// added one), 2 on usage errors, 3 when what it does to some VM
    /// cannot be judged or no node has data.
    Plan(PlanArgs),
    /// Prometheus metrics for node_exporter's textfile collector: each
    /// node's level and cache age, stale records, the cluster baseline,
    /// the VMs at risk, and this node's last refusal.
    Metrics(MetricsArgs),
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GenerateWhat {
    /// Man pages: pve-cpuguard.1 and pve-cpuguard-COMMAND.1.
    Man,
    /// bash, zsh and fish completions.
    Completions,
}

/// Arguments of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub what: GenerateWhat,
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
}

/// Arguments of `metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write to this file atomically (e.g.
    /// /var/lib/prometheus/node-exporter/pve-cpuguard.prom) instead of
    /// stdout.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    #[command(flatten)]
    pub common: MetricsSettings,
}

/// Which VMs `attach`/`detach` change.
#[derive(Debug, Args)]
pub struct VmSelection {
    /// Every VM whose configuration is on this node.
    #[arg(long, conflicts_with = "vmids", required_unless_present = "vmids")]
    pub all: bool,
    /// These VMs (they must be on this node: qm changes only its own VMs).
    #[arg(value_name = "VMID")]
    pub vmids: Vec<String>,
}

/// Arguments of `attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub select: VmSelection,
    /// Storage whose snippets directory gets the hook file (see
    /// /etc/pve/storage.cfg; it must have `snippets` content).
    #[arg(
        long,
        env = "PVE_CPUGUARD_STORAGE",
        default_value = "local",
        value_name = "STORAGE"
    )]
    pub storage: String,
    /// Show what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The hook file to install.
    #[arg(
        long,
        env = "PVE_CPUGUARD_HOOK_FILE",
        default_value = "/usr/share/pve-cpuguard/pve-cpuguard-hook",
        value_name = "FILE"
    )]
    pub hook_file: PathBuf,
    #[command(flatten)]
    pub qm: QmArg,
    #[command(flatten)]
    pub common: AttachSettings,
}

/// Arguments of `detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    #[command(flatten)]
    pub select: VmSelection,
    /// Show what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub qm: QmArg,
    #[command(flatten)]
    pub common: RolloutSettings,
}

/// Arguments of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Every VM in full (the default text is a summary that groups them)
    #[arg(long)]
    pub all: bool,
    /// Only these VMs, in full
    #[arg(long = "vm", value_name = "VMID", num_args = 1.., action = clap::ArgAction::Append)]
    pub vms: Vec<u32>,
    /// Only the VMs on these nodes, in full (`--node` names this node)
    #[arg(long = "on", value_name = "NODE", num_args = 1.., action = clap::ArgAction::Append)]
    pub on: Vec<String>,
    /// Only the VMs with these findings, in full
    #[arg(
        long = "finding",
        value_name = "CODE",
        num_args = 1..,
        action = clap::ArgAction::Append,
        value_parser = clap::builder::PossibleValuesParser::new(crate::guard::audit::Finding::CODES)
    )]
    pub findings: Vec<String>,
    #[command(flatten)]
    pub common: CheckSettings,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Add a node (repeatable): FILE is its /proc/cpuinfo, or the record
    /// `pve-cpuguard publish --output-file FILE` wrote on it.
    #[arg(long = "add-node", value_name = "NAME=FILE")]
    pub add_node: Vec<String>,
    /// Remove a node (repeatable).
    #[arg(long = "remove-node", value_name = "NAME")]
    pub remove_node: Vec<String>,
    /// Give a VM another `cpu:` value (repeatable), as after its next cold
    /// start.
    #[arg(long = "set-cpu", value_name = "VMID=VALUE")]
    pub set_cpu: Vec<String>,
    /// Give every VM this `cpu:` value (--set-cpu wins for its VM).
    #[arg(long = "set-cpu-all", value_name = "VALUE")]
    pub set_cpu_all: Option<String>,
    /// Also print the least a new node must offer so that every VM can
    /// start and live-migrate there.
    #[arg(long)]
    pub need: bool,
    #[command(flatten)]
    pub common: CheckSettings,
}

/// Arguments of `baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Also print a custom CPU model NAME (used as `cpu: custom-NAME`):
    /// the best named model every node runs plus every further flag all
    /// nodes give under KVM, checked on every node.
    #[arg(long, value_name = "NAME")]
    pub custom_model: Option<String>,
    /// Add the custom model with `pvesh create` (needs quorum); a model of
    /// that name already in cpu-models.conf is never changed.
    #[arg(long, requires = "custom_model")]
    pub apply: bool,
    /// Print exactly the `pvesh` call --apply would run, and run none.
    #[arg(long, requires = "custom_model", conflicts_with = "apply")]
    pub dry_run: bool,
    /// The Proxmox cluster file system, for
    /// virtual-guest/cpu-models.conf [default: `pve_dir` in the
    /// configuration file, else /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,
    /// `pvesh`, which --apply runs.
    #[arg(
        long,
        env = "PVE_CPUGUARD_PVESH",
        default_value = "/usr/bin/pvesh",
        value_name = "PATH"
    )]
    pub pvesh: PathBuf,
}

/// Arguments of `ha-rules`.
#[derive(Debug, Args)]
pub struct HaRulesArgs {
    /// Run the `ha-manager` calls (needs quorum).
    #[arg(long)]
    pub apply: bool,
    /// Print exactly the `ha-manager` calls --apply would run, and run none.
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    #[command(flatten)]
    pub ha_manager: HaManagerArg,
    #[command(flatten)]
    pub common: CheckSettings,
}

/// Arguments of `proxlb-tags`.
#[derive(Debug, Args)]
pub struct ProxlbTagsArgs {
    /// Run the `qm set` calls.
    #[arg(long)]
    pub apply: bool,
    /// Print exactly the `qm set` calls --apply would run, and run none.
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    #[command(flatten)]
    pub qm: QmArg,
    #[command(flatten)]
    pub common: CheckSettings,
}

/// Where `ha-manager` is: replaced only at this exec boundary.
#[derive(Debug, Args)]
pub struct HaManagerArg {
    /// The `ha-manager` binary.
    #[arg(
        long = "ha-manager",
        env = "PVE_CPUGUARD_HA_MANAGER",
        default_value = "/usr/sbin/ha-manager",
        value_name = "PATH"
    )]
    pub binary: PathBuf,
}

/// Where `qm` is: replaced only at this exec boundary (tests record its argv).
#[derive(Debug, Args)]
pub struct QmArg {
    /// The `qm` binary.
    #[arg(
        long = "qm",
        env = "PVE_CPUGUARD_QM",
        default_value = "/usr/sbin/qm",
        value_name = "PATH"
    )]
    pub path: PathBuf,
}

/// Arguments of `hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// VMID, as Proxmox passes it.
    pub vmid: String,
    /// Phase: pre-start, post-start, pre-stop, post-stop (only pre-start checks).
    pub phase: String,
    /// Hard deadline for the check; past it the policy decides.
    #[arg(long, env = "PVE_CPUGUARD_HOOK_DEADLINE", default_value = "10s", value_parser = config::deadline_arg)]
    pub deadline: Duration,
    /// Where Proxmox keeps the PID files of running VMs (`post-start`
    /// records the running QEMU's -cpu from there).
    #[arg(
        long,
        env = "PVE_CPUGUARD_RUN_DIR",
        default_value = "/var/run/qemu-server",
        value_name = "DIR"
    )]
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub common: HookSettings,
    /// `PVE_CPUGUARD_*` variables whose values were invalid and so left
    /// out (filled in by the binaries after parsing, see
    /// [`crate::app::usage::parse_lenient`]): for the hook, input problems
    /// like any other, judged by the policy.
    #[arg(skip)]
    pub env_problems: Vec<crate::app::usage::EnvProblem>,
}

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Run `qm migrate` even though the check refuses (needs --reason).
    #[arg(long)]
    pub force_unsafe: bool,
    /// Why the override is needed; logged with who ran it.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub qm: QmArg,
    /// Where Proxmox keeps the PID files of running VMs.
    #[arg(
        long,
        env = "PVE_CPUGUARD_RUN_DIR",
        default_value = "/var/run/qemu-server",
        value_name = "DIR"
    )]
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub common: MigrateSettings,
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Also ask the target's QEMU when refreshing its record.
    #[arg(long, env = "PVE_CPUGUARD_PROBE", value_enum, default_value_t = ScanProbe::Kvm)]
    pub probe: ScanProbe,
    /// VMID to migrate.
    pub vmid: String,
    /// Target node.
    pub target: String,
    /// Options for `qm migrate`, passed through untouched (e.g. --online).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "QM_OPTIONS"
    )]
    pub qm_args: Vec<String>,
}

/// Which rules `check` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CheckMode {
    /// Live rules when the VM runs on this node, else start rules.
    #[default]
    Auto,
    /// As a live migration from the VM's node.
    Live,
    /// Whether the VM could start on each node.
    Start,
    /// As a migration from another cluster (`qm remote-migrate`): start
    /// rules, and a CPU that depends on the source node is unknown unless
    /// --source-record gives that node's record.
    Remote,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// VMID to check.
    pub vmid: String,
    /// Only these target nodes (repeatable) [default: every other node].
    #[arg(long = "target", value_name = "NODE")]
    pub targets: Vec<String>,
    /// Live-migration or start rules.
    #[arg(long, value_enum, default_value_t)]
    pub mode: CheckMode,
    /// The published record (nodes/NODE/pve-cpuguard.json) of the source
    /// node of a migration from another cluster; implies --mode remote.
    #[arg(long, value_name = "FILE")]
    pub source_record: Option<PathBuf>,
    /// Where Proxmox keeps the PID files of running VMs.
    #[arg(
        long,
        env = "PVE_CPUGUARD_RUN_DIR",
        default_value = "/var/run/qemu-server",
        value_name = "DIR"
    )]
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub common: CheckSettings,
}

/// Where the cluster cache lives.
#[derive(Debug, Args)]
pub struct CacheFileArgs {
    /// The cache file (its writers' lock is FILE.lock beside it)
    /// [default: `cache` in the configuration file, else
    /// /var/cache/pve-cpuguard/cluster.json].
    #[arg(long, env = "PVE_CPUGUARD_CACHE", value_name = "FILE")]
    pub cache: Option<PathBuf>,

    /// Configuration file [default: /etc/pve-cpuguard/pve-cpuguard.conf].
    #[arg(long, env = "PVE_CPUGUARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl CacheFileArgs {
    /// Reads the configuration file and resolves the cache path
    /// (flag > environment > file > default).
    ///
    /// # Errors
    /// An invalid configuration file.
    pub fn resolve(&self) -> crate::error::Result<(config::Config, PathBuf)> {
        let conf = config::Config::load_given(self.config.as_deref())?;
        let cache = config::Config::pick(
            self.cache.clone(),
            conf.cache.as_ref(),
            crate::cache::DEFAULT_PATH.into(),
        );
        Ok((conf, cache))
    }
}

/// Where the cluster cache lives, and when its records are stale.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub file: CacheFileArgs,

    /// A cache record older than this is stale (e.g. 90m, 2h): marked in
    /// the output and exit 1 [default: `cache_max_age` in the
    /// configuration file, else 2h].
    #[arg(long, env = "PVE_CPUGUARD_CACHE_MAX_AGE", value_parser = config::duration_arg)]
    pub cache_max_age: Option<Duration>,
}

impl CacheArgs {
    /// `cache_max_age` in seconds: flag > environment > file > default,
    /// resolved by the same code as every other command's
    /// ([`crate::conf::settings::cache_max_age`]).
    #[must_use]
    pub fn max_age(&self, conf: &config::Config) -> u64 {
        crate::conf::settings::cache_max_age(self.cache_max_age, conf).as_secs()
    }

    /// Reads the configuration file and resolves the cache path
    /// (flag > environment > file > default).
    ///
    /// # Errors
    /// An invalid configuration file.
    pub fn resolve(&self) -> crate::error::Result<(config::Config, PathBuf)> {
        self.file.resolve()
    }
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// The Proxmox cluster file system, whose nodes/ lists the cluster's
    /// nodes (one the cache has never seen is named, never left out)
    /// [default: `pve_dir` in the configuration file, else /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,
}

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub cache: CacheArgs,

    /// The Proxmox cluster file system: corosync.conf, .members,
    /// nodes/NODE/ssh_known_hosts and priv/known_hosts are read below it
    /// [default: `pve_dir` in the configuration file, else /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,

    /// corosync.conf to read the node list from [default: DIR/corosync.conf,
    /// else /etc/corosync/corosync.conf].
    #[arg(long, env = "PVE_CPUGUARD_COROSYNC", value_name = "FILE")]
    pub corosync: Option<PathBuf>,

    /// This node's name in the cluster [default: .members nodename, else the
    /// host name]. It is read locally, never over SSH.
    #[arg(long, env = "PVE_CPUGUARD_NODE", value_name = "NAME")]
    pub node: Option<String>,

    #[command(flatten)]
    pub cpuinfo: CpuinfoArg,

    #[command(flatten)]
    pub ssh: SshArgs,

    /// Ask each node's QEMU what KVM gives a guest, and judge by it (`off`:
    /// /proc/cpuinfo only).
    #[arg(long, env = "PVE_CPUGUARD_PROBE", value_enum, default_value_t = ScanProbe::Kvm)]
    pub probe: ScanProbe,

    /// QEMU binary for this node's probe [default: qemu-system-x86_64, else
    /// kvm, from PATH].
    #[arg(long, env = "PVE_CPUGUARD_QEMU", value_name = "FILE")]
    pub qemu: Option<PathBuf>,

    /// Never use SSH: nodes without a usable published record are reported
    /// missing [default: `no_ssh` in the configuration file, else off].
    #[arg(long, env = "PVE_CPUGUARD_NO_SSH")]
    pub no_ssh: bool,

    /// Nodes reached at once (each round takes one SSH timeout at most).
    #[arg(
        long,
        env = "PVE_CPUGUARD_SCAN_WORKERS",
        value_name = "N",
        default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub workers: u16,

    /// `pvesh`, for pvestatd's per-node CPU flags (absent: not used).
    #[arg(
        long,
        env = "PVE_CPUGUARD_PVESH",
        default_value = "/usr/bin/pvesh",
        value_name = "PATH"
    )]
    pub pvesh: PathBuf,
    #[command(flatten)]
    pub duties: ScanDuties,
}

/// What `scan` may do after it updated the cache, when the configuration
/// file asks for it (`auto_attach`, `ha_rules`): the binaries it then runs.
#[derive(Debug, Args)]
pub struct ScanDuties {
    #[command(flatten)]
    pub qm: QmArg,
    #[command(flatten)]
    pub ha_manager: HaManagerArg,
    /// The hook file `auto_attach` installs.
    #[arg(
        long,
        env = "PVE_CPUGUARD_HOOK_FILE",
        default_value = "/usr/share/pve-cpuguard/pve-cpuguard-hook",
        value_name = "FILE"
    )]
    pub hook_file: PathBuf,
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Configuration file [default: /etc/pve-cpuguard/pve-cpuguard.conf].
    #[arg(long, env = "PVE_CPUGUARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The Proxmox cluster file system; the record goes to
    /// DIR/nodes/NODE/pve-cpuguard.json [default: `pve_dir` in the
    /// configuration file, else /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,

    /// This node's name [default: .members nodename, else the host name].
    #[arg(long, env = "PVE_CPUGUARD_NODE", value_name = "NAME")]
    pub node: Option<String>,

    #[command(flatten)]
    pub cpuinfo: CpuinfoArg,

    /// Ask this node's QEMU what it can give a guest: `kvm` is what guests
    /// really get; `off` publishes /proc/cpuinfo only.
    #[arg(long, env = "PVE_CPUGUARD_PROBE", value_enum, default_value_t = ScanProbe::Kvm)]
    pub probe: ScanProbe,

    /// QEMU binary [default: qemu-system-x86_64, else kvm, from PATH].
    #[arg(long, env = "PVE_CPUGUARD_QEMU", value_name = "FILE")]
    pub qemu: Option<PathBuf>,

    /// Seconds QEMU may take to answer before it is killed.
    #[arg(
        long,
        env = "PVE_CPUGUARD_PROBE_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=600),
        value_name = "SECONDS"
    )]
    pub probe_timeout: u64,

    /// Write the record to this file instead, on a machine not in the
    /// cluster yet (no /etc/pve needed): `plan --add-node NAME=FILE` reads
    /// it.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
}

/// Whether `scan` asks QEMU too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanProbe {
    /// QEMU under KVM: what guests really get.
    Kvm,
    /// QEMU's emulator (machines without KVM; not what KVM guests get).
    Tcg,
    /// /proc/cpuinfo only.
    Off,
}

impl ScanProbe {
    /// The accelerator to ask, if any.
    #[must_use]
    pub fn accel(self) -> Option<Accel> {
        match self {
            ScanProbe::Kvm => Some(Accel::Kvm),
            ScanProbe::Tcg => Some(Accel::Tcg),
            ScanProbe::Off => None,
        }
    }
}

/// Where a host's CPU description comes from.
#[derive(Debug, Args)]
pub struct CpuinfoArg {
    /// Read this file instead of the host's /proc/cpuinfo.
    #[arg(
        long,
        env = "PVE_CPUGUARD_CPUINFO",
        default_value = "/proc/cpuinfo",
        value_name = "FILE"
    )]
    pub cpuinfo: PathBuf,
}

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub cpuinfo: CpuinfoArg,

    /// Also ask QEMU what it can give a guest, and show that beside the
    /// /proc/cpuinfo view: `kvm` is what guests really get (needs a usable
    /// /dev/kvm); `tcg` asks QEMU's emulator, only for machines without KVM.
    #[arg(long, value_enum, value_name = "ACCEL")]
    pub probe: Option<Accel>,

    /// QEMU binary for --probe [default: qemu-system-x86_64, else kvm, from
    /// PATH].
    #[arg(long, env = "PVE_CPUGUARD_QEMU", value_name = "FILE")]
    pub qemu: Option<PathBuf>,

    /// The cluster cache: without --probe, this node's QEMU answer recorded
    /// by the last scan decides, as in every other command.
    #[command(flatten)]
    pub cache: CacheFileArgs,

    /// The Proxmox VE cluster file system, whose `.members` names this
    /// node [default: /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,

    /// This node's name in the cache [default: `.members` `nodename`, else
    /// the short host name].
    #[arg(long, env = "PVE_CPUGUARD_NODE", value_name = "NAME")]
    pub node: Option<String>,

    /// Seconds QEMU may take to answer --probe before it is killed.
    #[arg(
        long,
        env = "PVE_CPUGUARD_PROBE_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=600),
        value_name = "SECONDS"
    )]
    pub probe_timeout: u64,
}

/// Arguments of `why-not`.
#[derive(Debug, Args)]
pub struct WhyNotArgs {
    /// A VM `cpu:` value: `x86-64-v4`, `Skylake-Server-v4`, `host`,
    /// `custom-NAME`, or `cputype=EPYC-Rome,flags=+pdpe1gb`.
    #[arg(value_name = "CPU")]
    pub cpu: String,

    /// Paths (custom models are read from the Proxmox cluster file
    /// system's `virtual-guest/cpu-models.conf`), resolved like every
    /// command's: flag > variable > configuration file > default.
    #[command(flatten)]
    pub common: WhyNotSettings,
}
