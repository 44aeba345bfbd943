//! Mounts of the sandbox's file tree: the tmpfs root, bind mounts and new filesystems.
//!
//! Runs inside the sandbox's new mount namespace, before pivot_root. Mount points are
//! reached without following symlinks (`paths.rs`); bind sources are opened once without
//! following symlinks and mounted from that descriptor. Allocation-free, like everything
//! after clone3.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::child::{Failure, Op, at};
use super::paths::{Parent, enter_dir};
use super::plan::{NodeKind, Target};
use crate::sys::{self, Errno};

/// Mounts a fresh tmpfs over `/`, enters it and returns it: the root of the new tree.
///
/// The tmpfs is created detached and attached inside this mount namespace only, so no
/// host directory is involved and the host never sees it.
pub(crate) fn mount_root() -> Result<OwnedFd, Failure> {
    let fs = sys::fsopen(c"tmpfs").map_err(at(Op::Fsopen))?;
    sys::fsconfig_string(&fs, c"mode", c"0755").map_err(at(Op::Fsconfig))?;
    let root = sys::fsmount(&fs, libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV)
        .map_err(at(Op::Fsmount))?;
    sys::attach_at(&root, c"/").map_err(at(Op::Attach))?;
    // Mounting over "/" does not move anyone into the new mount; entering it by descriptor
    // does, and pivot_root(".", ".") later makes it the root.
    sys::fchdir(root.as_raw_fd()).map_err(at(Op::Attach))?;
    Ok(root)
}

/// Binds the host tree at `source` on `target`, with `attrs` on every mount of the copy.
pub(crate) fn bind(root: RawFd, source: &CStr, target: &Target, attrs: u64) -> Result<(), Failure> {
    let source = sys::open_path_nofollow(source).map_err(at(Op::OpenSource))?;
    let tree = sys::clone_tree(&source).map_err(at(Op::CloneTree))?;
    // The copy is still detached: it is read-only (or nosuid, nodev) before anyone sees it.
    sys::set_tree_attrs(&tree, attrs).map_err(at(Op::SetAttributes))?;
    let point = mount_point(root, target).map_err(at(Op::MakeTarget))?;
    sys::attach(&tree, point.as_raw_fd()).map_err(at(Op::Attach))
}

/// Mounts a new filesystem of `fstype` (proc, tmpfs, devpts) with `options` on `target`.
pub(crate) fn mount_fs(
    root: RawFd,
    fstype: &CStr,
    options: &[(CString, CString)],
    target: &Target,
    attrs: u64,
) -> Result<(), Failure> {
    let fs = sys::fsopen(fstype).map_err(at(Op::Fsopen))?;
    for (key, value) in options {
        sys::fsconfig_string(&fs, key, value).map_err(at(Op::Fsconfig))?;
    }
    let mount = sys::fsmount(&fs, attrs).map_err(at(Op::Fsmount))?;
    let point = mount_point(root, target).map_err(at(Op::MakeTarget))?;
    sys::attach(&mount, point.as_raw_fd()).map_err(at(Op::Attach))
}

/// Creates what is missing of `target` under `root` and opens it as an O_PATH descriptor.
fn mount_point(root: RawFd, target: &Target) -> Result<OwnedFd, Errno> {
    let parent = Parent::open(root, target)?;
    match target.kind {
        NodeKind::Dir => enter_dir(parent.fd(), &target.leaf, 0o755),
        NodeKind::File => {
            let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW;
            match sys::openat(parent.fd(), &target.leaf, flags, 0o644) {
                Ok(_) | Err(Errno(libc::EEXIST)) => {}
                Err(e) => return Err(e),
            }
            let flags = libc::O_PATH | libc::O_NOFOLLOW;
            let point = sys::openat(parent.fd(), &target.leaf, flags, 0)?;
            match sys::file_type(point.as_raw_fd())? {
                libc::S_IFLNK => Err(Errno(libc::ELOOP)),
                libc::S_IFDIR => Err(Errno(libc::EISDIR)),
                _ => Ok(point),
            }
        }
    }
}
