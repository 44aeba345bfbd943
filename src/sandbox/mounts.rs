//! Building the sandbox's file tree: the tmpfs root, bind mounts and filesystem mounts.
//!
//! Runs inside the sandbox's new mount namespace, before pivot_root. Mount points are
//! created by walking the target one component at a time from the new root with
//! `O_NOFOLLOW`, so no symlink (one planted by a bound tree, say) can redirect a mount.
//! Bind sources are opened once without following symlinks and mounted from that
//! descriptor. Allocation-free, like everything after clone3.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::child::{Failure, Op, at};
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

/// Mounts a new filesystem of `fstype` (proc, tmpfs) on `target`.
pub(crate) fn mount_fs(
    root: RawFd,
    fstype: &CStr,
    target: &Target,
    attrs: u64,
) -> Result<(), Failure> {
    let fs = sys::fsopen(fstype).map_err(at(Op::Fsopen))?;
    let mount = sys::fsmount(&fs, attrs).map_err(at(Op::Fsmount))?;
    let point = mount_point(root, target).map_err(at(Op::MakeTarget))?;
    sys::attach(&mount, point.as_raw_fd()).map_err(at(Op::Attach))
}

/// Creates what is missing of `target` under `root` and opens it as an O_PATH descriptor.
fn mount_point(root: RawFd, target: &Target) -> Result<OwnedFd, Errno> {
    let mut parent: Option<OwnedFd> = None;
    for name in &target.parents {
        let dir = enter_dir(parent.as_ref().map_or(root, |fd| fd.as_raw_fd()), name)?;
        parent = Some(dir);
    }
    let parent = parent.as_ref().map_or(root, |fd| fd.as_raw_fd());
    match target.kind {
        NodeKind::Dir => enter_dir(parent, &target.leaf),
        NodeKind::File => {
            let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW;
            match sys::openat(parent, &target.leaf, flags, 0o644) {
                Ok(_) | Err(Errno(libc::EEXIST)) => {}
                Err(e) => return Err(e),
            }
            let point = sys::openat(parent, &target.leaf, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            match sys::file_type(point.as_raw_fd())? {
                libc::S_IFLNK => Err(Errno(libc::ELOOP)),
                libc::S_IFDIR => Err(Errno(libc::EISDIR)),
                _ => Ok(point),
            }
        }
    }
}

/// Makes directory `name` in `parent` if it is missing and opens it; a symlink is refused.
fn enter_dir(parent: RawFd, name: &CStr) -> Result<OwnedFd, Errno> {
    match sys::mkdirat(parent, name, 0o755) {
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
