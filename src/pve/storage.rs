//! `/etc/pve/storage.cfg`: where a storage keeps its files, whether it
//! holds `snippets` (hookscripts) and whether every node sees the same files.
//!
//! Only file-based storages can hold snippets: `dir`, `nfs`, `cifs`,
//! `cephfs`, `glusterfs`, `btrfs` — each with a `path`. Network file systems
//! are shared by nature; `dir` and `btrfs` only with `shared 1`. The
//! snippets live in `<path>/snippets/` unless `content-dirs snippets=…`
//! moves them (pve-storage `Plugin.pm` `get_subdir`). A hookscript volume
//! id is `<storage>:snippets/<file>` (`parse_volname`: `^snippets/([^/]+)$`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pve::section_config::{self, Section};

/// The file below the cluster file system.
#[must_use]
pub fn file(pve_root: &Path) -> PathBuf {
    pve_root.join("storage.cfg")
}

/// Storage types whose files every node sees.
const SHARED_TYPES: [&str; 4] = ["nfs", "cifs", "cephfs", "glusterfs"];
/// Storage types that keep files in a directory (`path`).
const FILE_TYPES: [&str; 6] = ["dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"];

/// One storage definition, as far as snippets are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Storage ID (`local`).
    pub id: String,
    /// Type (`dir`, `nfs`, …).
    pub kind: String,
    /// `path`, for file-based storages.
    pub path: Option<PathBuf>,
    /// `content` list.
    pub content: Vec<String>,
    /// Whether every node sees the same files.
    pub shared: bool,
    /// `disable` is set.
    pub disabled: bool,
    /// `nodes` restriction, if any.
    pub nodes: Option<Vec<String>>,
    /// The snippets subdirectory (relative to `path`).
    snippets_subdir: String,
    /// Header line in storage.cfg.
    pub line: usize,
}

impl Storage {
    /// Whether `snippets` is among the storage's content types.
    #[must_use]
    pub fn has_snippets(&self) -> bool {
        self.content.iter().any(|c| c == "snippets")
    }

    /// The directory snippets are kept in, for a file-based storage.
    #[must_use]
    pub fn snippets_dir(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| p.join(&self.snippets_subdir))
    }

    /// The exact command that adds `snippets` to the storage's content,
    /// keeping what it already holds.
    #[must_use]
    pub fn enable_snippets_command(&self) -> String {
        let mut content = self.content.clone();
        content.push("snippets".into());
        format!("pvesm set {} --content {}", self.id, content.join(","))
    }

    fn from_section(s: &Section, origin: &Path) -> Result<Storage> {
        let file_based = FILE_TYPES.contains(&s.kind.as_str());
        let path = match s.get_with_line("path") {
            Some((p, n)) => {
                let p = PathBuf::from(p);
                if !p.is_absolute() {
                    return Err(Error::parse(
                        origin,
                        n,
                        format!("storage '{}': path must be absolute", s.id),
                    ));
                }
                Some(p)
            }
            // pvesm fills it in for network storages; be lenient the way
            // pve-storage is (mount point /mnt/pve/<id>).
            None if SHARED_TYPES.contains(&s.kind.as_str()) => {
                Some(PathBuf::from(format!("/mnt/pve/{}", s.id)))
            }
            None => None,
        };
        let mut snippets_subdir = "snippets".to_string();
        if let Some((dirs, n)) = s.get_with_line("content-dirs") {
            for pair in dirs.split(',').filter(|p| !p.is_empty()) {
                let Some((kind, dir)) = pair.split_once('=') else {
                    return Err(Error::parse(
                        origin,
                        n,
                        format!(
                            "storage '{}': content-dirs entry {pair:?} is not TYPE=DIR",
                            s.id
                        ),
                    ));
                };
                if kind == "snippets" {
                    if dir.split('/').any(|c| c == "..") {
                        return Err(Error::parse(
                            origin,
                            n,
                            format!("storage '{}': content-dirs may not contain '..'", s.id),
                        ));
                    }
                    snippets_subdir = dir.trim_start_matches('/').to_string();
                }
            }
        }
        let flag = |key: &str| s.get(key).is_some_and(|v| v.is_empty() || v == "1");
        Ok(Storage {
            id: s.id.clone(),
            kind: s.kind.clone(),
            path: path.filter(|_| file_based),
            content: s
                .get("content")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            shared: SHARED_TYPES.contains(&s.kind.as_str()) || flag("shared"),
            disabled: flag("disable"),
            nodes: s.get("nodes").map(|n| {
                n.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            snippets_subdir,
            line: s.line,
        })
    }
}

/// All storages of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storages {
    /// Where they were read from.
    pub origin: PathBuf,
    /// In file order.
    pub list: Vec<Storage>,
}

/// Parses storage.cfg's text.
///
/// # Errors
/// SectionConfig errors and invalid paths, naming file and line.
pub fn parse(text: &str, origin: &Path) -> Result<Storages> {
    let list = section_config::parse(text, origin)?
        .iter()
        .map(|s| Storage::from_section(s, origin))
        .collect::<Result<Vec<_>>>()?;
    Ok(Storages {
        origin: origin.to_path_buf(),
        list,
    })
}

/// Reads `<pve>/storage.cfg`.
///
/// # Errors
/// A missing or malformed file.
pub fn read(pve_root: &Path) -> Result<Storages> {
    let path = file(pve_root);
    let list = section_config::read(&path)?
        .iter()
        .map(|s| Storage::from_section(s, &path))
        .collect::<Result<Vec<_>>>()?;
    Ok(Storages { origin: path, list })
}

/// A hookscript volume id split into storage and file name.
///
/// # Errors
/// Anything but `<storage>:snippets/<file>`.
pub fn split_snippet_volid(volid: &str) -> std::result::Result<(&str, &str), String> {
    let (store, volname) = volid
        .split_once(':')
        .ok_or_else(|| format!("'{volid}' is not a volume id (STORAGE:snippets/FILE)"))?;
    let name = volname
        .strip_prefix("snippets/")
        .ok_or_else(|| format!("'{volid}' is not in a snippets directory"))?;
    if store.is_empty() || name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!(
            "'{volid}' is not a snippets volume id (STORAGE:snippets/FILE)"
        ));
    }
    Ok((store, name))
}

impl Storages {
    /// A storage by ID.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Storage> {
        self.list.iter().find(|s| s.id == id)
    }

    /// Storages that hold snippets, for suggestions.
    #[must_use]
    pub fn with_snippets(&self) -> Vec<&str> {
        self.list
            .iter()
            .filter(|s| s.has_snippets() && !s.disabled && s.path.is_some())
            .map(|s| s.id.as_str())
            .collect()
    }

    /// The storage to put the hook file in, checked: it exists, is enabled,
    /// is file-based and holds snippets. Otherwise an error saying exactly
    /// what to do.
    ///
    /// # Errors
    /// See above.
    pub fn snippets_storage(&self, id: &str) -> Result<&Storage> {
        let others = || {
            let ok = self.with_snippets();
            if ok.is_empty() {
                String::new()
            } else {
                format!("\nnote: storages with snippets: {}", ok.join(", "))
            }
        };
        let Some(s) = self.get(id) else {
            let all: Vec<&str> = self.list.iter().map(|s| s.id.as_str()).collect();
            return Err(Error::Config(format!(
                "storage '{id}' is not defined in {} (defined: {}){}",
                self.origin.display(),
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.join(", ")
                },
                if self.with_snippets().is_empty() {
                    "\nnote: no storage holds snippets yet: add `snippets` to the content of a \
                     directory storage (`pvesm set STORAGE --content TYPES,snippets`, keeping \
                     its current types), then name it with --storage"
                        .to_string()
                } else {
                    others()
                }
            )));
        };
        if s.path.is_none() {
            return Err(Error::Config(format!(
                "storage '{id}' ({}, {}:{}) keeps no files in a directory, so it cannot hold hookscripts{}\nnote: use a dir, nfs, cifs or cephfs storage with --storage",
                s.kind,
                self.origin.display(),
                s.line,
                others()
            )));
        }
        if s.disabled {
            return Err(Error::Config(format!(
                "storage '{id}' is disabled ({}:{}){}\nnote: enable it with `pvesm set {id} --disable 0`, or choose another with --storage",
                self.origin.display(),
                s.line,
                others()
            )));
        }
        if !s.has_snippets() {
            return Err(Error::Config(format!(
                "storage '{id}' does not hold snippets (content: {}; {}:{}), and Proxmox VE only runs hookscripts from snippets storage\nnote: enable it with `{}`{}",
                if s.content.is_empty() {
                    "none".to_string()
                } else {
                    s.content.join(",")
                },
                self.origin.display(),
                s.line,
                s.enable_snippets_command(),
                others()
            )));
        }
        Ok(s)
    }

    /// Resolves a hookscript volume id to the file it names.
    ///
    /// # Errors
    /// A malformed volume id, an unknown storage, or one without a path.
    pub fn resolve_snippet(&self, volid: &str) -> Result<PathBuf> {
        let (store, name) = split_snippet_volid(volid).map_err(Error::Config)?;
        let s = self.get(store).ok_or_else(|| {
            Error::Config(format!(
                "hookscript '{volid}': storage '{store}' is not defined in {}",
                self.origin.display()
            ))
        })?;
        let dir = s.snippets_dir().ok_or_else(|| {
            Error::Config(format!(
                "hookscript '{volid}': storage '{store}' ({}) has no directory",
                s.kind
            ))
        })?;
        Ok(dir.join(name))
    }

    /// The volume id naming `path`, if exactly one storage's snippets
    /// directory holds it (the reverse of [`Storages::resolve_snippet`]).
    #[must_use]
    pub fn volid_of(&self, path: &Path) -> Option<String> {
        let parent = path.parent()?;
        let name = path.file_name()?.to_str()?;
        let mut hits = self
            .list
            .iter()
            .filter(|s| s.snippets_dir().as_deref() == Some(parent));
        let first = hits.next()?;
        if hits.next().is_some() {
            return None;
        }
        Some(format!("{}:snippets/{name}", first.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n\
        lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n\n\
        nfs: nas\n\texport /export/pve\n\tpath /mnt/pve/nas\n\tserver 10.0.0.5\n\tcontent snippets,images\n\toptions vers=4.2\n\n\
        dir: shared-dir\n\tpath /srv/pve\n\tcontent snippets\n\tshared 1\n\tcontent-dirs snippets=hooks/pve\n\n\
        cephfs: cephfs\n\tcontent backup,snippets\n\tfs-name cephfs\n\n\
        dir: off\n\tpath /srv/off\n\tcontent snippets\n\tdisable\n";

    fn s() -> Storages {
        parse(CFG, Path::new("/etc/pve/storage.cfg")).unwrap()
    }

    #[test]
    fn reads_paths_content_and_sharing() {
        let s = s();
        let local = s.get("local").unwrap();
        assert_eq!(local.path.as_deref(), Some(Path::new("/var/lib/vz")));
        assert!(!local.shared && !local.has_snippets());
        assert!(s.get("nas").unwrap().shared);
        assert_eq!(
            s.get("shared-dir").unwrap().snippets_dir().unwrap(),
            Path::new("/srv/pve/hooks/pve")
        );
        assert_eq!(
            s.get("cephfs").unwrap().snippets_dir().unwrap(),
            Path::new("/mnt/pve/cephfs/snippets")
        );
        assert_eq!(s.get("local-lvm").unwrap().path, None);
        assert!(s.get("off").unwrap().disabled);
    }

    #[test]
    fn snippets_not_enabled_says_exactly_how() {
        let e = s().snippets_storage("local").unwrap_err().to_string();
        assert!(
            e.contains(
                "note: enable it with `pvesm set local --content iso,vztmpl,backup,snippets`"
            ),
            "{e}"
        );
        assert!(e.contains("/etc/pve/storage.cfg:1"), "{e}");
        assert!(
            e.contains("storages with snippets: nas, shared-dir, cephfs"),
            "{e}"
        );
        let e = s().snippets_storage("local-lvm").unwrap_err().to_string();
        assert!(e.contains("cannot hold hookscripts"), "{e}");
        let e = s().snippets_storage("nope").unwrap_err().to_string();
        assert!(e.contains("is not defined"), "{e}");
        let e = s().snippets_storage("off").unwrap_err().to_string();
        assert!(e.contains("pvesm set off --disable 0"), "{e}");
        assert_eq!(s().snippets_storage("nas").unwrap().id, "nas");
    }

    #[test]
    fn volume_ids_resolve_both_ways() {
        let s = s();
        let p = s.resolve_snippet("nas:snippets/old.pl").unwrap();
        assert_eq!(p, Path::new("/mnt/pve/nas/snippets/old.pl"));
        assert_eq!(s.volid_of(&p).as_deref(), Some("nas:snippets/old.pl"));
        assert_eq!(
            s.resolve_snippet("local:snippets/x.sh").unwrap(),
            Path::new("/var/lib/vz/snippets/x.sh")
        );
        assert!(s.resolve_snippet("local:iso/x.iso").is_err());
        assert!(s.resolve_snippet("local:snippets/../x").is_err());
        assert!(s.resolve_snippet("nope:snippets/x").is_err());
        assert!(s.resolve_snippet("local-lvm:snippets/x").is_err());
        assert!(s.volid_of(Path::new("/elsewhere/x")).is_none());
    }

    #[test]
    fn relative_path_is_an_error_with_line() {
        let e = parse("dir: a\n\tpath var/lib\n", Path::new("s.cfg")).unwrap_err();
        assert_eq!(e.to_string(), "s.cfg:2: storage 'a': path must be absolute");
    }
}
