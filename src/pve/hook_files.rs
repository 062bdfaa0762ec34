//! Which snippets storages hold a given hook file on this node: a guarded
//! VM can only start where its hookscript volume exists (qemu-server
//! `check_hookscript` fails the start with "script '…' does not exist"),
//! and on a storage that is not shared each node has its own directory.

use std::path::Path;

use crate::pve::storage;

/// The storages (by id, in storage.cfg order) whose snippets directory on
/// this node holds `file_name`; `None` when storage.cfg cannot be read.
#[must_use]
pub fn local(pve_root: &Path, file_name: &str) -> Option<Vec<String>> {
    let storages = storage::read(pve_root).ok()?;
    Some(
        storages
            .with_snippets()
            .into_iter()
            .filter(|id| {
                storages
                    .get(id)
                    .and_then(storage::Storage::snippets_dir)
                    .is_some_and(|d| d.join(file_name).is_file())
            })
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_storages_whose_directory_holds_the_file() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(a.join("snippets")).unwrap();
        std::fs::create_dir_all(b.join("snippets")).unwrap();
        std::fs::write(a.join("snippets/hook"), "x").unwrap();
        let pve = d.path().join("pve");
        std::fs::create_dir_all(&pve).unwrap();
        assert_eq!(local(&pve, "hook"), None, "no storage.cfg: unknown");
        std::fs::write(
            pve.join("storage.cfg"),
            format!(
                "dir: a\n\tpath {}\n\tcontent snippets\n\ndir: b\n\tpath {}\n\tcontent snippets,iso\n\n\
                 dir: c\n\tpath {}\n\tcontent iso\n",
                a.display(),
                b.display(),
                a.display()
            ),
        )
        .unwrap();
        assert_eq!(local(&pve, "hook"), Some(vec!["a".to_string()]));
    }
}
