//! The settings options (`--config`, `--pve-dir`, `--policy`, …), one clap
//! group per setting, and for each command the groups it reads. `--help`
//! and the man page of a command list only the settings that command
//! uses: a setting it never reads would look like it changes something.
//!
//! Which command reads what follows the code: [`Settings`] fields used by
//! each command's `run` (src/app/commands/*.rs) and by what it calls
//! (`guard::audit_input::gather`, `commands::vm_context::load`,
//! `guard::fleet::load`/`load_cached`, `guard::chain::lookup`).
//!
//! [`Settings`]: crate::conf::settings::Settings

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::conf::config::{self, Policy, VendorChange};
use crate::conf::settings::{CommonArgs, SettingsArgs};

/// `--config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file [default: /etc/pve-cpuguard/pve-cpuguard.conf].
    #[arg(long, env = "PVE_CPUGUARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--pve-dir`.
#[derive(Debug, Clone, Args)]
pub struct PveDirArg {
    /// The Proxmox cluster file system [default: `pve_dir` in the
    /// configuration file, else /etc/pve].
    #[arg(long, env = "PVE_CPUGUARD_PVE_DIR", value_name = "DIR")]
    pub pve_dir: Option<PathBuf>,
}

/// `--node`.
#[derive(Debug, Clone, Args)]
pub struct NodeArg {
    /// This node's name [default: `.members` `nodename` under the cluster
    /// file system, else the short host name].
    #[arg(long, env = "PVE_CPUGUARD_NODE", value_name = "NAME")]
    pub node: Option<String>,
}

/// `--cpuinfo`.
#[derive(Debug, Clone, Args)]
pub struct CpuinfoOpt {
    /// This node's CPU description [default: /proc/cpuinfo].
    #[arg(long, env = "PVE_CPUGUARD_CPUINFO", value_name = "FILE")]
    pub cpuinfo: Option<PathBuf>,
}

/// `--cache`.
#[derive(Debug, Clone, Args)]
pub struct CacheFileArg {
    /// The cluster cache [default: `cache` in the configuration file, else
    /// /var/cache/pve-cpuguard/cluster.json].
    #[arg(long, env = "PVE_CPUGUARD_CACHE", value_name = "FILE")]
    pub cache: Option<PathBuf>,
}

/// `--policy` and `--vendor-change`: the rules of a decision.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// What to do when safety cannot be proven [default: `policy` in the
    /// configuration file, else default].
    #[arg(long, env = "PVE_CPUGUARD_POLICY", value_enum)]
    pub policy: Option<Policy>,

    /// What to do when a live migration changes the CPU vendor [default:
    /// `vendor_change` in the configuration file, else refuse].
    #[arg(long, env = "PVE_CPUGUARD_VENDOR_CHANGE", value_enum)]
    pub vendor_change: Option<VendorChange>,
}

/// `--state-dir`.
#[derive(Debug, Clone, Args)]
pub struct StateDirArg {
    /// Where the guard keeps its state (the last refusal) [default:
    /// `state_dir` in the configuration file, else /var/lib/pve-cpuguard].
    #[arg(long, env = "PVE_CPUGUARD_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `--cache-max-age`.
#[derive(Debug, Clone, Args)]
pub struct MaxAgeArg {
    /// A cache record older than this is stale (e.g. 90m, 2h) [default:
    /// `cache_max_age` in the configuration file, else 2h].
    #[arg(long, env = "PVE_CPUGUARD_CACHE_MAX_AGE", value_parser = config::duration_arg)]
    pub cache_max_age: Option<Duration>,
}

/// Copies one group's values into the settings' input.
trait Fill {
    fn fill(&self, c: &mut CommonArgs);
}

impl Fill for ConfigArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.config.clone_from(&self.config);
    }
}
impl Fill for PveDirArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.pve_dir.clone_from(&self.pve_dir);
    }
}
impl Fill for NodeArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.node.clone_from(&self.node);
    }
}
impl Fill for CpuinfoOpt {
    fn fill(&self, c: &mut CommonArgs) {
        c.cpuinfo.clone_from(&self.cpuinfo);
    }
}
impl Fill for CacheFileArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.cache.clone_from(&self.cache);
    }
}
impl Fill for RulesArgs {
    fn fill(&self, c: &mut CommonArgs) {
        c.policy = self.policy;
        c.vendor_change = self.vendor_change;
    }
}
impl Fill for StateDirArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.state_dir.clone_from(&self.state_dir);
    }
}
impl Fill for MaxAgeArg {
    fn fill(&self, c: &mut CommonArgs) {
        c.cache_max_age = self.cache_max_age;
    }
}

/// A command's settings options: the listed groups, in this order in
/// `--help`; the settings it does not list keep their configuration-file
/// value or default.
macro_rules! settings_of {
    ($(#[$meta:meta])* $name:ident { $($field:ident: $group:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            $(
                #[allow(missing_docs)]
                #[command(flatten)]
                pub $field: $group,
            )+
        }

        impl SettingsArgs for $name {
            fn common(&self) -> CommonArgs {
                let mut c = CommonArgs::default();
                $(self.$field.fill(&mut c);)+
                c
            }
        }
    };
}

settings_of! {
    /// `why-not`: this node's CPU, its cached record and the custom models.
    WhyNotSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
        cpuinfo: CpuinfoOpt,
        cache: CacheFileArg,
    }
}

settings_of! {
    /// `hook`: a decision, the last refusal kept, no ages shown.
    HookSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
        cpuinfo: CpuinfoOpt,
        cache: CacheFileArg,
        rules: RulesArgs,
        state_dir: StateDirArg,
    }
}

settings_of! {
    /// `check` and `audit`: decisions, with stale records marked.
    CheckSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
        cpuinfo: CpuinfoOpt,
        cache: CacheFileArg,
        rules: RulesArgs,
        max_age: MaxAgeArg,
    }
}

settings_of! {
    /// `migrate`: a decision, stale records read again, refusals kept.
    MigrateSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
        cpuinfo: CpuinfoOpt,
        cache: CacheFileArg,
        rules: RulesArgs,
        max_age: MaxAgeArg,
        state_dir: StateDirArg,
    }
}

settings_of! {
    /// `metrics`: the cluster from the cache alone (this node's CPU is not
    /// read), ages and the last refusal.
    MetricsSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        cache: CacheFileArg,
        rules: RulesArgs,
        max_age: MaxAgeArg,
        state_dir: StateDirArg,
    }
}

settings_of! {
    /// `attach`: this node's VMs and the storages, and the cache (which
    /// nodes' records say they lack the hook file).
    AttachSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
        cache: CacheFileArg,
    }
}

settings_of! {
    /// `detach`: this node's VMs and the storages.
    RolloutSettings {
        config: ConfigArg,
        pve_dir: PveDirArg,
        node: NodeArg,
    }
}
