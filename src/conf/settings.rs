//! Settings every cluster-aware command shares, resolved once:
//! flag > `PVE_CPUGUARD_*` environment variable (both via clap) > the
//! configuration file > the real Proxmox default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::conf::config::{self, Config, Policy, VendorChange};
use crate::error::{Error, Result};
use crate::pve::paths::PveDir;

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pve-cpuguard";

/// Default cache file.
pub const DEFAULT_CACHE: &str = "/var/cache/pve-cpuguard/cluster.json";

/// The settings options as given (flag or environment variable), `None`
/// where not given. Each command's clap group
/// ([`crate::app::cli_settings`]) offers only the options that command
/// reads and leaves the others `None`.
#[derive(Debug, Clone, Default)]
pub struct CommonArgs {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--pve-dir`.
    pub pve_dir: Option<PathBuf>,
    /// `--node`.
    pub node: Option<String>,
    /// `--cpuinfo`.
    pub cpuinfo: Option<PathBuf>,
    /// `--cache`.
    pub cache: Option<PathBuf>,
    /// `--policy`.
    pub policy: Option<Policy>,
    /// `--vendor-change`.
    pub vendor_change: Option<VendorChange>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--cache-max-age`.
    pub cache_max_age: Option<Duration>,
}

/// A command's settings options, as the input of [`Settings::resolve`].
pub trait SettingsArgs {
    /// The options given; `None` for those the command does not offer.
    fn common(&self) -> CommonArgs;
}

impl SettingsArgs for CommonArgs {
    fn common(&self) -> CommonArgs {
        self.clone()
    }
}

/// How to reach other nodes over SSH (`scan`, and `migrate` when it reads
/// a stale target again). Each falls back to the configuration file, then
/// the default.
#[derive(Debug, Clone, Args, Default)]
pub struct SshArgs {
    /// SSH port of every node [default: `ssh_port` in the configuration
    /// file, else 22].
    #[arg(long, env = "PVE_CPUGUARD_SSH_PORT", value_name = "PORT")]
    pub ssh_port: Option<u16>,

    /// Remote user [default: `ssh_user` in the configuration file, else
    /// root].
    #[arg(long, env = "PVE_CPUGUARD_SSH_USER", value_name = "USER")]
    pub ssh_user: Option<String>,

    /// Private key file [default: `ssh_key` in the configuration file,
    /// else ~/.ssh/id_ed25519, id_ecdsa and id_rsa that exist, after the
    /// agent when SSH_AUTH_SOCK is set].
    #[arg(long, env = "PVE_CPUGUARD_SSH_KEY", value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,

    /// known_hosts file to verify host keys with, replacing Proxmox VE's
    /// list (DIR/nodes/NODE/ssh_known_hosts alone when it exists, else
    /// DIR/priv/known_hosts, /etc/ssh/ssh_known_hosts, ~/.ssh/known_hosts)
    /// [default: `known_hosts` in the configuration file].
    #[arg(long, env = "PVE_CPUGUARD_KNOWN_HOSTS", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Per-node bound on connect, handshake, authentication and read, in
    /// seconds (fractions allowed) or with a unit (10s, 1m)
    /// [default: `ssh_timeout` in the configuration file, else 10].
    #[arg(long, env = "PVE_CPUGUARD_TIMEOUT", value_name = "SECONDS", value_parser = config::timeout_arg)]
    pub timeout: Option<Duration>,
}

impl SshArgs {
    /// The SSH options: flag or environment, else the configuration file,
    /// else the default.
    ///
    /// # Errors
    /// A key or known_hosts file that does not exist.
    pub fn resolve(&self, c: &Config, pve_dir: &Path) -> Result<crate::reach::ssh::Options> {
        let key = self.ssh_key.clone().or_else(|| c.ssh_key.clone());
        let known_hosts = self.known_hosts.clone().or_else(|| c.known_hosts.clone());
        for (what, path) in [("known_hosts file", &known_hosts), ("SSH key", &key)] {
            if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
                return Err(Error::Usage(format!(
                    "{what} {}: no such file",
                    p.display()
                )));
            }
        }
        Ok(crate::reach::ssh::Options {
            user: Config::pick(self.ssh_user.clone(), c.ssh_user.as_ref(), "root".into()),
            port: Config::pick(self.ssh_port, c.ssh_port.as_ref(), 22),
            timeout: Config::pick(
                self.timeout,
                c.ssh_timeout.as_ref(),
                Duration::from_secs(10),
            ),
            use_agent: key.is_none() && std::env::var_os("SSH_AUTH_SOCK").is_some(),
            keys: key.map_or_else(crate::reach::ssh::Options::default_keys, |k| vec![k]),
            known_hosts,
            pve_dir: pve_dir.to_path_buf(),
            probe: None,
        })
    }
}

/// The default `cache_max_age`.
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(2 * 3600);

/// `cache_max_age`: flag or environment, else the file, else 2h. Every
/// command that reads the cache resolves it here.
#[must_use]
pub fn cache_max_age(given: Option<Duration>, config: &Config) -> Duration {
    Config::pick(given, config.cache_max_age.as_ref(), DEFAULT_CACHE_MAX_AGE)
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration file as read.
    pub config: Config,
    /// `/etc/pve`.
    pub pve: PveDir,
    /// This node.
    pub node: String,
    /// This node's cpuinfo.
    pub cpuinfo: PathBuf,
    /// Cache file.
    pub cache: PathBuf,
    /// Unknown-case policy.
    pub policy: Policy,
    /// Vendor-change policy.
    pub vendor_change: VendorChange,
    /// Maximum record age before a record counts as stale.
    pub cache_max_age: Duration,
    /// The guard's state directory.
    pub state_dir: PathBuf,
}

impl Settings {
    /// Resolves the settings.
    ///
    /// # Errors
    /// An invalid configuration file (naming file and line).
    pub fn resolve(args: &impl SettingsArgs) -> Result<Settings> {
        let args = &args.common();
        Ok(Settings::with_config(
            args,
            Config::load_given(args.config.as_deref())?,
        ))
    }

    /// [`Settings::resolve`] for the hook, which must answer whatever the
    /// configuration file does: when it cannot be read or is invalid, the
    /// settings come from the flags, the environment and the defaults alone,
    /// and the error is returned beside them for the policy to judge.
    #[must_use]
    pub fn resolve_lenient(args: &impl SettingsArgs) -> (Settings, Option<Error>) {
        let args = &args.common();
        match Config::load_given(args.config.as_deref()) {
            Ok(config) => (Settings::with_config(args, config), None),
            Err(e) => {
                let config = Config {
                    path: Config::path_given(args.config.as_deref()),
                    ..Config::default()
                };
                (Settings::with_config(args, config), Some(e))
            }
        }
    }

    fn with_config(args: &CommonArgs, config: Config) -> Settings {
        let pve = PveDir::new(Config::pick(
            args.pve_dir.clone(),
            config.pve_dir.as_ref(),
            "/etc/pve".into(),
        ));
        Settings {
            node: crate::pve::paths::local_node(args.node.as_deref(), pve.root()),
            pve,
            cpuinfo: args
                .cpuinfo
                .clone()
                .unwrap_or_else(|| "/proc/cpuinfo".into()),
            cache: Config::pick(
                args.cache.clone(),
                config.cache.as_ref(),
                DEFAULT_CACHE.into(),
            ),
            policy: Config::pick(args.policy, config.policy.as_ref(), Policy::Default),
            vendor_change: Config::pick(
                args.vendor_change,
                config.vendor_change.as_ref(),
                VendorChange::Refuse,
            ),
            cache_max_age: cache_max_age(args.cache_max_age, &config),
            state_dir: Config::pick(
                args.state_dir.clone(),
                config.state_dir.as_ref(),
                DEFAULT_STATE_DIR.into(),
            ),
            config,
        }
    }
}
