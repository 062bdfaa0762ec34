//! The configuration file `/etc/pve-cpuguard/pve-cpuguard.conf`.
//! Hand-written: `key = value` lines need no crate, and the hook reads this
//! file on every start.
//!
//! One `key = value` per line, `#` comments. Precedence, highest first:
//! command-line flag > `PVE_CPUGUARD_*` environment variable > this file >
//! built-in default. Flags and environment variables are resolved by clap
//! (both land in the same `Option`), so commands call [`Config::pick`] with
//! that option and the file's value. A missing file is an empty file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/pve-cpuguard/pve-cpuguard.conf";

/// What to do when the answer is unknown (no record, unknown model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Policy {
    /// Allow, with a warning in the task log and the journal.
    #[default]
    Default,
    /// Refuse whatever cannot be proven safe.
    Strict,
}

/// What to do when a live migration would change the guest's CPU vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VendorChange {
    /// Refuse (Proxmox VE gives no guarantee such a guest keeps working).
    #[default]
    Refuse,
    /// Allow with a warning.
    Warn,
}

/// Values read from the file; `None` where the file does not set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `policy`.
    pub policy: Option<Policy>,
    /// `vendor_change`.
    pub vendor_change: Option<VendorChange>,
    /// `ssh_user`.
    pub ssh_user: Option<String>,
    /// `ssh_key`.
    pub ssh_key: Option<PathBuf>,
    /// `ssh_port`.
    pub ssh_port: Option<u16>,
    /// `ssh_timeout`.
    pub ssh_timeout: Option<Duration>,
    /// `known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// `cache`.
    pub cache: Option<PathBuf>,
    /// `cache_max_age`: a record older than this is stale.
    pub cache_max_age: Option<Duration>,
    /// `chain_hookscript`: run after the guard allows a start.
    pub chain_hookscript: Option<PathBuf>,
    /// `pve_dir`.
    pub pve_dir: Option<PathBuf>,
    /// `state_dir`: the guard's small state (last refusal).
    pub state_dir: Option<PathBuf>,
    /// `no_ssh`: `scan` reads published records only, never SSH.
    pub no_ssh: Option<bool>,
    /// `auto_attach`: which of this node's VMs `scan` attaches the guard to.
    pub auto_attach: Option<AutoAttach>,
    /// `attach_storage`: the snippets storage `auto_attach` uses.
    pub attach_storage: Option<String>,
    /// `ha_rules`: `scan` keeps the HA node-affinity rules current.
    pub ha_rules: Option<bool>,
    /// `remote_source_record`: the published record of the source node of
    /// migrations from another cluster (`qm remote-migrate`).
    pub remote_source_record: Option<PathBuf>,
}

/// `auto_attach = off | all | FILTER`; FILTER is a comma-separated list
/// of VMIDs and inclusive ranges (`100-199,250`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AutoAttach {
    /// Nothing is attached automatically.
    #[default]
    Off,
    /// Every VM of this node.
    All,
    /// VMs whose VMID is in one of these inclusive ranges.
    Only(Vec<(u32, u32)>),
}

impl AutoAttach {
    /// Parses the value; `None` when it is not valid.
    #[must_use]
    pub fn parse(value: &str) -> Option<AutoAttach> {
        match value {
            "off" | "no" => return Some(AutoAttach::Off),
            "all" => return Some(AutoAttach::All),
            _ => {}
        }
        let mut ranges = Vec::new();
        for part in value.split(',').map(str::trim) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if a < 100 || a > b {
                return None;
            }
            ranges.push((a, b));
        }
        Some(AutoAttach::Only(ranges))
    }

    /// Whether VM `vmid` is selected.
    #[must_use]
    pub fn selects(&self, vmid: u32) -> bool {
        match self {
            AutoAttach::Off => false,
            AutoAttach::All => true,
            AutoAttach::Only(r) => r.iter().any(|(a, b)| (*a..=*b).contains(&vmid)),
        }
    }
}

/// Every key with its valid values, for errors and the shipped example.
pub const KEYS: &[(&str, &str)] = &[
    ("policy", "default or strict"),
    ("vendor_change", "refuse or warn"),
    ("ssh_user", "a user name"),
    ("ssh_key", "an absolute path"),
    ("ssh_port", "1-65535"),
    ("ssh_timeout", "a duration: 10, 10s, 2m"),
    ("known_hosts", "an absolute path"),
    ("cache", "an absolute path"),
    ("cache_max_age", "a duration: 3600, 90m, 2h, 1d"),
    ("chain_hookscript", "an absolute path"),
    ("pve_dir", "an absolute path"),
    ("state_dir", "an absolute path"),
    ("no_ssh", "yes or no"),
    ("auto_attach", "off, all, or VMIDs and ranges: 100-199,250"),
    ("attach_storage", "a storage with snippets content"),
    ("ha_rules", "off or apply"),
    ("remote_source_record", "an absolute path"),
];

impl Config {
    /// Reads the file; a missing file gives an empty configuration (only
    /// right for the default path: see [`Config::load_given`]), and so
    /// does `/dev/null` (the usual way to say "no configuration file").
    ///
    /// # Errors
    /// Unreadable files and invalid lines (naming file, line and valid values).
    pub fn load(path: &Path) -> Result<Config> {
        Config::read(path, false)
    }

    /// Reads the configuration file `given` by `--config` or
    /// `PVE_CPUGUARD_CONFIG`, else the default one. Only the default may be
    /// absent (a fresh install without the package's file): a file the
    /// user named and that is not there is a mistake (a typo, a wrong
    /// directory), and silently running with defaults would hide it.
    ///
    /// # Errors
    /// As [`Config::load`], and a given file that does not exist.
    pub fn load_given(given: Option<&Path>) -> Result<Config> {
        match given {
            Some(path) => Config::read(path, true),
            None => Config::read(Path::new(DEFAULT_PATH), false),
        }
    }

    fn read(path: &Path, must_exist: bool) -> Result<Config> {
        let empty = || Config {
            path: path.to_path_buf(),
            ..Config::default()
        };
        if is_dev_null(path) {
            return Ok(empty());
        }
        match crate::fsutil::read_text_optional(path)? {
            Some(text) => Config::parse(&text, path),
            None if must_exist => Err(Error::Config(format!(
                "configuration file {}: no such file\nnote: correct --config or \
                 PVE_CPUGUARD_CONFIG (only the default {DEFAULT_PATH} may be absent; /dev/null \
                 means none)",
                path.display()
            ))),
            None => Ok(empty()),
        }
    }

    /// The path [`Config::load_given`] reads.
    #[must_use]
    pub fn path_given(given: Option<&Path>) -> PathBuf {
        given.map_or_else(|| PathBuf::from(DEFAULT_PATH), Path::to_path_buf)
    }

    /// Parses the file's text.
    ///
    /// # Errors
    /// See [`Config::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut c = Config {
            path: path.to_path_buf(),
            ..Config::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(Error::parse(
                    path,
                    n,
                    format!("expected `key = value`, found {line:?}"),
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let Some((_, valid)) = KEYS.iter().find(|(k, _)| *k == key) else {
                let all: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(Error::parse(
                    path,
                    n,
                    format!("unknown setting '{key}' (valid: {})", all.join(", ")),
                ));
            };
            let bad = || Error::parse(path, n, format!("invalid {key} '{value}' (valid: {valid})"));
            match key {
                "policy" => c.policy = Some(enum_value(value).ok_or_else(bad)?),
                "vendor_change" => c.vendor_change = Some(enum_value(value).ok_or_else(bad)?),
                "ssh_user" => {
                    let ok = !value.is_empty()
                        && value
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
                    c.ssh_user = Some(value.to_string()).filter(|_| ok);
                    c.ssh_user.as_ref().ok_or_else(bad)?;
                }
                "ssh_port" => {
                    c.ssh_port = Some(value.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?);
                }
                "ssh_timeout" => c.ssh_timeout = Some(parse_duration(value).ok_or_else(bad)?),
                "cache_max_age" => c.cache_max_age = Some(parse_duration(value).ok_or_else(bad)?),
                "auto_attach" => c.auto_attach = Some(AutoAttach::parse(value).ok_or_else(bad)?),
                "attach_storage" => {
                    let ok = !value.is_empty()
                        && value
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
                    c.attach_storage = Some(value.to_string()).filter(|_| ok);
                    c.attach_storage.as_ref().ok_or_else(bad)?;
                }
                "ha_rules" => {
                    c.ha_rules = Some(match value {
                        "apply" => true,
                        "off" => false,
                        _ => return Err(bad()),
                    });
                }
                "no_ssh" => {
                    c.no_ssh = Some(match value {
                        "yes" | "true" | "on" | "1" => true,
                        "no" | "false" | "off" | "0" => false,
                        _ => return Err(bad()),
                    });
                }
                _ => {
                    let p = PathBuf::from(value);
                    if !p.is_absolute() {
                        return Err(bad());
                    }
                    match key {
                        "ssh_key" => c.ssh_key = Some(p),
                        "known_hosts" => c.known_hosts = Some(p),
                        "cache" => c.cache = Some(p),
                        "chain_hookscript" => c.chain_hookscript = Some(p),
                        "state_dir" => c.state_dir = Some(p),
                        "remote_source_record" => c.remote_source_record = Some(p),
                        _ => c.pve_dir = Some(p),
                    }
                }
            }
        }
        Ok(c)
    }

    /// Flag-or-environment value if given, else the file's, else the default.
    pub fn pick<T: Clone>(given: Option<T>, file: Option<&T>, default: T) -> T {
        given.or_else(|| file.cloned()).unwrap_or(default)
    }
}

fn enum_value<T: clap::ValueEnum>(value: &str) -> Option<T> {
    T::from_str(value, false).ok()
}

/// Whether `path` is the null device (whatever its name): reading it
/// gives nothing, so as a configuration it is an empty one. The device is
/// recognised by its numbers (1, 3: Linux `Documentation/admin-guide/
/// devices.txt`), never opened.
fn is_dev_null(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::metadata(path).is_ok_and(|m| {
        m.file_type().is_char_device() && libc::major(m.rdev()) == 1 && libc::minor(m.rdev()) == 3
    })
}

/// `90`, `90s`, `15m`, `2h`, `1d` → a duration (plain numbers are seconds).
#[must_use]
pub fn parse_duration(value: &str) -> Option<Duration> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => value.split_at(i),
        None => (value, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor).map(Duration::from_secs)
}

/// Parses a network timeout for clap: seconds with fractions (`2.5`) or a
/// duration with a unit (`10s`, `1m`); more than 0, at most an hour.
///
/// # Errors
/// A message naming the valid forms.
pub fn timeout_arg(value: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(value.trim()).or_else(|| {
        let secs: f64 = value.trim().parse().ok()?;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(3601.0)))
    });
    d.filter(|d| !d.is_zero() && d.as_secs_f64() <= 3600.0)
        // clap quotes the value itself, so the message does not repeat it.
        .ok_or_else(|| {
            "invalid timeout (valid: seconds such as 10 or 2.5, or 10s, 1m; at most 1h)".to_string()
        })
}

/// Parses a duration for clap (`--timeout 10s`).
///
/// # Errors
/// A message naming the valid forms.
pub fn duration_arg(value: &str) -> std::result::Result<Duration, String> {
    // clap quotes the value itself, so the message does not repeat it.
    parse_duration(value).ok_or_else(|| "invalid duration (valid: 10, 10s, 2m, 1h, 1d)".to_string())
}

/// Parses the hook's deadline for clap: a [`duration_arg`] that is not
/// zero (a zero deadline would expire before the first file is read, so
/// no start would ever be checked).
///
/// # Errors
/// A message naming the valid forms.
pub fn deadline_arg(value: &str) -> std::result::Result<Duration, String> {
    duration_arg(value)?;
    parse_duration(value)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            "invalid deadline (valid: 1 second or more, such as 10, 10s, 1m)".to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let c = Config::parse(
            "# comment\npolicy = strict\nvendor_change = warn\nssh_user = admin\nssh_key = /root/.ssh/id_ed25519\n\
             ssh_port = 2222\nssh_timeout = 5s\nknown_hosts = /etc/ssh/k\ncache = /var/cache/x.json\n\
             cache_max_age = 2h\nchain_hookscript = /var/lib/vz/snippets/old.pl\npve_dir = /etc/pve\n",
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(c.policy, Some(Policy::Strict));
        assert_eq!(c.vendor_change, Some(VendorChange::Warn));
        assert_eq!(c.ssh_port, Some(2222));
        assert_eq!(c.ssh_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.cache_max_age, Some(Duration::from_secs(7200)));
        assert_eq!(
            Config::parse("no_ssh = yes\n", Path::new("c"))
                .unwrap()
                .no_ssh,
            Some(true)
        );
        assert_eq!(
            Config::parse("no_ssh = off\n", Path::new("c"))
                .unwrap()
                .no_ssh,
            Some(false)
        );
        let e = Config::parse("no_ssh = maybe\n", Path::new("c")).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid no_ssh 'maybe' (valid: yes or no)"),
            "{e}"
        );
        assert_eq!(
            c.chain_hookscript.as_deref(),
            Some(Path::new("/var/lib/vz/snippets/old.pl"))
        );
    }

    #[test]
    fn invalid_values_name_file_line_and_valid_values() {
        let e = Config::parse(
            "\npolicy = lax\n",
            Path::new("/etc/pve-cpuguard/pve-cpuguard.conf"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/pve-cpuguard/pve-cpuguard.conf:2: invalid policy 'lax' (valid: default or strict)"
        );
        let e = Config::parse("ssh_port = 0\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("valid: 1-65535"), "{e}");
        let e = Config::parse("cache = relative/path\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("an absolute path"), "{e}");
        let e = Config::parse("colour = red\n", Path::new("c")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("c:1: unknown setting 'colour' (valid: policy,"),
            "{e}"
        );
        let e = Config::parse("ssh_user = a b\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("invalid ssh_user"), "{e}");
    }

    #[test]
    fn precedence_flag_env_then_file_then_default() {
        assert_eq!(Config::pick(Some(1), Some(&2), 3), 1);
        assert_eq!(Config::pick(None, Some(&2), 3), 2);
        assert_eq!(Config::pick(None, None, 3), 3);
    }

    #[test]
    fn timeouts_take_seconds_or_units() {
        assert_eq!(timeout_arg("10"), Ok(Duration::from_secs(10)));
        assert_eq!(timeout_arg("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(timeout_arg("1m"), Ok(Duration::from_secs(60)));
        assert!(timeout_arg("0").is_err());
        assert!(timeout_arg("-1").is_err());
        assert!(timeout_arg("2h").is_err());
        assert!(timeout_arg("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn auto_attach_and_ha_rules() {
        let p = |t: &str| Config::parse(t, Path::new("c"));
        let c =
            p("auto_attach = 100-199, 250\nattach_storage = cephfs\nha_rules = apply\n").unwrap();
        let f = c.auto_attach.unwrap();
        assert!(f.selects(100) && f.selects(199) && f.selects(250));
        assert!(!f.selects(200) && !f.selects(99));
        assert_eq!(c.attach_storage.as_deref(), Some("cephfs"));
        assert_eq!(c.ha_rules, Some(true));
        assert_eq!(
            p("auto_attach = all\n").unwrap().auto_attach,
            Some(AutoAttach::All)
        );
        assert!(!AutoAttach::Off.selects(100));
        for bad in [
            "auto_attach = some",
            "auto_attach = 200-100",
            "auto_attach = 5",
            "ha_rules = yes",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("c:1: invalid "), "{e}");
        }
    }
}
