//! Landlock: file system and TCP port rules the command cannot lift, on top of the mounts.
//!
//! The rules name paths inside the sandbox. The plan asks the kernel which Landlock ABI it
//! has and keeps only the access rights that ABI knows (best effort), or refuses to run when
//! asked to be strict and the kernel cannot enforce everything. The command's process then
//! makes the ruleset, adds the rules and restricts itself, after no_new_privs and before
//! seccomp. Everything after the plan is allocation-free.

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::error::Error;
use crate::sys::{self, Errno};

/// What a policy or the options ask of Landlock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LandlockSpec {
    /// Paths the command may read (files and directories).
    pub(crate) ro: Vec<PathBuf>,
    /// Paths the command may read and execute.
    pub(crate) rx: Vec<PathBuf>,
    /// Paths the command may do anything with.
    pub(crate) rw: Vec<PathBuf>,
    /// TCP ports the command may bind.
    pub(crate) tcp_bind: Vec<u16>,
    /// TCP ports the command may connect to.
    pub(crate) tcp_connect: Vec<u16>,
    /// Refuse to run unless the kernel enforces every rule.
    pub(crate) strict: bool,
}

impl LandlockSpec {
    pub(crate) fn is_empty(&self) -> bool {
        self.ro.is_empty()
            && self.rx.is_empty()
            && self.rw.is_empty()
            && self.tcp_bind.is_empty()
            && self.tcp_connect.is_empty()
    }
}

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
const BIND_TCP: u64 = 1 << 0;
const CONNECT_TCP: u64 = 1 << 1;
/// The rights a rule on a file (not a directory) may carry.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

/// Every file system right Landlock ABI `abi` knows.
fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    }
}

/// One step of restricting the command with Landlock, each its own plan step so that a
/// failure names its rule.
pub(crate) enum LandlockStep {
    /// Make the ruleset for what is handled, and add the port rules.
    Create {
        handled_fs: u64,
        handled_net: u64,
        ports: Vec<(u64, u64)>,
    },
    /// Allow `rights` beneath `path` (`access` names them: ro, rx or rw).
    AllowPath {
        path: CString,
        rights: u64,
        access: &'static str,
    },
    /// Restrict the process with the ruleset.
    Restrict,
}

impl fmt::Display for LandlockStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandlockStep::Create { ports, .. } => {
                write!(f, "make the Landlock ruleset ({} port rules)", ports.len())
            }
            LandlockStep::AllowPath { path, access, .. } => {
                write!(f, "add the Landlock rule {access} {path:?}")
            }
            LandlockStep::Restrict => f.write_str("restrict with Landlock"),
        }
    }
}

/// Prepares the steps for the kernel's ABI (none when the kernel can enforce nothing), and
/// a description for the log.
pub(crate) fn prepare(spec: &LandlockSpec) -> Result<(Vec<LandlockStep>, String), Error> {
    let abi = sys::landlock_abi().unwrap_or(0);
    let wants_net = !spec.tcp_bind.is_empty() || !spec.tcp_connect.is_empty();
    let wants_fs = !(spec.ro.is_empty() && spec.rx.is_empty() && spec.rw.is_empty());
    let mut missing = Vec::new();
    if abi == 0 {
        missing.push("Landlock itself");
    } else if wants_net && abi < 4 {
        missing.push("TCP rules (ABI 4)");
    }
    if !missing.is_empty() {
        let what = format!(
            "the kernel (Landlock ABI {abi}) cannot enforce {}",
            missing.join(", ")
        );
        if spec.strict {
            return Err(Error::Setup(format!("--landlock-strict: {what}")));
        }
        if abi == 0 {
            return Ok((Vec::new(), format!("not enforced: {what}")));
        }
    }
    let all = fs_rights(abi);
    let handled_fs = if wants_fs { all } else { 0 };
    let mut paths = Vec::new();
    for (list, rights, access) in [
        (&spec.ro, READ_FILE | READ_DIR, "ro"),
        (&spec.rx, READ_FILE | READ_DIR | EXECUTE, "rx"),
        (&spec.rw, all, "rw"),
    ] {
        for path in list {
            let path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                Error::InvalidInput(format!("landlock path {path:?} contains a NUL byte"))
            })?;
            paths.push(LandlockStep::AllowPath {
                path,
                rights: rights & all,
                access,
            });
        }
    }
    let mut handled_net = 0;
    let mut ports = Vec::new();
    if abi >= 4 {
        for (list, right) in [(&spec.tcp_bind, BIND_TCP), (&spec.tcp_connect, CONNECT_TCP)] {
            if !list.is_empty() {
                handled_net |= right;
            }
            ports.extend(list.iter().map(|port| (u64::from(*port), right)));
        }
    }
    let mut description = format!(
        "ABI {abi}, {} path rules, {} port rules",
        paths.len(),
        ports.len()
    );
    if !missing.is_empty() {
        description.push_str(&format!(" (not enforced: {})", missing.join(", ")));
    }
    let mut steps = vec![LandlockStep::Create {
        handled_fs,
        handled_net,
        ports,
    }];
    steps.extend(paths);
    steps.push(LandlockStep::Restrict);
    Ok((steps, description))
}

/// Takes one step in the command's process, after no_new_privs; `ruleset` carries the
/// ruleset from `Create` to `Restrict`. Allocation-free.
pub(crate) fn apply(step: &LandlockStep, ruleset: &mut Option<OwnedFd>) -> Result<(), Errno> {
    match step {
        LandlockStep::Create {
            handled_fs,
            handled_net,
            ports,
        } => {
            let fd = sys::landlock_create_ruleset(*handled_fs, *handled_net)?;
            for (port, right) in ports {
                sys::landlock_add_rule_port(&fd, *right, *port)?;
            }
            *ruleset = Some(fd);
            Ok(())
        }
        LandlockStep::AllowPath { path, rights, .. } => {
            let fd = ruleset.as_ref().ok_or(Errno(libc::EBADF))?;
            let target = sys::open(path, libc::O_PATH)?;
            let rights = match sys::file_type(target.as_raw_fd())? {
                libc::S_IFDIR => *rights,
                _ => rights & FILE_RIGHTS,
            };
            // Within the handled rights: a path rule makes the ruleset handle them all.
            sys::landlock_add_rule_path(fd, rights, target.as_raw_fd())
        }
        LandlockStep::Restrict => {
            let fd = ruleset.take().ok_or(Errno(libc::EBADF))?;
            sys::landlock_restrict_self(&fd)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_the_abi() {
        assert_eq!(fs_rights(1), 0x1fff);
        assert_eq!(fs_rights(2), 0x3fff);
        assert_eq!(fs_rights(3), 0x7fff);
        assert_eq!(fs_rights(7), 0xffff);
        assert_eq!(FILE_RIGHTS & READ_DIR, 0);
    }

    #[test]
    fn empty_and_rule_counts() {
        let mut spec = LandlockSpec::default();
        assert!(spec.is_empty());
        spec.ro.push("/usr".into());
        spec.tcp_connect.push(443);
        assert!(!spec.is_empty());
        if sys::landlock_abi().unwrap_or(0) >= 4 {
            let (steps, text) = prepare(&spec).unwrap();
            let shown: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                shown,
                [
                    "make the Landlock ruleset (1 port rules)",
                    "add the Landlock rule ro \"/usr\"",
                    "restrict with Landlock"
                ]
            );
            assert!(matches!(
                steps[0],
                LandlockStep::Create { handled_fs, handled_net: CONNECT_TCP, .. }
                    if handled_fs == fs_rights(sys::landlock_abi().unwrap_or(0))
            ));
            assert!(text.ends_with("1 path rules, 1 port rules"), "{text}");
        }
    }
}
