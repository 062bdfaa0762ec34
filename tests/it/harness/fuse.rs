//! A FUSE mount whose server never answers, to make a file system hang the
//! way a stuck pmxcfs or network file system does, and then fail the way a
//! stopped pmxcfs does ("Transport endpoint is not connected").
//!
//! The test process opens `/dev/fuse` and mounts it (needs root) but never
//! reads the device: the kernel's `FUSE_INIT` stays unanswered, so every
//! access below the mount point waits in the kernel where only a fatal
//! signal reaches it (fs/fuse/dev.c `fuse_get_req`). [`Fuse::disconnect`]
//! closes the device: pending and later accesses fail with `ENOTCONN`.
//! Dropping it detaches the mount.
#![allow(dead_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Fuse {
    dir: PathBuf,
    device: Option<OwnedFd>,
}

impl Fuse {
    /// Mounts a hanging file system on `dir` (created if missing).
    pub fn hanging(dir: &Path) -> Fuse {
        Fuse::mount(dir, "")
    }

    /// [`Fuse::hanging`], where every user's access hangs too
    /// (`allow_other`; without it the kernel refuses other users at once).
    pub fn hanging_for_everyone(dir: &Path) -> Fuse {
        Fuse::mount(dir, ",allow_other")
    }

    fn mount(dir: &Path, more_options: &str) -> Fuse {
        std::fs::create_dir_all(dir).unwrap();
        let device: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .expect("open /dev/fuse (tests run as root)")
            .into();
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0{more_options}",
            device.as_raw_fd()
        ))
        .unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"pve-cpuguard-test".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(
            r,
            0,
            "mount fuse on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        Fuse {
            dir: dir.to_path_buf(),
            device: Some(device),
        }
    }

    /// Mounts a file system that answers everything with `ENOTCONN`, like
    /// /etc/pve while pmxcfs is down.
    pub fn disconnected(dir: &Path) -> Fuse {
        let mut f = Fuse::hanging(dir);
        f.disconnect();
        f
    }

    /// The server goes away: every access now fails with `ENOTCONN`.
    pub fn disconnect(&mut self) {
        self.device = None;
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        self.device = None;
        let target = CString::new(self.dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}
