//! Walking paths inside the new root without following symlinks.
//!
//! Every path hakoniwa creates or mounts on inside the sandbox is reached from the root's
//! descriptor one component at a time, each opened with `O_NOFOLLOW | O_DIRECTORY`: a
//! symlink anywhere on the way (one a bound tree planted, say) is an error, never a detour.
//! Missing directories are created on the way. Allocation-free, like everything after
//! clone3.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::plan::Target;
use crate::sys::{self, Errno};

/// The directory that holds `target`'s last component, with missing parents created.
pub(crate) struct Parent {
    /// `None` when the parent is the root itself.
    dir: Option<OwnedFd>,
    root: RawFd,
}

impl Parent {
    pub(crate) fn open(root: RawFd, target: &Target) -> Result<Parent, Errno> {
        let mut parent = Parent { dir: None, root };
        for name in &target.parents {
            let dir = enter_dir(parent.fd(), name, 0o755)?;
            parent.dir = Some(dir);
        }
        Ok(parent)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.dir.as_ref().map_or(self.root, |fd| fd.as_raw_fd())
    }
}

/// Makes directory `name` in `parent` with `mode` if it is missing, and opens it; a
/// symlink is refused.
pub(crate) fn enter_dir(parent: RawFd, name: &CStr, mode: u32) -> Result<OwnedFd, Errno> {
    match sys::mkdirat(parent, name, mode) {
        Ok(()) | Err(Errno(libc::EEXIST)) => {}
        Err(e) => return Err(e),
    }
    sys::openat(
        parent,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}
