//! The sandbox's side of `clone3`: walks the plan's steps with raw system calls.
//!
//! Everything here runs in a copy of a possibly multi-threaded process, so it allocates
//! nothing, takes no lock and never panics. The first failure is written to the report pipe
//! as `(step, operation, errno)` and the process exits; the parent turns that into a message.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::capabilities;
use super::files;
use super::init;
use super::landlock;
use super::mounts;
use super::plan::{Exec, Plan, Step, StreamSource};
use crate::seccomp::profile;
use crate::sys::{self, Errno};

/// Exit status of a sandbox process whose setup failed.
pub(crate) const SETUP_FAILED: i32 = 125;
/// Exit statuses when the command cannot be executed, as a shell gives them.
pub(crate) const NOT_FOUND: i32 = 127;
pub(crate) const NOT_EXECUTABLE: i32 = 126;

/// The part of a step that failed, when a step makes more than one system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Op {
    Whole = 0,
    Open,
    Write,
    Fsopen,
    Fsconfig,
    Fsmount,
    OpenSource,
    CloneTree,
    SetAttributes,
    MakeTarget,
    Attach,
    EnterRoot,
    ParentGone,
}

impl Op {
    pub(crate) fn from_u32(value: u32) -> Op {
        const ALL: [Op; 13] = [
            Op::Whole,
            Op::Open,
            Op::Write,
            Op::Fsopen,
            Op::Fsconfig,
            Op::Fsmount,
            Op::OpenSource,
            Op::CloneTree,
            Op::SetAttributes,
            Op::MakeTarget,
            Op::Attach,
            Op::EnterRoot,
            Op::ParentGone,
        ];
        ALL.get(value as usize).copied().unwrap_or(Op::Whole)
    }

    /// Words for an error message; empty for `Whole`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Op::Whole => "",
            Op::Open => "open",
            Op::Write => "write",
            Op::Fsopen => "fsopen",
            Op::Fsconfig => "fsconfig",
            Op::Fsmount => "fsmount",
            Op::OpenSource => "open source",
            Op::CloneTree => "clone mount tree",
            Op::SetAttributes => "set mount attributes",
            Op::MakeTarget => "create mount point",
            Op::Attach => "attach mount",
            Op::EnterRoot => "pivot_root",
            Op::ParentGone => "hakoniwa exited",
        }
    }
}

/// A failed system call: which part of the step, and the kernel's answer.
pub(crate) type Failure = (Op, Errno);

/// Tags `errno` with the operation it came from.
pub(crate) fn at(op: Op) -> impl Fn(Errno) -> Failure + Copy {
    move |errno| (op, errno)
}

/// What a sandbox process writes to the report pipe: fixed 16-byte records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// Step `step` failed in operation `op` with `errno`.
    Failed { step: u32, op: Op, errno: i32 },
    /// The command ended with this wait status (init's last word).
    CommandEnded { wait_status: i32 },
}

impl Record {
    pub(crate) const SIZE: usize = 16;

    pub(crate) fn encode(self) -> [u8; Record::SIZE] {
        let (kind, a, b, c) = match self {
            Record::Failed { step, op, errno } => (1u32, step, op as u32, errno),
            Record::CommandEnded { wait_status } => (2, 0, 0, wait_status),
        };
        let mut out = [0u8; Record::SIZE];
        for (slot, bytes) in out.chunks_exact_mut(4).zip([
            kind.to_ne_bytes(),
            a.to_ne_bytes(),
            b.to_ne_bytes(),
            c.to_ne_bytes(),
        ]) {
            slot.copy_from_slice(&bytes);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Record> {
        let word = |i: usize| -> Option<[u8; 4]> { bytes.get(i * 4..i * 4 + 4)?.try_into().ok() };
        let (kind, a, b, c) = (
            u32::from_ne_bytes(word(0)?),
            u32::from_ne_bytes(word(1)?),
            u32::from_ne_bytes(word(2)?),
            i32::from_ne_bytes(word(3)?),
        );
        match kind {
            1 => Some(Record::Failed {
                step: a,
                op: Op::from_u32(b),
                errno: c,
            }),
            2 => Some(Record::CommandEnded { wait_status: c }),
            _ => None,
        }
    }

    pub(crate) fn send(self, report: RawFd) {
        // Nothing can be done if the parent stopped listening.
        let _ = sys::write_all(report, &self.encode());
    }
}

/// The sandbox's ends of what connects it to the supervisor, made before clone3.
#[derive(Clone, Copy)]
pub(crate) struct Channels {
    /// Write end of the report pipe.
    pub(crate) report: RawFd,
    /// Read end of a pipe whose write end only the parent holds: it hangs up when the
    /// parent dies.
    pub(crate) alive: RawFd,
    /// The sandbox's ends of the supervisor's pipes for stdin, stdout and stderr (-1 where
    /// the stream is not a pipe), until they are moved onto 0, 1 and 2.
    pub(crate) streams: [RawFd; 3],
    /// The socket the command hands its seccomp listener over on when traced, or -1.
    pub(crate) trace: RawFd,
}

/// The pipes init and the command's process hand over on while they prepare side by side:
/// `ready` carries the command's word that its namespaces are made (`NamespacesReady`),
/// `go` init's that the tree is finished (`ReleaseCommand`). Each process holds the ends it
/// uses: init reads `ready` and writes `go`, the command's process the other way round.
#[derive(Clone, Copy)]
pub(crate) struct Handshake {
    pub(crate) ready: RawFd,
    pub(crate) go: RawFd,
}

impl Handshake {
    const NONE: Handshake = Handshake { ready: -1, go: -1 };
}

/// What the command's process starts with.
struct CommandStart<'a> {
    plan: &'a Plan,
    channels: Channels,
    handshake: Handshake,
}

/// State carried from step to step inside one sandbox process.
pub(crate) struct Context {
    pub(crate) channels: Channels,
    /// The new root while the tree is built, before pivot_root.
    pub(crate) root: Option<OwnedFd>,
    /// This process's /proc directory, kept across pivot_root for InnerNamespaces.
    pub(crate) proc_self: Option<OwnedFd>,
    /// The caller's umask, restored once the tree is built.
    pub(crate) umask: u32,
    /// The command's pid, once started.
    pub(crate) command: libc::pid_t,
    /// Init: a pidfd for the command's process, until it has joined its namespaces.
    pub(crate) command_pidfd: Option<OwnedFd>,
    /// This process's ends of the handshake pipes (-1 once used).
    pub(crate) handshake: Handshake,
    /// The Landlock ruleset while its rules are added, in the command's process.
    pub(crate) landlock: Option<OwnedFd>,
}

/// The entry point of the sandbox's init (PID 1 of the new pid namespace).
pub(crate) fn init_main(plan: &Plan, channels: Channels) -> ! {
    let mut cx = Context::new(channels, Handshake::NONE);
    let report = channels.report;
    for (index, step) in plan.init.iter().enumerate() {
        if let Err((op, errno)) = run(step, plan, &mut cx) {
            Record::Failed {
                step: index as u32,
                op,
                errno: errno.0,
            }
            .send(report);
            sys::exit(SETUP_FAILED);
        }
    }
    init::reap_until_command_ends(cx.command, report)
}

impl Context {
    fn new(channels: Channels, handshake: Handshake) -> Context {
        Context {
            channels,
            root: None,
            proc_self: None,
            umask: 0,
            command: 0,
            command_pidfd: None,
            handshake,
            landlock: None,
        }
    }
}

/// The entry point of the command's process, started by init.
fn command_main(start: CommandStart<'_>) -> ! {
    let plan = start.plan;
    let mut cx = Context::new(start.channels, start.handshake);
    let cx = &mut cx;
    let base = plan.init.len();
    for (index, step) in plan.command.iter().enumerate() {
        if let Err((op, errno)) = run(step, plan, cx) {
            Record::Failed {
                step: (base + index) as u32,
                op,
                errno: errno.0,
            }
            .send(cx.channels.report);
            let code = match step {
                Step::Exec(_) if matches!(errno.0, libc::ENOENT | libc::ENOTDIR) => NOT_FOUND,
                Step::Exec(_) => NOT_EXECUTABLE,
                _ => SETUP_FAILED,
            };
            sys::exit(code);
        }
    }
    sys::exit(SETUP_FAILED)
}

fn run(step: &Step, plan: &Plan, cx: &mut Context) -> Result<(), Failure> {
    let whole = at(Op::Whole);
    match step {
        Step::CloseInheritedFds => {
            let Channels {
                report,
                alive,
                trace,
                ..
            } = cx.channels;
            sys::close_all_but([report, alive, trace]).map_err(whole)
        }
        Step::DieWithParent => {
            sys::set_parent_death_signal(libc::SIGKILL).map_err(whole)?;
            // The parent may have died before the request took effect.
            let alive = cx.channels.alive;
            if sys::pipe_peer_closed(alive).map_err(whole)? {
                return Err((Op::ParentGone, Errno(libc::ESRCH)));
            }
            sys::close_range(alive as u32, alive as u32).map_err(whole)
        }
        Step::BlockSignals => sys::set_sigmask(init::SIGNALS).map(drop).map_err(whole),
        Step::RedirectStream { fd, to } => match to {
            StreamSource::Inherit => Ok(()),
            StreamSource::Null => {
                let null = sys::open(c"/dev/null", libc::O_RDWR).map_err(at(Op::Open))?;
                sys::dup2(null.as_raw_fd(), *fd).map_err(whole)
            }
            StreamSource::Pipe => {
                let pipe = usize::try_from(*fd)
                    .ok()
                    .and_then(|i| cx.channels.streams.get(i).copied())
                    .filter(|pipe| *pipe >= 0)
                    .ok_or((Op::Whole, Errno(libc::EBADF)))?;
                sys::dup2(pipe, *fd).map_err(whole)
            }
        },
        Step::WriteProcFile { path, data } => {
            let file = sys::open(path, libc::O_WRONLY).map_err(at(Op::Open))?;
            sys::write_all(file.as_raw_fd(), data).map_err(at(Op::Write))
        }
        Step::SetHostname { name } => sys::sethostname(name.as_bytes()).map_err(whole),
        Step::IsolateMounts => sys::make_mounts_slave().map_err(whole),
        Step::NotDumpable => sys::set_not_dumpable().map_err(whole),
        Step::MountRoot => {
            // Mount points are created with exactly the modes asked for.
            cx.umask = sys::umask(0);
            cx.root = Some(mounts::mount_root()?);
            Ok(())
        }
        Step::Bind {
            source,
            target,
            attrs,
            ..
        } => mounts::bind(root(cx)?, source, target, *attrs),
        Step::MountFs {
            fstype,
            options,
            target,
            attrs,
        } => mounts::mount_fs(root(cx)?, fstype, options, target, *attrs),
        Step::MakeDir { target, mode } => files::make_dir(root(cx)?, target, *mode).map_err(whole),
        Step::WriteFile { target, contents } => {
            files::write_file(root(cx)?, target, contents).map_err(whole)
        }
        Step::Symlink { original, target } => {
            files::make_symlink(root(cx)?, original, target).map_err(whole)
        }
        Step::LoopbackUp => sys::set_interface_up(c"lo").map_err(whole),
        Step::OpenProcSelf => {
            let flags = libc::O_PATH | libc::O_DIRECTORY;
            cx.proc_self = Some(sys::open(c"/proc/self", flags).map_err(at(Op::Open))?);
            Ok(())
        }
        Step::InnerNamespaces {
            flags,
            uid_map,
            gid_map,
        } => {
            let proc_self = cx.proc_self.take().ok_or((Op::Whole, Errno(libc::EBADF)))?;
            sys::unshare(*flags).map_err(whole)?;
            // The maps of the namespace this process is in now, through its /proc
            // directory of before the pivot.
            for (name, data) in [
                (c"setgroups", &b"deny"[..]),
                (c"uid_map", uid_map.as_slice()),
                (c"gid_map", gid_map.as_slice()),
            ] {
                let file = sys::openat(proc_self.as_raw_fd(), name, libc::O_WRONLY, 0)
                    .map_err(at(Op::Open))?;
                sys::write_all(file.as_raw_fd(), data).map_err(at(Op::Write))?;
            }
            Ok(())
        }
        Step::EnterRoot { rootfs } => {
            match sys::pivot_root_to_cwd() {
                Ok(()) => {}
                // The new root is mounted over rootfs already: chrooting into it leaves the
                // old root covered beneath it (and locked, with a user namespace).
                Err(Errno(libc::EINVAL)) if *rootfs => {
                    sys::chroot_to_cwd().map_err(at(Op::EnterRoot))?;
                }
                Err(e) => return Err((Op::EnterRoot, e)),
            }
            cx.root = None;
            sys::umask(cx.umask);
            Ok(())
        }
        Step::Chdir { dir } => sys::chdir(dir).map_err(whole),
        Step::StartCommand => {
            let (ready_r, ready_w) = sys::pipe().map_err(whole)?;
            let (go_r, go_w) = sys::pipe().map_err(whole)?;
            let start = CommandStart {
                plan,
                channels: Channels {
                    alive: -1,
                    streams: [-1; 3],
                    ..cx.channels
                },
                handshake: Handshake {
                    ready: ready_w.as_raw_fd(),
                    go: go_r.as_raw_fd(),
                },
            };
            // A copy of init (as fork makes) that prepares alongside it, sharing its root and
            // working directory (CLONE_FS) until WaitForRoot, so it starts in the new root.
            // Shared memory would save copying init's small page tables, but the two would
            // then share the C library's errno too while both make system calls.
            // SAFETY: the command's process only walks the plan with this module's
            // allocation-free steps and ends in execve or _exit.
            let (pid, pidfd) = unsafe {
                sys::spawn_into(
                    (libc::CLONE_FS | libc::CLONE_PIDFD) as u64,
                    libc::SIGCHLD as u64,
                    None,
                    || command_main(start),
                )
            }
            .map_err(whole)?;
            let pidfd = pidfd.ok_or((Op::Whole, Errno(libc::EBADF)))?;
            // The command's process has its own copies of its ends; init keeps the others.
            drop((ready_w, go_r));
            cx.command = pid;
            cx.command_pidfd = Some(pidfd);
            cx.handshake = Handshake {
                ready: into_raw(ready_r),
                go: into_raw(go_w),
            };
            Ok(())
        }
        Step::JoinCommandNamespaces { flags } => {
            // End of file: the command's process failed (and said why) before it got there.
            if !receive_word(&mut cx.handshake.ready).map_err(whole)? {
                return Err((Op::Whole, Errno(libc::ECHILD)));
            }
            let pidfd = cx
                .command_pidfd
                .take()
                .ok_or((Op::Whole, Errno(libc::EBADF)))?;
            sys::setns(pidfd.as_raw_fd(), *flags).map_err(whole)
        }
        Step::ReleaseCommand => {
            cx.command_pidfd = None;
            send_word(&mut cx.handshake.go).map_err(whole)
        }
        Step::CreateNamespaces { flags } => sys::unshare(*flags).map_err(whole),
        Step::NamespacesReady => send_word(&mut cx.handshake.ready).map_err(whole),
        Step::WaitForRoot => {
            // End of file: init failed (and said why); the sandbox is going away.
            if !receive_word(&mut cx.handshake.go).map_err(whole)? {
                return Err((Op::ParentGone, Errno(libc::ESRCH)));
            }
            // Init's root and working directory are the new root now; from here on they are
            // this process's own.
            sys::unshare(libc::CLONE_FS).map_err(whole)
        }
        Step::NewSession => sys::setsid().map_err(whole),
        Step::NoNewPrivs => sys::set_no_new_privs().map_err(whole),
        Step::SetIds { uid, gid } => sys::set_ids(*uid, *gid).map_err(whole),
        Step::DropCapabilities { keep } => capabilities::drop_all_but(*keep).map_err(whole),
        Step::ResetSignals => {
            sys::reset_signal_actions();
            sys::set_sigmask(0).map(drop).map_err(whole)
        }
        Step::CloseOnExec => sys::cloexec_from(3).map_err(whole),
        Step::SetRlimit(rlimit) => sys::set_rlimit(rlimit.resource, &rlimit.value).map_err(whole),
        Step::Landlock(step) => landlock::apply(step, &mut cx.landlock).map_err(whole),
        Step::LoadSeccomp { program } => sys::load_seccomp_filter(program).map_err(whole),
        Step::TraceSyscalls { arch, sendmsg } => {
            let socket = cx.channels.trace;
            let (program, len) = profile::tracing_filter(*arch, *sendmsg, socket);
            let listener =
                sys::load_seccomp_listener(&program[..len.min(program.len())]).map_err(whole)?;
            // Let through by the filter: the one sendmsg it does not hand to the supervisor.
            sys::send_fd(socket, listener).map_err(at(Op::Write))
        }
        Step::Exec(exec) => Err((Op::Whole, execute(exec))),
    }
}

/// Writes the one byte of a handshake on the end in `slot` and closes it (leaving -1).
fn send_word(slot: &mut RawFd) -> Result<(), Errno> {
    let fd = std::mem::replace(slot, -1);
    let sent = sys::write_all(fd, b"!");
    sys::close_range(fd as u32, fd as u32)?;
    sent
}

/// Reads the one byte of a handshake from the end in `slot` and closes it (leaving -1):
/// false if the other side closed its end without writing it.
fn receive_word(slot: &mut RawFd) -> Result<bool, Errno> {
    let fd = std::mem::replace(slot, -1);
    let received = sys::read(fd, &mut [0u8; 1]);
    sys::close_range(fd as u32, fd as u32)?;
    Ok(received? == 1)
}

/// The number of a descriptor this process keeps open until it exits or execs (close-on-exec).
fn into_raw(fd: OwnedFd) -> RawFd {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

fn root(cx: &Context) -> Result<RawFd, Failure> {
    cx.root
        .as_ref()
        .map(|fd| fd.as_raw_fd())
        .ok_or((Op::Whole, Errno(libc::EBADF)))
}

/// Tries each candidate in turn as execvp does; returns the error to report.
fn execute(exec: &Exec) -> Errno {
    let mut denied = false;
    let mut last = Errno(libc::ENOENT);
    for candidate in &exec.candidates {
        last = sys::execve(candidate, exec.argv.as_ptr(), exec.envp.as_ptr());
        match last.0 {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            _ => return last,
        }
    }
    if denied { Errno(libc::EACCES) } else { last }
}
