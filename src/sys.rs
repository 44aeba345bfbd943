//! Thin wrappers over the system calls hakoniwa makes: the home of `unsafe`.
//!
//! Unless its doc says otherwise, every function here neither allocates nor takes a lock,
//! so the sandbox's processes may call them after `clone3` in a multi-threaded program.

use std::ffi::{CStr, c_char, c_int, c_long, c_uint};
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::seccomp::profile::Instruction;

pub(crate) type Result<T> = std::result::Result<T, Errno>;

/// An error number returned by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's `errno`.
    pub(crate) fn last() -> Errno {
        // SAFETY: __errno_location returns a valid pointer to this thread's errno.
        Errno(unsafe { *libc::__errno_location() })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0 as c_char; 128];
        // SAFETY: buf is writable for its whole length; strerror_r NUL-terminates within it.
        let rc = unsafe { libc::strerror_r(self.0, buf.as_mut_ptr(), buf.len()) };
        if rc != 0 {
            return write!(f, "error {}", self.0);
        }
        // SAFETY: strerror_r succeeded, so buf holds a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
        f.write_str(&text.to_string_lossy())
    }
}

fn check(ret: c_long) -> Result<c_long> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

fn check_int(ret: c_int) -> Result<c_int> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

/// Takes ownership of a descriptor a system call just returned.
fn owned(fd: c_long) -> OwnedFd {
    // SAFETY: callers pass a descriptor the kernel has just created for us and nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

// ---------------------------------------------------------------------------------------------
// Processes

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Starts a child with `clone3(flags)` and runs `child` in it, in the cgroup whose directory
/// `cgroup` is (`CLONE_INTO_CGROUP`) when given; returns the child's pid and, when `flags`
/// holds `CLONE_PIDFD`, a pidfd for it.
///
/// # Safety
/// The child is a copy of this process in which other threads' locks may be held forever:
/// `child` must only call the allocation-free, lock-free functions of this module; the
/// child process exits with the status it returns, if it returns at all.
pub(crate) unsafe fn spawn_into(
    flags: u64,
    exit_signal: u64,
    cgroup: Option<RawFd>,
    child: impl FnOnce() -> i32,
) -> Result<(libc::pid_t, Option<OwnedFd>)> {
    let mut pidfd: c_int = -1;
    /// `CLONE_INTO_CGROUP` (Linux 5.7), which the musl flavour of libc lacks.
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let into_cgroup = if cgroup.is_some() {
        CLONE_INTO_CGROUP
    } else {
        0
    };
    let args = CloneArgs {
        flags: flags | into_cgroup,
        pidfd: &mut pidfd as *mut c_int as u64,
        exit_signal,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; without CLONE_VM the child runs
    // on a private copy of this stack, so returning into this frame twice is sound (as fork).
    let pid = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if pid == 0 {
        exit(child());
    }
    let pidfd = (flags & libc::CLONE_PIDFD as u64 != 0).then(|| owned(pidfd as c_long));
    Ok((pid as libc::pid_t, pidfd))
}

/// Ends the process at once, with no exit handlers and no buffer flushing.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub(crate) fn getgid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// Asks for `signal` when the thread that created this process dies.
pub(crate) fn set_parent_death_signal(signal: c_int) -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    check_int(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

// The kernel's prlimit64 reads a `struct rlimit64` (two u64); libc::rlimit is that layout on
// the 64-bit targets hakoniwa is built for.
const _: () = assert!(std::mem::size_of::<libc::rlimit>() == 16);

/// Sets resource limit `resource` (`RLIMIT_*`) of this process with raw `prlimit64`.
pub(crate) fn set_rlimit(resource: c_int, limit: &libc::rlimit) -> Result<()> {
    // SAFETY: pid 0 is this process; `limit` points to a readable rlimit64 (asserted above);
    // a NULL old-limit pointer asks for nothing back.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            resource,
            limit as *const libc::rlimit,
            std::ptr::null_mut::<libc::rlimit>(),
        )
    })
    .map(drop)
}

/// Sets no_new_privs: execve can never grant privileges again.
pub(crate) fn set_no_new_privs() -> Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    check_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Makes this process non-dumpable: no core dumps, no ptrace, /proc files owned by root.
pub(crate) fn set_not_dumpable() -> Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes integers only.
    check_int(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}

/// Removes capability `cap` from this thread's bounding set.
pub(crate) fn drop_bounding_capability(cap: u32) -> Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes integers only.
    check_int(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// Empties this thread's ambient capability set.
pub(crate) fn clear_ambient_capabilities() -> Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers only.
    check_int(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties this thread's inheritable capability set, keeping the others.
pub(crate) fn clear_inheritable_capabilities() -> Result<()> {
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are the v3 structures capget fills (two data entries).
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    for half in &mut data {
        half.inheritable = 0;
    }
    // SAFETY: as above, read by capset.
    check(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    })
    .map(drop)
}

/// Brings network interface `name` up (`ip link set NAME up`), with the ioctls that need
/// no netlink.
pub(crate) fn set_interface_up(name: &CStr) -> Result<()> {
    // SAFETY: socket takes integers; the descriptor is owned below.
    let socket = check_int(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    let socket = owned(socket as c_long);
    // SAFETY: all-zero is a valid ifreq.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.to_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(Errno(libc::EINVAL));
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as c_char;
    }
    // SAFETY: request is a valid ifreq naming the interface; SIOCGIFFLAGS fills its flags.
    check_int(unsafe {
        libc::ioctl(
            socket.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut request,
        )
    })?;
    // SAFETY: SIOCGIFFLAGS wrote the flags member of the union.
    unsafe {
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads the name and flags.
    check_int(unsafe {
        libc::ioctl(
            socket.as_raw_fd(),
            libc::SIOCSIFFLAGS as libc::Ioctl,
            &mut request,
        )
    })
    .map(drop)
}

/// Becomes `uid` and `gid` (real, effective and saved), with no supplementary groups where
/// the kernel lets them be changed (a user namespace may forbid it: EPERM is then ignored,
/// the groups being the caller's own).
pub(crate) fn set_ids(uid: u32, gid: u32) -> Result<()> {
    // SAFETY: setgroups with a count of 0 reads no list; the others take integers.
    match check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) }) {
        Ok(_) | Err(Errno(libc::EPERM)) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// Moves this process into the namespaces (`CLONE_NEW*` flags) of the process `pidfd`
/// refers to.
pub(crate) fn setns(pidfd: RawFd, flags: c_int) -> Result<()> {
    // SAFETY: setns takes integers only.
    check_int(unsafe { libc::setns(pidfd, flags) }).map(drop)
}

/// Moves this process into new namespaces (`CLONE_NEW*` flags).
pub(crate) fn unshare(flags: c_int) -> Result<()> {
    // SAFETY: unshare takes integers only.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

pub(crate) fn setsid() -> Result<()> {
    // SAFETY: setsid takes no arguments.
    check_int(unsafe { libc::setsid() }).map(drop)
}

pub(crate) fn sethostname(name: &[u8]) -> Result<()> {
    // SAFETY: the pointer and length describe the readable slice `name`.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub(crate) fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Replaces the process image; returns only on failure.
pub(crate) fn execve(path: &CStr, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    // SAFETY: path is NUL-terminated; argv and envp point to NULL-terminated arrays of
    // NUL-terminated strings that the caller keeps alive (see plan::CStringArray).
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
    Errno::last()
}

pub(crate) fn kill(pid: libc::pid_t, signal: c_int) -> Result<()> {
    // SAFETY: kill takes integers only.
    check_int(unsafe { libc::kill(pid, signal) }).map(drop)
}

pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, signal: c_int) -> Result<()> {
    // SAFETY: pidfd is a valid pidfd; a NULL siginfo means "as kill(2) would send it".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Reaps any exited child: `Ok(Some((pid, wait status)))`, or `Ok(None)` when none has
/// exited yet and `block` is false; with `block`, waits for one. `ECHILD` when none is left.
pub(crate) fn reap_any(block: bool) -> Result<Option<(libc::pid_t, c_int)>> {
    let mut status: c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: status is a valid out-pointer; a NULL rusage is allowed.
    let pid = check_int(unsafe {
        libc::wait4(-1, &mut status, flags | libc::__WALL, std::ptr::null_mut())
    })?;
    Ok((pid > 0).then_some((pid, status)))
}

/// How a child ended, with the resources it and its reaped descendants used.
pub(crate) struct Exit {
    /// CLD_EXITED, CLD_KILLED or CLD_DUMPED.
    pub code: c_int,
    /// The exit status or the signal number.
    pub status: c_int,
    pub rusage: libc::rusage,
}

/// Waits for the process behind `pidfd` to end and reaps it (parent side).
pub(crate) fn wait_pidfd(pidfd: &OwnedFd) -> Result<Exit> {
    // SAFETY: all-zero is a valid siginfo_t and rusage.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: info and rusage are valid out-pointers; the raw syscall (unlike the libc
        // wrapper) fills in the rusage of the reaped child and its reaped descendants.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PIDFD,
                pidfd.as_raw_fd(),
                &mut info as *mut libc::siginfo_t,
                libc::WEXITED | libc::__WALL,
                &mut rusage as *mut libc::rusage,
            )
        };
        match check(rc) {
            Ok(_) => break,
            Err(Errno(libc::EINTR)) => continue,
            Err(e) => return Err(e),
        }
    }
    // SAFETY: waitid filled info for a child-state change, where si_status is defined.
    let status = unsafe { info.si_status() };
    Ok(Exit {
        code: info.si_code,
        status,
        rusage,
    })
}

// ---------------------------------------------------------------------------------------------
// Signals, as the kernel's 64-bit masks

/// The kernel's signal set for the given signals.
pub(crate) const fn sigmask(signals: &[c_int]) -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < signals.len() {
        mask |= 1 << (signals[i] - 1);
        i += 1;
    }
    mask
}

/// Sets this thread's blocked signals to `mask`; returns the previous mask.
pub(crate) fn set_sigmask(mask: u64) -> Result<u64> {
    change_sigmask(libc::SIG_SETMASK, mask)
}

/// Adds `mask` to this thread's blocked signals; returns the previous mask.
pub(crate) fn block_signals(mask: u64) -> Result<u64> {
    change_sigmask(libc::SIG_BLOCK, mask)
}

fn change_sigmask(how: c_int, mask: u64) -> Result<u64> {
    let mut old = 0u64;
    // SAFETY: both pointers are valid 8-byte kernel sigsets.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &mask as *const u64,
            &mut old as *mut u64,
            8,
        )
    })?;
    Ok(old)
}

/// Removes `mask` from this thread's blocked signals.
pub(crate) fn unblock_signals(mask: u64) -> Result<()> {
    change_sigmask(libc::SIG_UNBLOCK, mask).map(drop)
}

/// Signals blocked in the calling thread for as long as the value lives. Dropping it
/// unblocks only those that were not blocked before, so guards may end in any order.
pub(crate) struct BlockedSignals {
    added: u64,
    /// A signal mask belongs to a thread: the guard must end on the thread that made it.
    _same_thread: std::marker::PhantomData<*const ()>,
}

impl BlockedSignals {
    pub(crate) fn new(mask: u64) -> Result<BlockedSignals> {
        let old = block_signals(mask)?;
        Ok(BlockedSignals {
            added: mask & !old,
            _same_thread: std::marker::PhantomData,
        })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = unblock_signals(self.added);
    }
}

/// The signals pending for this thread or the process (blocked ones only can be pending).
pub(crate) fn pending_signals() -> Result<u64> {
    let mut set = 0u64;
    // SAFETY: set is a valid 8-byte kernel sigset to write to.
    check(unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set as *mut u64, 8) })?;
    Ok(set)
}

/// Accepts one pending signal of `mask` (which the caller blocks) without waiting;
/// whether there was one.
pub(crate) fn take_pending_signal(mask: u64) -> bool {
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: mask and now are valid; a NULL siginfo is allowed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &mask as *const u64,
            std::ptr::null_mut::<libc::siginfo_t>(),
            &now as *const libc::timespec,
            8,
        )
    };
    rc > 0
}

/// Waits for one of the (blocked) signals in `mask` and returns its number.
pub(crate) fn wait_signal(mask: u64) -> Result<c_int> {
    loop {
        // SAFETY: mask is a valid 8-byte sigset; NULL info and timeout are allowed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &mask as *const u64,
                std::ptr::null_mut::<libc::siginfo_t>(),
                std::ptr::null::<libc::timespec>(),
                8,
            )
        };
        match check(rc) {
            Ok(signal) => return Ok(signal as c_int),
            Err(Errno(libc::EINTR)) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Restores SIGPIPE's default action: the process ends when it writes to a closed pipe.
pub(crate) fn default_sigpipe() {
    // SAFETY: SIG_DFL needs no handler; the previous action is not needed.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Restores the default action of every signal, so nothing the caller ignores (Rust
/// programs ignore SIGPIPE) is inherited by the command across execve.
pub(crate) fn reset_signal_actions() {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: action is a valid kernel sigaction; SIG_DFL needs no restorer. Failures
        // (signals the kernel reserves) are harmless and ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &action as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8,
            )
        };
    }
}

/// A CLOEXEC signalfd for the signals in `mask` (which the caller blocks).
pub(crate) fn signalfd(mask: u64) -> Result<OwnedFd> {
    // SAFETY: mask is a valid 8-byte sigset.
    check(unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &mask as *const u64,
            8,
            libc::SFD_CLOEXEC,
        )
    })
    .map(owned)
}

/// Reads one signal number from a signalfd.
pub(crate) fn read_signalfd(fd: &OwnedFd) -> Result<c_int> {
    // SAFETY: all-zero is a valid signalfd_siginfo.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is writable for `size` bytes.
    let n = check(unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    } as c_long)?;
    if n as usize != size {
        return Err(Errno(libc::EIO));
    }
    Ok(info.ssi_signo as c_int)
}

// ---------------------------------------------------------------------------------------------
// Descriptors and files

/// Moves `fd` to a number of at least 3 (so it can never become a standard stream).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes an integer; the original is closed when `fd` drops.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })
        .map(|new| owned(new as c_long))
}

/// A CLOEXEC pipe (read end, write end), both numbered above the standard streams.
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let (r, w) = (owned(fds[0] as c_long), owned(fds[1] as c_long));
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Makes reads and writes on `fd` return EAGAIN instead of waiting. (Only this open file
/// description: the other end of a pipe keeps blocking.)
pub(crate) fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: F_GETFL and F_SETFL take integers.
    let flags = check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Opens `/dev/null` on whichever of descriptors 0, 1 and 2 is closed, so no descriptor
/// hakoniwa opens later can take a standard stream's number.
pub(crate) fn ensure_std_streams() {
    for fd in 0..3 {
        // SAFETY: F_GETFD takes no pointer.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: the path is NUL-terminated; the lowest free number, `fd`, is used.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// Makes `to` a copy of `from` (without close-on-exec).
pub(crate) fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 takes integers.
    check_int(unsafe { libc::dup2(from, to) }).map(drop)
}

pub(crate) fn open(path: &CStr, flags: c_int) -> Result<OwnedFd> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
        .map(|fd| owned(fd as c_long))
}

pub(crate) fn openat(dir: RawFd, name: &CStr, flags: c_int, mode: u32) -> Result<OwnedFd> {
    // SAFETY: name is NUL-terminated; dir is a descriptor or AT_FDCWD.
    check_int(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })
        .map(|fd| owned(fd as c_long))
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` as an O_PATH descriptor without following any symlink in it, so a path
/// that was resolved once cannot be redirected later: a symlink anywhere in it, the last
/// component included, is ELOOP.
pub(crate) fn open_path_nofollow(path: &CStr) -> Result<OwnedFd> {
    let how = OpenHow {
        // Not O_NOFOLLOW: with it, openat2 returns the symlink itself when the last
        // component is one, and open_tree would clone a tree rooted at that symlink.
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: path is NUL-terminated and how is a valid open_how of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
    .map(owned)
}

pub(crate) fn mkdirat(dir: RawFd, name: &CStr, mode: u32) -> Result<()> {
    // SAFETY: name is NUL-terminated.
    check_int(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub(crate) fn symlinkat(original: &CStr, dir: RawFd, name: &CStr) -> Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check_int(unsafe { libc::symlinkat(original.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// The file type bits (`S_IFMT`) of what `fd` refers to.
pub(crate) fn file_type(fd: RawFd) -> Result<u32> {
    // SAFETY: all-zero is a valid stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer; fstat works on O_PATH descriptors.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT)
}

pub(crate) fn write_all(fd: RawFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        let n = write(fd, data)?;
        data = data.get(n..).unwrap_or(&[]);
    }
    Ok(())
}

/// The magic number of the filesystem `path` is on (`statfs`'s `f_type`).
pub(crate) fn filesystem_type(path: &CStr) -> Result<u64> {
    // SAFETY: all-zero is a valid statfs.
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated; info is a writable statfs.
    check_int(unsafe { libc::statfs(path.as_ptr(), &mut info) })?;
    Ok(info.f_type as u64)
}

/// Writes what the pipe or file takes of `data` at once; returns how much that was.
pub(crate) fn write(fd: RawFd, data: &[u8]) -> Result<usize> {
    loop {
        // SAFETY: data is readable for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match check(n as c_long) {
            Ok(n) => return Ok(n as usize),
            Err(Errno(libc::EINTR)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads up to `buf.len()` bytes; 0 means end of file.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match check(n as c_long) {
            Ok(n) => return Ok(n as usize),
            Err(Errno(libc::EINTR)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Closes every descriptor from `first` to `last` (inclusive).
pub(crate) fn close_range(first: c_uint, last: c_uint) -> Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range takes integers; closing descriptors nobody else uses is the intent.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

/// Closes every descriptor above the standard streams except those in `keep` (-1 entries
/// are ignored). Allocation-free.
pub(crate) fn close_all_but(mut keep: [RawFd; 3]) -> Result<()> {
    keep.sort_unstable();
    let mut next: c_uint = 3;
    for fd in keep {
        let Ok(fd) = c_uint::try_from(fd) else {
            continue;
        };
        if fd >= next {
            close_range(next, fd - 1)?;
            next = fd + 1;
        }
    }
    close_range(next, c_uint::MAX)
}

/// Marks every descriptor from `first` up as close-on-exec.
pub(crate) fn cloexec_from(first: c_uint) -> Result<()> {
    // SAFETY: close_range takes integers.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// Whether the peer of pipe end `fd` (a read end) is gone, without blocking.
pub(crate) fn pipe_peer_closed(fd: RawFd) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd.
    check_int(unsafe { libc::poll(&mut pfd, 1, 0) })?;
    Ok(pfd.revents & libc::POLLHUP != 0)
}

/// Waits until one of `fds` is ready; returns each one's revents in place.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize> {
    // SAFETY: fds is a valid array of pollfd of the given length.
    check_int(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })
        .map(|n| n as usize)
}

pub(crate) fn fchdir(fd: RawFd) -> Result<()> {
    // SAFETY: fchdir takes an integer.
    check_int(unsafe { libc::fchdir(fd) }).map(drop)
}

pub(crate) fn chdir(path: &CStr) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

// ---------------------------------------------------------------------------------------------
// Seccomp

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const Instruction,
}

/// Installs a seccomp filter on this thread (no_new_privs must be set).
pub(crate) fn load_seccomp_filter(program: &[Instruction]) -> Result<()> {
    set_seccomp_filter(program, 0).map(drop)
}

/// Installs a seccomp filter that may answer with SECCOMP_RET_USER_NOTIF and returns the
/// listener on which its notifications arrive (close-on-exec).
pub(crate) fn load_seccomp_listener(program: &[Instruction]) -> Result<RawFd> {
    set_seccomp_filter(program, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER).map(|fd| fd as RawFd)
}

fn set_seccomp_filter(program: &[Instruction], flags: libc::c_ulong) -> Result<libc::c_long> {
    let len = u16::try_from(program.len()).map_err(|_| Errno(libc::EINVAL))?;
    let fprog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: fprog points at `len` instructions laid out as the kernel's sock_filter
    // (Instruction is repr(C) with the same fields), alive for the whole call; with
    // SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a new descriptor.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const SockFprog,
        )
    })
}

/// Receives one seccomp notification: its id and system call number.
pub(crate) fn receive_notification(listener: &OwnedFd) -> Result<(u64, i32)> {
    // SAFETY: the kernel wants a zeroed seccomp_notif, which all-zero bytes are.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: notif is a valid, writable seccomp_notif for SECCOMP_IOCTL_NOTIF_RECV.
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif,
        )
    })?;
    Ok((notif.id, notif.data.nr))
}

/// Lets the notified system call `id` go ahead as if the filter had allowed it.
pub(crate) fn continue_notification(listener: &OwnedFd, id: u64) -> Result<()> {
    let mut response = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: response is a valid seccomp_notif_resp for SECCOMP_IOCTL_NOTIF_SEND.
    check_int(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut response,
        )
    })
    .map(drop)
}

// ---------------------------------------------------------------------------------------------
// Landlock

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The kernel's Landlock ABI version (1 and up), or an error when it has none.
pub(crate) fn landlock_abi() -> Result<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with the VERSION flag the attribute pointer must be NULL and the size 0.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })
    .map(|abi| abi as u32)
}

/// A new Landlock ruleset handling these file system and network rights.
pub(crate) fn landlock_create_ruleset(fs: u64, net: u64) -> Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: net,
    };
    // A kernel without network rules takes the attribute's first field only.
    let size = if net == 0 {
        8
    } else {
        std::mem::size_of::<RulesetAttr>()
    };
    // SAFETY: attr is valid for `size` bytes.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0,
        )
    })
    .map(owned)
}

/// Allows `access` beneath the file or directory `parent`.
pub(crate) fn landlock_add_rule_path(ruleset: &OwnedFd, access: u64, parent: RawFd) -> Result<()> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent,
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr (packed, as the kernel's).
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            1,
            &attr as *const PathBeneathAttr,
            0,
        )
    })
    .map(drop)
}

/// Allows `access` (bind or connect) on TCP `port`.
pub(crate) fn landlock_add_rule_port(ruleset: &OwnedFd, access: u64, port: u64) -> Result<()> {
    let attr = NetPortAttr {
        allowed_access: access,
        port,
    };
    // SAFETY: attr is a valid landlock_net_port_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            2,
            &attr as *const NetPortAttr,
            0,
        )
    })
    .map(drop)
}

/// Restricts this thread (and what it starts) to the ruleset.
pub(crate) fn landlock_restrict_self(ruleset: &OwnedFd) -> Result<()> {
    // SAFETY: landlock_restrict_self takes integers.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) })
        .map(drop)
}

// ---------------------------------------------------------------------------------------------
// Passing descriptors

/// A connected pair of close-on-exec Unix datagram sockets, numbered above the standard
/// streams.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    let (a, b) = (owned(fds[0] as c_long), owned(fds[1] as c_long));
    Ok((above_stdio(a)?, above_stdio(b)?))
}

/// The control message buffer for one descriptor, aligned as cmsghdr wants.
#[repr(C, align(8))]
struct OneFdControl([u8; 24]);

/// A message of one byte with room for one descriptor, over the caller's buffers.
fn one_fd_message(iov: &mut libc::iovec, control: &mut OneFdControl) -> libc::msghdr {
    // SAFETY: all-zero is a valid msghdr; the pointers set below are the caller's buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size (24 bytes for an int on 64-bit Linux).
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as _;
    msg
}

/// Sends descriptor `fd` over Unix socket `socket` (SCM_RIGHTS). Allocation-free.
pub(crate) fn send_fd(socket: RawFd, fd: RawFd) -> Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = OneFdControl([0; 24]);
    let msg = one_fd_message(&mut iov, &mut control);
    // SAFETY: msg has a control buffer of CMSG_SPACE(int) bytes, so CMSG_FIRSTHDR is
    // non-null and CMSG_DATA has room for one int.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<c_int>(), fd);
    }
    // SAFETY: msg and the buffers it points to are alive and initialised.
    check(unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) } as c_long).map(drop)
}

/// Receives a descriptor sent with `send_fd`; `Ok(None)` when the message carried none.
pub(crate) fn recv_fd(socket: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = OneFdControl([0; 24]);
    let mut msg = one_fd_message(&mut iov, &mut control);
    // SAFETY: msg describes writable buffers of the sizes given.
    check(
        unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) } as c_long,
    )?;
    // SAFETY: the kernel filled msg's control buffer; CMSG_FIRSTHDR checks its length.
    let header = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null header lies within the control buffer.
    if header.is_null() || unsafe { (*header).cmsg_type } != libc::SCM_RIGHTS {
        return Ok(None);
    }
    // SAFETY: an SCM_RIGHTS message from send_fd carries one int.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<c_int>()) };
    Ok(Some(owned(fd as c_long)))
}

// ---------------------------------------------------------------------------------------------
// Mounts

/// Makes every mount of this mount namespace a slave, so nothing mounted here propagates
/// back to the host.
pub(crate) fn make_mounts_slave() -> Result<()> {
    // SAFETY: "/" is NUL-terminated; the other pointers may be NULL for a propagation change.
    check_int(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// A new filesystem context (`fsopen`) for `fstype`.
pub(crate) fn fsopen(fstype: &CStr) -> Result<OwnedFd> {
    // SAFETY: fstype is NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
        .map(owned)
}

pub(crate) fn fsconfig_string(fs: &OwnedFd, key: &CStr, value: &CStr) -> Result<()> {
    // SAFETY: key and value are NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// Creates the superblock of a configured context and returns a detached mount of it.
pub(crate) fn fsmount(fs: &OwnedFd, attrs: u64) -> Result<OwnedFd> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no pointers.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<c_char>(),
            std::ptr::null::<c_char>(),
            0,
        )
    })?;
    // SAFETY: fsmount takes integers.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    })
    .map(owned)
}

/// A detached, recursive copy of the mount tree at `source` (an O_PATH descriptor).
pub(crate) fn clone_tree(source: &OwnedFd) -> Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | libc::AT_RECURSIVE as c_uint
        | libc::AT_EMPTY_PATH as c_uint;
    // SAFETY: the empty path is NUL-terminated; AT_EMPTY_PATH makes source the object.
    check(unsafe { libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags) })
        .map(owned)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets mount attributes (`MOUNT_ATTR_*`) on every mount of the tree at `tree`.
pub(crate) fn set_tree_attrs(tree: &OwnedFd, attrs: u64) -> Result<()> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the empty path is NUL-terminated and attr is a valid mount_attr of that size.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches the detached mount `mount` on top of the object `target` refers to.
pub(crate) fn attach(mount: &OwnedFd, target: RawFd) -> Result<()> {
    // SAFETY: both paths are empty NUL-terminated strings naming the descriptors themselves.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            target,
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Attaches the detached mount `mount` on top of `path`.
pub(crate) fn attach_at(mount: &OwnedFd, path: &CStr) -> Result<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Makes the current directory the root of the mount namespace and detaches the old root.
pub(crate) fn pivot_root_to_cwd() -> Result<()> {
    // SAFETY: both arguments are the NUL-terminated path ".".
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    detach_old_root()
}

/// After pivot_root(".", "."): detaches the old root, stacked on ".", with everything
/// mounted under it.
fn detach_old_root() -> Result<()> {
    // SAFETY: "." is NUL-terminated.
    check_int(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// Makes the current directory this process's root (`chroot(".")`) and enters it.
pub(crate) fn chroot_to_cwd() -> Result<()> {
    // SAFETY: "." and "/" are NUL-terminated.
    check_int(unsafe { libc::chroot(c".".as_ptr()) })?;
    chdir(c"/")
}

// ---------------------------------------------------------------------------------------------
// Memory

/// The bytes [`StartupArena`] hands out: in .bss, so only the pages used take memory.
const ARENA_BYTES: usize = 512 * 1024;
/// Larger blocks go to the C library's allocator: the arena is for the many small ones.
const ARENA_LARGEST: usize = 32 * 1024;

#[repr(C, align(4096))]
struct ArenaMemory(std::cell::UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the bytes are only reached through StartupArena, which hands every byte range to
// one caller at a time (an atomic bump pointer).
unsafe impl Sync for ArenaMemory {}

static ARENA_MEMORY: ArenaMemory = ArenaMemory(std::cell::UnsafeCell::new([0; ARENA_BYTES]));

/// The `hakoniwa` binary's global allocator: a bump arena for small blocks, then the C
/// library's allocator once the arena is used up.
///
/// A run makes a few thousand small allocations before the sandbox starts (the policy's
/// TOML tree, the plan) and frees most of them at once; musl's allocator spends as many
/// instructions on that as the parsing itself, and maps and unmaps pages as it goes. The
/// arena frees nothing but the last block (a growing buffer stays in place), which costs
/// at most [`ARENA_BYTES`] of memory for the life of the process.
pub struct StartupArena {
    /// Offset of the first free byte.
    next: std::sync::atomic::AtomicUsize,
}

impl StartupArena {
    /// An arena with nothing handed out.
    pub const fn new() -> StartupArena {
        StartupArena {
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn base() -> usize {
        ARENA_MEMORY.0.get() as usize
    }

    /// The block's offset in the arena, if it is one of the arena's.
    fn offset(ptr: *mut u8) -> Option<usize> {
        (ptr as usize)
            .checked_sub(Self::base())
            .filter(|offset| *offset < ARENA_BYTES)
    }

    /// A block of the arena for `layout`, or None if it is too large or does not fit.
    fn bump(&self, layout: std::alloc::Layout) -> Option<*mut u8> {
        use std::sync::atomic::Ordering::Relaxed;
        if layout.size() > ARENA_LARGEST {
            return None;
        }
        let base = Self::base();
        let mut next = self.next.load(Relaxed);
        loop {
            let start = (base + next).next_multiple_of(layout.align()) - base;
            let end = start + layout.size();
            if end > ARENA_BYTES {
                return None;
            }
            match self.next.compare_exchange_weak(next, end, Relaxed, Relaxed) {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => next = now,
            }
        }
    }

    /// Moves the end of the last block from `old_end` to `new_end` (both offsets), if the
    /// block ending at `old_end` is still the last one.
    fn resize_last(&self, old_end: usize, new_end: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        new_end <= ARENA_BYTES
            && self
                .next
                .compare_exchange(old_end, new_end, Relaxed, Relaxed)
                .is_ok()
    }
}

impl Default for StartupArena {
    fn default() -> StartupArena {
        StartupArena::new()
    }
}

// SAFETY: every block handed out is aligned and sized as its layout asks, and belongs to one
// caller until it is freed: arena blocks are carved once from the bump pointer (only the
// last one is ever given back), the rest come from and go back to the system allocator.
unsafe impl std::alloc::GlobalAlloc for StartupArena {
    // Not inlined (nor are the two below): one copy, instead of one at every allocation.
    #[inline(never)]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout has a non-zero size, as GlobalAlloc requires.
            None => unsafe { std::alloc::System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        match Self::offset(ptr) {
            // The last block's bytes are handed out again; the others stay with it.
            Some(offset) => {
                self.resize_last(offset + layout.size(), offset);
            }
            // SAFETY: not the arena's, so the system allocator's, with this layout.
            None => unsafe { std::alloc::System.dealloc(ptr, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = Self::offset(ptr) else {
            // SAFETY: the system allocator's block, with this layout; as the caller promises.
            return unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        };
        let old_end = offset + layout.size();
        if new_size <= layout.size()
            || (new_size <= ARENA_LARGEST && self.resize_last(old_end, offset + new_size))
        {
            return ptr;
        }
        // SAFETY: the caller promises new_size, rounded up to the alignment, fits an isize.
        let new_layout =
            unsafe { std::alloc::Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: new_layout has a non-zero size (larger than the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the old size and do not overlap (the new
            // one was carved after the old one, or comes from the system allocator).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
