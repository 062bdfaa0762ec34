//! Writing the cache: writers take an exclusive lock (fs2) on a separate
//! `<file>.lock` (never through a link, waiting at most [`LOCK_WAIT`]),
//! write a temporary file beside the cache (`O_EXCL`, random name: see
//! `crate::fsutil`), fsync it, rename it over the cache and fsync the
//! directory: a reader sees the old file or the new one, never a mix, and a
//! crash at any point leaves the previous cache readable. A corrupt file is
//! moved aside to `<file>.corrupt` before it is replaced, so nothing is lost
//! silently.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs2::FileExt;

use super::store::Cache;
use crate::error::{Error, Result};

/// The lock file that serializes writers of `path`.
#[must_use]
pub fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, ".lock")
}

/// Where a corrupt cache is moved before it is replaced.
#[must_use]
pub fn corrupt_path(path: &Path) -> PathBuf {
    with_suffix(path, ".corrupt")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// How long a writer waits for another writer's lock before giving up
/// with an error naming the lock file.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Whether `name` is a temporary file a writer of `path` left behind: this
/// version's (`.cluster.json.XXXXXX.tmp`, see [`crate::fsutil::stage`]) or
/// an older one's (`.cluster.json.tmp.PID`).
fn is_leftover(name: &str, path: &Path) -> bool {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::fsutil::is_temp_of(name, &file) || name.starts_with(&format!(".{file}.tmp."))
}

/// An exclusive writer: holds the lock until dropped.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    lock: File,
}

/// A new cache written to a temporary file, not yet visible.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::NamedTempFile,
}

impl Staged {
    /// The temporary file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.temp.path()
    }
}

impl Writer {
    /// Takes the writers' lock (waiting at most [`LOCK_WAIT`] for another
    /// writer to finish), creating the cache directory if needed, and
    /// removes temporary files left by a writer that died.
    ///
    /// # Errors
    /// The directory or lock file cannot be created (a symlink or a FIFO at
    /// the lock path is refused), or the lock is still held after the wait.
    pub fn lock(path: &Path) -> Result<Writer> {
        Writer::lock_within(path, LOCK_WAIT)
    }

    /// [`Writer::lock`] with another bound on the wait.
    ///
    /// # Errors
    /// As [`Writer::lock`].
    pub fn lock_within(path: &Path, wait: Duration) -> Result<Writer> {
        let dir = parent(path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lp = lock_path(path);
        let lock = crate::fsutil::open_lock(&lp).map_err(|e| Error::Lock {
            path: lp.clone(),
            source: e,
        })?;
        crate::fsutil::lock_within(&lock, &lp, wait, "another pve-cpuguard scan or migrate")?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if is_leftover(&e.file_name().to_string_lossy(), path) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Writer {
            path: path.to_path_buf(),
            lock,
        })
    }

    /// The current cache, under the lock. A corrupt file is moved aside to
    /// `<file>.corrupt` and reported; the cache is then empty.
    ///
    /// # Errors
    /// I/O errors.
    pub fn load(&self) -> Result<(Cache, Option<Error>)> {
        let (cache, problem) = Cache::load_lenient(&self.path)?;
        if problem.is_some() {
            let aside = corrupt_path(&self.path);
            std::fs::rename(&self.path, &aside).map_err(|e| Error::io(&aside, e))?;
        }
        Ok((cache, problem))
    }

    /// Writes `cache` to a new temporary file beside the cache (created
    /// with `O_EXCL` and a random name, so a planted link there is never
    /// followed) and fsyncs it.
    ///
    /// # Errors
    /// I/O errors (the temporary file is removed).
    pub fn stage(&self, cache: &Cache) -> Result<Staged> {
        let temp = crate::fsutil::stage(&self.path, cache.to_json().as_bytes(), Some(0o644))
            .map_err(|e| Error::io(parent(&self.path), e))?;
        Ok(Staged { temp })
    }

    /// Makes a staged cache the cache: rename, then fsync the directory.
    ///
    /// # Errors
    /// I/O errors (the old cache then stays in place).
    pub fn commit(&self, staged: Staged) -> Result<()> {
        crate::fsutil::commit(staged.temp, &self.path).map_err(|e| Error::io(&self.path, e))
    }

    /// [`Writer::stage`] then [`Writer::commit`].
    ///
    /// # Errors
    /// I/O errors.
    pub fn store(&self, cache: &Cache) -> Result<()> {
        let staged = self.stage(cache)?;
        self.commit(staged)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.lock);
    }
}

use crate::fsutil::parent;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::record::tests::rec;

    #[test]
    fn writer_replaces_atomically_and_sets_corrupt_files_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cluster.json");
        assert_eq!(
            Cache::load(&path).unwrap(),
            Cache::default(),
            "missing = empty"
        );
        let w = Writer::lock(&path).unwrap();
        let mut c = Cache::default();
        c.nodes.insert("pve1".into(), rec("pve1", "fpu", 1));
        w.store(&c).unwrap();
        drop(w);
        assert_eq!(Cache::load(&path).unwrap(), c);
        std::fs::write(&path, "{garbage").unwrap();
        let (lenient, problem) = Cache::load_lenient(&path).unwrap();
        assert!(lenient.nodes.is_empty());
        assert!(problem.unwrap().to_string().contains("not JSON"));
        let w = Writer::lock(&path).unwrap();
        let (loaded, problem) = w.load().unwrap();
        assert!(loaded.nodes.is_empty() && problem.is_some());
        assert_eq!(
            std::fs::read_to_string(corrupt_path(&path)).unwrap(),
            "{garbage"
        );
        assert!(!path.exists());
        w.store(&c).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(names.is_empty(), "no temp files left: {names:?}");
    }
}
