//! Directories, files and symlinks the policy asks for inside the sandbox.
//!
//! Created before pivot_root, from the new root's descriptor, never through a symlink
//! (see `paths.rs`). Allocation-free, like everything after clone3.

use std::ffi::CStr;
use std::os::fd::AsRawFd;

use super::paths::{Parent, enter_dir};
use super::plan::Target;
use crate::sys::{self, Errno};

pub(crate) fn make_dir(root: i32, target: &Target, mode: u32) -> Result<(), Errno> {
    let parent = Parent::open(root, target)?;
    enter_dir(parent.fd(), &target.leaf, mode).map(drop)
}

/// Writes `contents` to `target`, replacing a regular file that is there; a symlink at
/// `target` is refused.
pub(crate) fn write_file(root: i32, target: &Target, contents: &[u8]) -> Result<(), Errno> {
    let parent = Parent::open(root, target)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW;
    let file = sys::openat(parent.fd(), &target.leaf, flags, 0o644)?;
    sys::write_all(file.as_raw_fd(), contents)
}

pub(crate) fn make_symlink(root: i32, original: &CStr, target: &Target) -> Result<(), Errno> {
    let parent = Parent::open(root, target)?;
    sys::symlinkat(original, parent.fd(), &target.leaf)
}
