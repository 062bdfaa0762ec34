//! OpenSSH known_hosts files, and the host-key check pve-cpuguard makes
//! before it trusts a node's answer.
//!
//! Hand-written on RustCrypto `hmac`/`sha1` and `base64`: libssh2's own
//! reader (ssh2 `KnownHosts`, libssh2 `knownhost.c`) knows neither the
//! `@revoked` marker nor wildcard and negated host patterns.
//!
//! Format (OpenSSH `sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT", `hostfile.c`):
//! `[@marker] hosts keytype base64-key [comment]`, where `hosts` is a
//! comma-separated list of patterns (`*`, `?`, `!negation`, `[host]:port`)
//! or one hashed entry `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`.
//! Markers: `@revoked` (this key must never be accepted) and
//! `@cert-authority` (certificates; pve-cpuguard does not use them, so such
//! lines never vouch for a key). Blank lines and `#` comments are ignored;
//! lines that cannot be parsed are skipped and remembered, never fatal.
//!
//! Which files, the way Proxmox VE does it (pve-cluster `SSHInfo.pm`): when
//! `/etc/pve/nodes/<node>/ssh_known_hosts` exists (PVE 8.1+, keyed by node
//! name), PVE's ssh uses it alone (`GlobalKnownHostsFile=none`); otherwise
//! `/etc/pve/priv/known_hosts`, `/etc/ssh/ssh_known_hosts` and
//! `~/.ssh/known_hosts`. `--known-hosts FILE` replaces the list.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::{Error, Result};

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `@revoked`.
    Revoked,
    /// `@cert-authority`.
    CertAuthority,
}

/// The host part of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// `|1|salt|hash`.
    Hashed {
        /// HMAC key.
        salt: Vec<u8>,
        /// HMAC-SHA1 of the host name.
        hash: Vec<u8>,
    },
    /// Comma-separated patterns.
    Patterns(Vec<String>),
}

impl Hosts {
    /// Whether `host` (already in `name` or `[name]:port` form) matches.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                // OpenSSH's hashed form: HMAC-SHA1 keyed with the salt.
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(host.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let host = host.to_ascii_lowercase();
                let mut positive = false;
                for p in patterns {
                    if let Some(neg) = p.strip_prefix('!') {
                        if wildcard(&neg.to_ascii_lowercase(), &host) {
                            return false;
                        }
                    } else if wildcard(&p.to_ascii_lowercase(), &host) {
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Marker, if any.
    pub marker: Option<Marker>,
    /// Host patterns.
    pub hosts: Hosts,
    /// Key type as written (`ssh-ed25519`, …).
    pub key_type: String,
    /// The decoded public key blob.
    pub key: Vec<u8>,
    /// 1-based line number.
    pub line: usize,
}

/// One parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownHosts {
    /// Where it was read from.
    pub path: PathBuf,
    /// Usable lines.
    pub entries: Vec<Entry>,
    /// Lines skipped as unparseable: (line, why).
    pub skipped: Vec<(usize, String)>,
}

/// Parses known_hosts text. Never fails: bad lines land in `skipped`.
#[must_use]
pub fn parse(text: &str, origin: &Path) -> KnownHosts {
    let mut kh = KnownHosts {
        path: origin.to_path_buf(),
        ..KnownHosts::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, i + 1) {
            Ok(e) => kh.entries.push(e),
            Err(why) => kh.skipped.push((i + 1, why)),
        }
    }
    kh
}

fn parse_line(line: &str, line_no: usize) -> std::result::Result<Entry, String> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@revoked" => Some(Marker::Revoked),
        "@cert-authority" => Some(Marker::CertAuthority),
        m if m.starts_with('@') => return Err(format!("unknown marker {m}")),
        _ => None,
    };
    if marker.is_some() {
        first = fields.next().ok_or("marker without hosts")?;
    }
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("hashed entry without `|hash`")?;
        let salt = BASE64
            .decode(salt)
            .map_err(|_| "hashed entry: salt is not base64")?;
        let hash = BASE64
            .decode(hash)
            .map_err(|_| "hashed entry: hash is not base64")?;
        if hash.len() != 20 {
            return Err("hashed entry: hash is not 20 bytes".into());
        }
        Hosts::Hashed { salt, hash }
    } else if first.starts_with('|') {
        return Err("unsupported hashed entry format".into());
    } else {
        Hosts::Patterns(first.split(',').map(str::to_string).collect())
    };
    let key_type = fields.next().ok_or("no key type")?.to_string();
    let key = BASE64
        .decode(fields.next().ok_or("no key")?)
        .map_err(|_| "key is not base64")?;
    if key.is_empty() {
        return Err("empty key".into());
    }
    Ok(Entry {
        marker,
        hosts,
        key_type,
        key,
        line: line_no,
    })
}

/// Reads a file; `Ok(None)` when it does not exist.
///
/// # Errors
/// A file that exists but cannot be read.
pub fn read(path: &Path) -> Result<Option<KnownHosts>> {
    match crate::fsutil::read_raw(path) {
        Ok(bytes) => Ok(Some(parse(&String::from_utf8_lossy(&bytes), path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The known_hosts files to consult for `node`, in order (see module doc).
#[must_use]
pub fn files_for(pve_dir: &Path, node: &str, explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let per_node = pve_dir.join("nodes").join(node).join("ssh_known_hosts");
    if per_node.is_file() {
        return vec![per_node];
    }
    let mut v = vec![
        pve_dir.join("priv").join("known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        v.push(Path::new(&home).join(".ssh").join("known_hosts"));
    }
    v
}

/// The names a node's key may be recorded under: its name (as PVE's
/// `HostKeyAlias`, so without port), and its address (`[addr]:port` when
/// the port is not 22, as OpenSSH writes it).
#[must_use]
pub fn lookup_names(node: &str, address: &str, port: u16) -> Vec<String> {
    let mut v = vec![node.to_string()];
    if port == 22 {
        v.push(address.to_string());
    } else {
        v.push(format!("[{node}]:{port}"));
        v.push(format!("[{address}]:{port}"));
    }
    v.dedup();
    v
}

/// The outcome of a host-key check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A line vouches for the key.
    Match {
        /// File.
        path: PathBuf,
        /// Line.
        line: usize,
    },
    /// The host is known with other key(s) only.
    Changed {
        /// File of the first differing entry.
        path: PathBuf,
        /// Its line.
        line: usize,
        /// Its key type.
        key_type: String,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// File.
        path: PathBuf,
        /// Line.
        line: usize,
    },
    /// No line names this host.
    Unknown,
}

/// Checks an offered key blob against the files, for any of `names`.
///
/// A `@revoked` line for the key refuses it whatever its host patterns say.
#[must_use]
pub fn check(files: &[KnownHosts], names: &[String], key: &[u8]) -> Check {
    let all = || {
        files
            .iter()
            .flat_map(|f| f.entries.iter().map(move |e| (f, e)))
    };
    if let Some((f, e)) = all().find(|(_, e)| e.marker == Some(Marker::Revoked) && e.key == key) {
        return Check::Revoked {
            path: f.path.clone(),
            line: e.line,
        };
    }
    let for_host =
        || all().filter(|(_, e)| e.marker.is_none() && names.iter().any(|n| e.hosts.matches(n)));
    if let Some((f, e)) = for_host().find(|(_, e)| e.key == key) {
        return Check::Match {
            path: f.path.clone(),
            line: e.line,
        };
    }
    match for_host().next() {
        Some((f, e)) => Check::Changed {
            path: f.path.clone(),
            line: e.line,
            key_type: e.key_type.clone(),
        },
        None => Check::Unknown,
    }
}

/// OpenSSH-style glob: `*` any run, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIE7t3nmBtrDOcSkxh6ZgRjDAZHRWWpVaTTZFgnyrVmO5";

    fn kh(text: &str) -> KnownHosts {
        parse(text, Path::new("known_hosts"))
    }

    fn key(b64: &str) -> Vec<u8> {
        BASE64.decode(b64).unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn plain_entry_by_name_or_address() {
        let f = kh(&format!("pve1,10.0.0.1 ssh-ed25519 {KEY_A} root@pve1\n"));
        let a = key(KEY_A);
        assert!(matches!(
            check(std::slice::from_ref(&f), &names(&["pve1"]), &a),
            Check::Match { line: 1, .. }
        ));
        assert!(matches!(
            check(std::slice::from_ref(&f), &names(&["x", "10.0.0.1"]), &a),
            Check::Match { .. }
        ));
        assert_eq!(
            check(&[f], &names(&["pve2", "10.0.0.2"]), &a),
            Check::Unknown
        );
    }

    #[test]
    fn changed_key_is_reported_with_its_line() {
        let f = kh(&format!("# c\npve1 ssh-ed25519 {KEY_B}\n"));
        assert_eq!(
            check(&[f], &names(&["pve1"]), &key(KEY_A)),
            Check::Changed {
                path: "known_hosts".into(),
                line: 2,
                key_type: "ssh-ed25519".into()
            }
        );
    }

    #[test]
    fn a_match_anywhere_wins_over_an_old_key() {
        let old = kh(&format!("pve1 ssh-ed25519 {KEY_B}\n"));
        let new = kh(&format!("pve1 ssh-ed25519 {KEY_A}\n"));
        assert!(matches!(
            check(&[old, new], &names(&["pve1"]), &key(KEY_A)),
            Check::Match { .. }
        ));
    }

    /// A hashed `[addr]:port` entry; the expected HMAC was computed
    /// independently with Python's `hmac` module.
    #[test]
    fn hashed_entry() {
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"[127.0.0.2]:2222");
        let hash = mac.finalize().into_bytes();
        assert_eq!(BASE64.encode(hash), "kPFwdcEp+v3ObYGlefK55lTXFd0=");
        let line = format!(
            "|1|{}|{} ssh-ed25519 {KEY_A}\n",
            BASE64.encode(salt),
            BASE64.encode(hash)
        );
        let f = kh(&line);
        assert!(matches!(
            check(
                std::slice::from_ref(&f),
                &names(&["[127.0.0.2]:2222"]),
                &key(KEY_A)
            ),
            Check::Match { .. }
        ));
        assert_eq!(
            check(&[f], &names(&["127.0.0.2"]), &key(KEY_A)),
            Check::Unknown
        );
    }

    #[test]
    fn hashed_entry_from_ssh_keygen() {
        // Produced by: ssh-keygen -H -f f  (f: "pve1 ssh-ed25519 KEY_A")
        let f = kh(&format!(
            "|1|duxCpg2TP+k4WtM6WQLuhuamoaY=|JLiMd3B4cw4NHbTsErQDTmR8H2Y= ssh-ed25519 {KEY_A}\n"
        ));
        assert!(matches!(
            check(&[f], &names(&["pve1"]), &key(KEY_A)),
            Check::Match { .. }
        ));
    }

    #[test]
    fn revoked_key_is_refused_even_if_listed() {
        let f = kh(&format!(
            "pve1 ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_A}\n"
        ));
        assert!(matches!(
            check(&[f], &names(&["pve1"]), &key(KEY_A)),
            Check::Revoked { line: 2, .. }
        ));
    }

    #[test]
    fn cert_authority_lines_never_vouch() {
        let f = kh(&format!("@cert-authority pve1 ssh-ed25519 {KEY_A}\n"));
        assert_eq!(check(&[f], &names(&["pve1"]), &key(KEY_A)), Check::Unknown);
    }

    #[test]
    fn patterns_wildcards_negation_ports() {
        let h = Hosts::Patterns(names(&["*.lab", "!bad.lab", "pve?", "[10.0.0.9]:2222"]));
        assert!(h.matches("a.lab"));
        assert!(!h.matches("bad.lab"));
        assert!(h.matches("PVE1"));
        assert!(!h.matches("pve10"));
        assert!(h.matches("[10.0.0.9]:2222"));
        assert!(!h.matches("10.0.0.9"));
    }

    #[test]
    fn lookup_names_follow_openssh() {
        assert_eq!(lookup_names("pve1", "10.0.0.1", 22), ["pve1", "10.0.0.1"]);
        assert_eq!(
            lookup_names("pve1", "fd00::1", 2222),
            ["pve1", "[pve1]:2222", "[fd00::1]:2222"]
        );
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        let f = kh(&format!(
            "garbage\n@weird x ssh-ed25519 {KEY_A}\n|1|!!|x ssh-ed25519 {KEY_A}\npve1 ssh-ed25519 {KEY_A}\n"
        ));
        assert_eq!(f.entries.len(), 1);
        assert_eq!(f.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn per_node_file_is_used_alone_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let node_dir = dir.path().join("nodes/pve1");
        std::fs::create_dir_all(&node_dir).unwrap();
        std::fs::write(node_dir.join("ssh_known_hosts"), "").unwrap();
        assert_eq!(
            files_for(dir.path(), "pve1", None),
            [node_dir.join("ssh_known_hosts")]
        );
        assert_eq!(
            files_for(dir.path(), "pve2", None)[0],
            dir.path().join("priv/known_hosts")
        );
        assert_eq!(
            files_for(dir.path(), "pve1", Some(Path::new("/x"))),
            [PathBuf::from("/x")]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*", host in "[a-z0-9.:\\[\\]]{0,20}") {
            let f = parse(&s, Path::new("x"));
            let _ = check(&[f], &[host], b"k");
        }

        #[test]
        fn never_panics_on_line_soup(s in "[@|!*?,a-zA-Z0-9+/= \n]{0,200}") {
            let f = parse(&s, Path::new("x"));
            let _ = check(&[f], &["pve1".to_string()], b"k");
        }
    }
}
