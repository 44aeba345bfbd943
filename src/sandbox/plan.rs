//! Policy + command -> Plan.
//!
//! Everything is decided here, in the parent, before `clone3`: host paths are resolved,
//! every string becomes a `CString`, every buffer is allocated. The sandbox's processes then
//! only walk the steps (see `child.rs`), because after `clone3` in a possibly multi-threaded
//! program they may neither allocate nor take a lock.

use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use super::capabilities;
use super::landlock::{self, LandlockStep};
use super::limits::{self, Rlimit};
use crate::error::Error;
use crate::log::info;
use crate::policy::{FsEntry, Limits, Mount, MountKind, SandboxPolicy};
use crate::seccomp::Base;
use crate::seccomp::profile::Instruction;
use crate::seccomp::syscalls::Arch;
use crate::sys;

const LOG: &str = "hakoniwa::executor";

/// `PATH` for command lookup when the sandbox's environment has none.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What to run: the program and its argv (argv[0] included).
#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub(crate) program: OsString,
    pub(crate) argv: Vec<OsString>,
}

/// Where a standard stream of the command comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamSource {
    /// Hakoniwa's own stream.
    Inherit,
    /// `/dev/null` of the host.
    Null,
    /// A pipe to the supervisor, which feeds it (stdin) or captures it (stdout, stderr).
    Pipe,
}

/// The fully prepared recipe for one sandbox.
pub(crate) struct Plan {
    /// `CLONE_NEW*` flags for the `clone3` that creates the sandbox's init.
    pub(crate) namespaces: u64,
    /// Steps of the sandbox's init (PID 1), ending with `ReleaseCommand`.
    pub(crate) init: Vec<Step>,
    /// Steps of the command's process, ending with `Exec`. Init starts it early (with
    /// `StartCommand`), and the two prepare side by side until `WaitForRoot`.
    pub(crate) command: Vec<Step>,
    /// Where the command's stdin, stdout and stderr come from or go to: the supervisor
    /// makes a pipe for each `Pipe` before `clone3`.
    pub(crate) streams: [StreamSource; 3],
    /// The limits, for the supervisor's walltime deadline and for telling a limit's kill
    /// from another.
    pub(crate) limits: Limits,
    /// The command's system calls are traced: the supervisor serves its seccomp listener.
    pub(crate) trace: bool,
    /// Where the sandbox's cgroup is made, when cgroup limits are set (default: the
    /// caller's own cgroup).
    pub(crate) cgroup_parent: Option<PathBuf>,
}

/// The kind of node a mount is attached on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Dir,
    File,
}

/// A path inside the sandbox's new root, split into components so the child can walk it
/// one directory at a time without ever following a symlink.
pub(crate) struct Target {
    pub(crate) display: String,
    pub(crate) parents: Vec<CString>,
    pub(crate) leaf: CString,
    pub(crate) kind: NodeKind,
}

/// A NULL-terminated array of C strings, as execve wants argv and envp.
pub(crate) struct CStringArray {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CStringArray {
    fn new(strings: Vec<CString>) -> CStringArray {
        let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        CStringArray {
            _strings: strings,
            pointers,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// The command's final step: the candidates from the `PATH` lookup, tried in order.
pub(crate) struct Exec {
    pub(crate) program: String,
    pub(crate) candidates: Vec<CString>,
    pub(crate) argv: CStringArray,
    pub(crate) envp: CStringArray,
}

/// One thing a sandbox process does. The parent names a failed step in its error message.
pub(crate) enum Step {
    /// Keep only the standard streams and the two pipes to the parent.
    CloseInheritedFds,
    /// Die with the parent (PR_SET_PDEATHSIG), and stop now if it is already gone.
    DieWithParent,
    /// Block the signals init waits for.
    BlockSignals,
    /// Point standard stream `fd` at the host's `/dev/null` or at its pipe to the
    /// supervisor.
    RedirectStream {
        fd: i32,
        to: StreamSource,
    },
    /// Write a file of /proc (the id maps) by absolute path, before the root changes.
    WriteProcFile {
        path: &'static CStr,
        data: Vec<u8>,
    },
    SetHostname {
        name: CString,
    },
    /// Make every mount a slave so nothing propagates back to the host.
    IsolateMounts,
    /// Make init non-dumpable: the command cannot ptrace it or open its /proc files
    /// (`/proc/1/exe` is hakoniwa's binary on the host).
    NotDumpable,
    /// Mount a fresh tmpfs over `/` and enter it; the tree is built relative to it.
    MountRoot,
    Bind {
        source: CString,
        source_display: String,
        target: Target,
        attrs: u64,
    },
    /// A new filesystem (proc, tmpfs, devpts) with fsconfig options.
    MountFs {
        fstype: &'static CStr,
        options: Vec<(CString, CString)>,
        target: Target,
        attrs: u64,
    },
    MakeDir {
        target: Target,
        mode: u32,
    },
    WriteFile {
        target: Target,
        contents: Vec<u8>,
    },
    Symlink {
        original: CString,
        target: Target,
    },
    /// Bring up `lo` in the sandbox's new network namespace.
    LoopbackUp,
    /// Keep this process's /proc directory, for InnerNamespaces after the root changes.
    OpenProcSelf,
    /// pivot_root into the new root and detach the old one; where the host's root is an
    /// initramfs's rootfs, which pivot_root cannot leave, chroot into it instead.
    EnterRoot {
        rootfs: bool,
    },
    /// Move into an inner user namespace (same ids) with a copy of the mount namespace and
    /// the other namespaces (`flags`): the copy of the finished tree is locked (no remount,
    /// no umount to reveal what is under, flags fixed) against anyone in the sandbox,
    /// whatever capabilities it holds.
    InnerNamespaces {
        flags: i32,
        uid_map: Vec<u8>,
        gid_map: Vec<u8>,
    },
    Chdir {
        dir: CString,
    },
    /// Start the command's process, which walks `Plan::command` alongside init.
    StartCommand,
    /// Init: wait until the command's process has made the namespaces of `flags`
    /// (`NamespacesReady`), and move into them.
    JoinCommandNamespaces {
        flags: i32,
    },
    /// Init: let the command's process go on into the finished tree (`WaitForRoot`).
    ReleaseCommand,
    /// The command's process: make the namespaces that do not depend on the tree (network,
    /// hostname, IPC, cgroup), while init builds the tree.
    CreateNamespaces {
        flags: i32,
    },
    /// The command's process: tell init that its namespaces are made.
    NamespacesReady,
    /// The command's process: wait for `ReleaseCommand`, then stop sharing init's root and
    /// working directory.
    WaitForRoot,
    NewSession,
    NoNewPrivs,
    /// Empty the bounding set but for `keep`, and the ambient and inheritable sets.
    DropCapabilities {
        keep: u64,
    },
    /// Without a user namespace: become `uid` and `gid` for real, with no supplementary
    /// groups (in one, the ids are the mapped ones already).
    SetIds {
        uid: u32,
        gid: u32,
    },
    /// Default signal actions and an empty signal mask.
    ResetSignals,
    /// Mark every descriptor above the standard streams close-on-exec.
    CloseOnExec,
    /// Set one rlimit of the command's process.
    SetRlimit(Rlimit),
    /// One step of restricting the command with Landlock.
    Landlock(LandlockStep),
    /// Install the command's seccomp filter.
    LoadSeccomp {
        program: Vec<Instruction>,
    },
    /// Install a filter that hands every system call to the supervisor, and hand it the
    /// listener with `sendmsg` (the one call the filter lets through).
    TraceSyscalls {
        arch: Arch,
        sendmsg: u32,
    },
    Exec(Exec),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CloseInheritedFds => f.write_str("close inherited descriptors"),
            Step::DieWithParent => f.write_str("tie the sandbox to hakoniwa's life"),
            Step::BlockSignals => f.write_str("block signals"),
            Step::RedirectStream { fd, to } => match to {
                StreamSource::Inherit => write!(f, "keep descriptor {fd}"),
                StreamSource::Null => write!(f, "redirect descriptor {fd} to /dev/null"),
                StreamSource::Pipe => write!(f, "redirect descriptor {fd} to hakoniwa's pipe"),
            },
            Step::WriteProcFile { path, data } => {
                write!(
                    f,
                    "write {:?} to {:?}",
                    String::from_utf8_lossy(data).trim_end(),
                    path
                )
            }
            Step::MakeDir { target, mode } => {
                write!(f, "create directory {:?} (mode {mode:o})", target.display)
            }
            Step::WriteFile { target, contents } => {
                write!(f, "write {} bytes to {:?}", contents.len(), target.display)
            }
            Step::Symlink { original, target } => {
                write!(f, "create symlink {:?} -> {original:?}", target.display)
            }
            Step::SetHostname { name } => write!(f, "set hostname {name:?}"),
            Step::IsolateMounts => f.write_str("stop mount propagation to the host"),
            Step::NotDumpable => f.write_str("make init non-dumpable"),
            Step::MountRoot => f.write_str("mount the root tmpfs"),
            Step::Bind {
                source_display,
                target,
                ..
            } => {
                write!(f, "bind {source_display:?} on {:?}", target.display)
            }
            Step::MountFs { fstype, target, .. } => {
                write!(
                    f,
                    "mount {} on {:?}",
                    fstype.to_string_lossy(),
                    target.display
                )
            }
            Step::OpenProcSelf => f.write_str("open /proc/self"),
            Step::LoopbackUp => f.write_str("bring up the loopback interface"),
            Step::EnterRoot { rootfs: false } => f.write_str("pivot_root into the new root"),
            Step::EnterRoot { rootfs: true } => f.write_str("chroot into the new root (rootfs)"),
            Step::InnerNamespaces { .. } => {
                f.write_str("enter the inner namespaces (locking the mounts)")
            }
            Step::SetIds { uid, gid } => write!(f, "set uid {uid} and gid {gid}"),
            Step::DropCapabilities { keep } => match keep {
                0 => f.write_str("drop every capability"),
                keep => write!(f, "drop capabilities but {}", capabilities::describe(*keep)),
            },
            Step::Chdir { dir } => write!(f, "chdir {dir:?}"),
            Step::StartCommand => f.write_str("start the command"),
            Step::JoinCommandNamespaces { .. } => f.write_str("join the command's namespaces"),
            Step::ReleaseCommand => f.write_str("release the command"),
            Step::CreateNamespaces { .. } => f.write_str("create the namespaces"),
            Step::NamespacesReady => f.write_str("report the namespaces made"),
            Step::WaitForRoot => f.write_str("wait for the new root"),
            Step::NewSession => f.write_str("start a new session"),
            Step::NoNewPrivs => f.write_str("set no_new_privs"),
            Step::ResetSignals => f.write_str("reset signals"),
            Step::CloseOnExec => f.write_str("mark descriptors close-on-exec"),
            Step::SetRlimit(rlimit) => rlimit.fmt(f),
            Step::TraceSyscalls { .. } => f.write_str("load the tracing seccomp filter"),
            Step::Landlock(step) => step.fmt(f),
            Step::LoadSeccomp { program } => {
                write!(
                    f,
                    "load the seccomp filter ({} instructions)",
                    program.len()
                )
            }
            Step::Exec(exec) => write!(f, "execve {:?}", exec.program),
        }
    }
}

impl Plan {
    /// Turns a policy and a command into a plan; logs what it decides when verbose.
    ///
    /// `user_namespace` is false only for root where the kernel refuses user namespaces:
    /// the sandbox then has none, and the command runs with the chosen ids for real, with no
    /// capabilities: asking to keep any is an error, as they would be the host's.
    pub(crate) fn build(
        policy: &SandboxPolicy,
        command_line: &Command,
        streams: [StreamSource; 3],
        user_namespace: bool,
    ) -> Result<Plan, Error> {
        limits::check(&policy.limits)?;
        let mut others = libc::CLONE_NEWCGROUP;
        for (shared, flag) in [
            (policy.share_net, libc::CLONE_NEWNET),
            (policy.share_uts, libc::CLONE_NEWUTS),
            (policy.share_ipc, libc::CLONE_NEWIPC),
        ] {
            if !shared {
                others |= flag;
            }
        }
        let layout = if !user_namespace {
            Layout::NoUserNamespace
        } else if policy.capabilities != 0 {
            Layout::Inner
        } else {
            Layout::Parallel
        };
        let namespaces = match layout {
            Layout::NoUserNamespace => libc::CLONE_NEWNS | libc::CLONE_NEWPID | others,
            Layout::Parallel | Layout::Inner => {
                libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID
            }
        } as u64;

        // The streams first: the pipes' sandbox ends sit above 2 until they are copied onto
        // 0, 1 and 2, and closing the inherited descriptors then closes the originals too,
        // so init never holds a second copy that would keep a pipe open.
        let mut init: Vec<Step> = (0..)
            .zip(streams)
            .filter(|(_, source)| *source != StreamSource::Inherit)
            .map(|(fd, to)| Step::RedirectStream { fd, to })
            .collect();
        init.extend([
            Step::CloseInheritedFds,
            Step::DieWithParent,
            Step::BlockSignals,
        ]);
        // In the parallel layout the command's process starts now (as PID 2), to make the
        // network namespace (the slowest of all) while init builds the tree; otherwise it
        // starts once init is in its final namespaces, and begins in them.
        if layout == Layout::Parallel {
            init.push(Step::StartCommand);
        }
        // The user namespace's maps come first (the tree's files need ids that map); they
        // are logged after the mounts, in the order the seed's log shows.
        let (uid, gid) = (sys::getuid(), sys::getgid());
        let (inside_uid, inside_gid) = (policy.uid.unwrap_or(uid), policy.gid.unwrap_or(gid));
        if user_namespace {
            init.extend(id_maps(uid, inside_uid, gid, inside_gid));
        }
        let mut command = Vec::new();
        init.push(Step::IsolateMounts);
        init.push(Step::MountRoot);
        let rootfs = host_root_is_rootfs();
        if rootfs {
            info!(
                LOG,
                "Root: the host's root is an initramfs's rootfs, which pivot_root cannot leave; \
                 falling back to chroot into the new root (the old one stays mounted beneath it)"
            );
        }
        info!(
            LOG,
            "Mount point: host_path: \"\", container_path: \"/\", fstype: \"tmpfs\""
        );
        for entry in &policy.filesystem {
            filesystem_steps(entry, &mut init)?;
        }
        if user_namespace {
            info!(LOG, "UID map: host_id: {uid}, container_id: {inside_uid}");
            info!(LOG, "GID map: host_id: {gid}, container_id: {inside_gid}");
        } else {
            info!(
                LOG,
                "User namespace: none; uid {inside_uid} and gid {inside_gid} are the host's"
            );
        }
        // Who makes the namespaces other than the user, mount and pid ones, and who brings
        // up lo and sets the hostname in them.
        let mut network_and_name = Vec::new();
        if !policy.share_net {
            network_and_name.push(Step::LoopbackUp);
        }
        if !policy.share_uts {
            network_and_name.push(Step::SetHostname {
                name: cstring(policy.hostname(), "hostname")?,
            });
        }
        match layout {
            // The command keeps no capability: one user namespace is enough, the command
            // cannot touch the tree without one (and a namespace it makes itself gets a
            // locked copy). The command's process makes the other namespaces while init
            // builds the tree, and init joins them while it brings up lo and so on.
            Layout::Parallel => {
                command.push(Step::CreateNamespaces { flags: others });
                command.push(Step::NamespacesReady);
                command.append(&mut network_and_name);
                init.push(Step::EnterRoot { rootfs });
                init.push(Step::JoinCommandNamespaces { flags: others });
            }
            // Capabilities are kept: once the tree is built, init moves into an inner user
            // namespace with a copy of the mount namespace (in which the kernel locks every
            // mount: flags fixed, nothing unmountable) and the other namespaces, so that
            // what the command keeps acts on its network, hostname, IPC and mounts but
            // cannot undo the tree.
            Layout::Inner => {
                // The inner namespaces' maps are written through this process's /proc
                // directory, opened before the root changes.
                init.push(Step::OpenProcSelf);
                init.push(Step::EnterRoot { rootfs });
                init.push(Step::InnerNamespaces {
                    flags: libc::CLONE_NEWUSER | libc::CLONE_NEWNS | others,
                    uid_map: format!("{inside_uid} {inside_uid} 1\n").into_bytes(),
                    gid_map: format!("{inside_gid} {inside_gid} 1\n").into_bytes(),
                });
                init.append(&mut network_and_name);
            }
            // Without a user namespace there is nothing to lock the mounts with (init is
            // root and the command has no capabilities): every namespace came with clone3.
            Layout::NoUserNamespace => {
                init.push(Step::EnterRoot { rootfs });
                init.append(&mut network_and_name);
            }
        }
        // Only now: a non-dumpable process's /proc files belong to the host's root, and init
        // had its own id maps to write until here. The command's process runs none of the
        // command's code yet.
        init.push(Step::NotDumpable);
        if layout != Layout::Parallel {
            init.push(Step::StartCommand);
        }
        init.push(Step::ReleaseCommand);

        if let Some(limits) = limits::describe(&policy.limits) {
            info!(LOG, "Rlimit: {limits}");
        }
        let filter = seccomp_step(policy)?;
        let exec = exec(policy, command_line)?;
        if policy.capabilities != 0 && inside_uid != 0 {
            return Err(Error::InvalidInput(
                "capabilities can only be kept for a command that runs as uid 0 inside (--uid 0)"
                    .into(),
            ));
        }
        if policy.capabilities != 0 && !user_namespace {
            // Without a user namespace a capability is the host's: it would undo the mounts
            // (remount a read-only bind writable) and more. Refused rather than confined.
            return Err(Error::Setup(format!(
                "keep capabilities ({}): the kernel refused a user namespace, so they would \
                 be the host's; run without --cap-add",
                capabilities::describe(policy.capabilities)
            )));
        }
        if policy.capabilities != 0 {
            info!(
                LOG,
                "Capabilities: {}",
                capabilities::describe(policy.capabilities)
            );
        }
        // What needs neither the tree nor init comes before waiting for them. Emptying the
        // capability sets changes what execve will give, not what this process holds: the
        // chdir still has its capabilities.
        command.extend([
            Step::NewSession,
            Step::NoNewPrivs,
            Step::ResetSignals,
            Step::DropCapabilities {
                keep: policy.capabilities,
            },
            Step::WaitForRoot,
            Step::Chdir {
                dir: cstring(policy.cwd().as_os_str(), "cwd")?,
            },
        ]);
        if !user_namespace {
            command.push(Step::SetIds {
                uid: inside_uid,
                gid: inside_gid,
            });
        }
        command.push(Step::CloseOnExec);
        // In the command's own process, so that init and the fork of the command are not
        // counted against the limits (nproc above all), and last, so that no setup step
        // runs under them.
        command.extend(limits::rlimit_steps(&policy.limits));
        // After no_new_privs, which landlock_restrict_self needs, and before the filter.
        if !policy.landlock.is_empty() {
            let (steps, description) = landlock::prepare(&policy.landlock)?;
            info!(LOG, "Landlock: {description}");
            command.extend(steps.into_iter().map(Step::Landlock));
        }
        // The filter comes last, so that an allowlist needs only what the command itself uses
        // (and execve).
        let trace = matches!(filter, Some(Step::TraceSyscalls { .. }));
        command.extend(filter);
        command.push(Step::Exec(exec));
        Ok(Plan {
            namespaces,
            init,
            command,
            streams,
            limits: policy.limits.clone(),
            trace,
            cgroup_parent: policy.cgroup_parent.clone(),
        })
    }

    /// The step with this index, counting the init's steps first, then the command's.
    pub(crate) fn step(&self, index: usize) -> Option<&Step> {
        self.init.iter().chain(self.command.iter()).nth(index)
    }
}

/// Who makes which namespaces (see `Plan::build`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One user namespace; the command's process makes the others while init builds the
    /// tree.
    Parallel,
    /// An inner user namespace, for a command that keeps capabilities.
    Inner,
    /// No user namespace (root, where the kernel refuses them).
    NoUserNamespace,
}

/// Whether the host's root is `rootfs`, the initial ramfs of an initramfs.
fn host_root_is_rootfs() -> bool {
    // rootfs is a ramfs or a tmpfs: any other root needs no look at the mount table (which
    // costs more than the rest of the plan where there are many mounts).
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    if !matches!(sys::filesystem_type(c"/"), Ok(RAMFS_MAGIC | TMPFS_MAGIC)) {
        return false;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().any(|line| {
        let mut halves = line.split(" - ");
        let fields: Vec<&str> = halves.next().unwrap_or("").split_whitespace().collect();
        let fstype = halves.next().and_then(|fs| fs.split_whitespace().next());
        fields.get(4) == Some(&"/") && fstype == Some("rootfs")
    })
}

/// The step that installs the command's seccomp filter, if it gets one.
fn seccomp_step(policy: &SandboxPolicy) -> Result<Option<Step>, Error> {
    if policy.seccomp.base == Base::Trace {
        let arch = Arch::native()
            .ok_or_else(|| Error::Setup("tracing is not supported on this architecture".into()))?;
        let sendmsg = arch
            .number("sendmsg")
            .ok_or_else(|| Error::Setup("tracing is not supported on this architecture".into()))?;
        info!(LOG, "Seccomp: trace (every system call goes to hakoniwa)");
        return Ok(Some(Step::TraceSyscalls { arch, sendmsg }));
    }
    let filter = policy.seccomp.build()?;
    info!(
        LOG,
        "Seccomp: {}",
        filter
            .as_ref()
            .map_or("unconfined", |f| f.description.as_str())
    );
    Ok(filter.map(|f| Step::LoadSeccomp { program: f.program }))
}

fn cstring(value: impl AsRef<OsStr>, what: &str) -> Result<CString, Error> {
    CString::new(value.as_ref().as_bytes()).map_err(|_| {
        Error::InvalidInput(format!("{what} {:?} contains a NUL byte", value.as_ref()))
    })
}

/// The user namespace's id maps: the chosen ids inside map to the caller's outside. The
/// sandbox writes its own maps; the kernel allows that single-id mapping to an unprivileged
/// writer once setgroups is denied.
fn id_maps(uid: u32, inside_uid: u32, gid: u32, inside_gid: u32) -> [Step; 3] {
    [
        Step::WriteProcFile {
            path: c"/proc/self/setgroups",
            data: b"deny".to_vec(),
        },
        Step::WriteProcFile {
            path: c"/proc/self/uid_map",
            data: format!("{inside_uid} {uid} 1\n").into_bytes(),
        },
        Step::WriteProcFile {
            path: c"/proc/self/gid_map",
            data: format!("{inside_gid} {gid} 1\n").into_bytes(),
        },
    ]
}

/// The steps that build one entry of the policy's file tree.
fn filesystem_steps(entry: &FsEntry, steps: &mut Vec<Step>) -> Result<(), Error> {
    match entry {
        FsEntry::Mount(mount) => match mount.kind {
            MountKind::Bind => steps.extend(bind_step(mount)?),
            MountKind::Proc => {
                let attrs =
                    libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
                steps.push(fs_step(c"proc", Vec::new(), &mount.target, attrs)?);
            }
            MountKind::Tmpfs => {
                let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
                let options = mount
                    .options
                    .iter()
                    .map(|(k, v)| Ok((cstring(k, "tmpfs option")?, cstring(v, "tmpfs option")?)))
                    .collect::<Result<Vec<_>, Error>>()?;
                steps.push(fs_step(c"tmpfs", options, &mount.target, attrs)?);
            }
            MountKind::Devfs => devfs_steps(&mount.target, steps)?,
        },
        FsEntry::Dir { target, mode } => {
            steps.push(Step::MakeDir {
                target: Target::new(target, NodeKind::Dir)?,
                mode: *mode,
            });
        }
        FsEntry::File { target, contents } => {
            let target = Target::new(target, NodeKind::File)?;
            steps.push(Step::WriteFile {
                target,
                contents: contents.clone(),
            });
        }
        FsEntry::Symlink { original, link } => {
            let target = Target::new(link, NodeKind::File)?;
            steps.push(Step::Symlink {
                original: cstring(original, "symlink")?,
                target,
            });
        }
    }
    Ok(())
}

/// A new filesystem of `fstype` with fsconfig `options` at `target`.
fn fs_step(
    fstype: &'static CStr,
    options: Vec<(CString, CString)>,
    target: &Path,
    attrs: u64,
) -> Result<Step, Error> {
    info!(
        LOG,
        "Mount point: host_path: \"\", container_path: {target:?}, fstype: {:?}",
        fstype.to_string_lossy()
    );
    let target = Target::new(target, NodeKind::Dir)?;
    Ok(Step::MountFs {
        fstype,
        options,
        target,
        attrs,
    })
}

/// Fixed fsconfig options.
fn fixed(options: &[(&CStr, &CStr)]) -> Vec<(CString, CString)> {
    options
        .iter()
        .map(|(k, v)| (CString::from(*k), CString::from(*v)))
        .collect()
}

/// Devices of the host that a devfs binds: harmless ones only.
const DEVFS_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// A minimal /dev at `dev`: a tmpfs, the harmless devices of the host, a private devpts
/// with `ptmx` pointing into it, a tmpfs at `shm`, and the usual symlinks into /proc.
fn devfs_steps(dev: &Path, steps: &mut Vec<Step>) -> Result<(), Error> {
    let no_exec = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC;
    let mode = fixed(&[(c"mode", c"0755")]);
    steps.push(fs_step(
        c"tmpfs",
        mode,
        dev,
        no_exec | libc::MOUNT_ATTR_NODEV,
    )?);
    let mut devices: Vec<(PathBuf, &str)> = DEVFS_DEVICES
        .iter()
        .map(|name| (Path::new("/dev").join(name), *name))
        .collect();
    // The caller's terminal, if it has one, as the console.
    if let Ok(tty) = std::fs::read_link("/proc/self/fd/0")
        && tty.starts_with("/dev/pts/")
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        devices.push((tty, "console"));
    }
    for (device, name) in devices {
        let bind = Mount {
            source: device,
            target: dev.join(name),
            kind: MountKind::Bind,
            rw: true,
            required: false,
            options: Vec::new(),
        };
        steps.extend(bind_step(&bind)?);
    }
    let pts = fixed(&[(c"ptmxmode", c"0666"), (c"mode", c"0620")]);
    steps.push(fs_step(c"devpts", pts, &dev.join("pts"), no_exec)?);
    let shm_attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    let shm_mode = fixed(&[(c"mode", c"1777")]);
    steps.push(fs_step(c"tmpfs", shm_mode, &dev.join("shm"), shm_attrs)?);
    let links = [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ];
    for (name, original) in links {
        let target = Target::new(&dev.join(name), NodeKind::File)?;
        steps.push(Step::Symlink {
            original: cstring(original, "symlink")?,
            target,
        });
    }
    Ok(())
}

fn bind_step(mount: &Mount) -> Result<Option<Step>, Error> {
    let source = match std::fs::canonicalize(&mount.source) {
        Ok(source) => source,
        Err(e) if !mount.required && e.kind() == std::io::ErrorKind::NotFound => {
            info!(
                LOG,
                "Mount point skipped: host_path: {:?} does not exist, container_path: {:?}",
                mount.source,
                mount.target
            );
            return Ok(None);
        }
        Err(e) => return Err(Error::path("bind source", &mount.source, e)),
    };
    let meta =
        std::fs::metadata(&source).map_err(|e| Error::path("bind source", &mount.source, e))?;
    let kind = if meta.is_dir() {
        NodeKind::Dir
    } else {
        NodeKind::File
    };
    let mut attrs = libc::MOUNT_ATTR_NOSUID;
    if !mount.rw {
        attrs |= libc::MOUNT_ATTR_RDONLY;
    }
    // A device node that is bound on purpose must stay usable; everything else is nodev.
    let file_type = meta.file_type();
    if !(file_type.is_char_device() || file_type.is_block_device()) {
        attrs |= libc::MOUNT_ATTR_NODEV;
    }
    info!(
        LOG,
        "Mount point: host_path: {:?}, container_path: {:?}, fstype: \"\", rw: {}",
        source,
        mount.target,
        mount.rw
    );
    Ok(Some(Step::Bind {
        source: cstring(&source, "bind source")?,
        source_display: source.to_string_lossy().into_owned(),
        target: Target::new(&mount.target, kind)?,
        attrs,
    }))
}

/// Why `path` cannot be a path created inside the sandbox, if it cannot.
pub(crate) fn check_target(path: &Path) -> Result<(), &'static str> {
    if !path.is_absolute() {
        return Err("is not an absolute path");
    }
    let mut names = 0;
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(_) => names += 1,
            Component::ParentDir => return Err("must not contain \"..\""),
            Component::Prefix(_) => return Err("is not a Unix path"),
        }
    }
    if names == 0 {
        return Err("is the sandbox's root");
    }
    Ok(())
}

impl Target {
    /// Splits an absolute sandbox path into components; refuses `..` and the root itself.
    pub(crate) fn new(path: &Path, kind: NodeKind) -> Result<Target, Error> {
        let display = path.to_string_lossy().into_owned();
        check_target(path)
            .map_err(|why| Error::InvalidInput(format!("mount target {display:?} {why}")))?;
        let mut names = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(cstring(name, "path")),
                _ => None,
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = names
            .pop()
            .ok_or_else(|| Error::InvalidInput(format!("{display:?} is empty")))?;
        Ok(Target {
            display,
            parents: names,
            leaf,
            kind,
        })
    }
}

/// The command's execve step: argv, environment and the `PATH` candidates.
fn exec(policy: &SandboxPolicy, command: &Command) -> Result<Exec, Error> {
    let program = command.program.to_string_lossy().into_owned();
    if command.program.is_empty() {
        return Err(Error::InvalidInput("the command is empty".into()));
    }
    let argv: Vec<CString> = command
        .argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<_, _>>()?;
    let mut envp = Vec::with_capacity(policy.env.len());
    for (name, value) in &policy.env {
        // An empty value (such as one copied from an unset host variable) is left out.
        if value.is_empty() {
            continue;
        }
        let mut pair = name.clone().into_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        envp.push(cstring(OsString::from_vec(pair), "environment variable")?);
    }
    let candidates = if command.program.as_bytes().contains(&b'/') {
        vec![cstring(&command.program, "command")?]
    } else {
        let path = policy.env_var("PATH").filter(|p| !p.is_empty());
        let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
        path.as_bytes()
            .split(|b| *b == b':')
            .map(|dir| {
                // An empty element means the current directory, as for execvp.
                let mut candidate = dir.to_vec();
                if !candidate.is_empty() && !candidate.ends_with(b"/") {
                    candidate.push(b'/');
                }
                candidate.extend_from_slice(command.program.as_bytes());
                cstring(OsString::from_vec(candidate), "command")
            })
            .collect::<Result<_, _>>()?
    };
    let shown: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    info!(LOG, "Execve: {program} {shown:?}");
    Ok(Exec {
        program,
        candidates,
        argv: CStringArray::new(argv),
        envp: CStringArray::new(envp),
    })
}

/// The absolute form of a host path, with `.` and `..` resolved lexically (no symlinks).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_components_and_refuses_escapes() {
        let t = Target::new(Path::new("/usr//lib/./x86_64"), NodeKind::Dir).unwrap();
        let parents: Vec<&CStr> = t.parents.iter().map(|c| c.as_c_str()).collect();
        assert_eq!(parents, [c"usr", c"lib"]);
        assert_eq!(t.leaf.as_c_str(), c"x86_64");
        for bad in ["relative", "/a/../b", "/", "/."] {
            assert!(Target::new(Path::new(bad), NodeKind::Dir).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_resolves_dots_lexically() {
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(absolute(Path::new("/../..")), PathBuf::from("/"));
    }
}
