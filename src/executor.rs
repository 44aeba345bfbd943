//! The library's front door: [`Sandbox`], [`Executor`] and [`Stdio`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::log::{debug, info};
use crate::policy::{FsEntry, Limit, Mount, MountKind, SandboxPolicy, tmpfs_options};
use crate::report::{ExecutorResult, ReportFile};
use crate::sandbox::{self, Command, Plan, Run, StreamSource};
use crate::seccomp::{self, Base, SeccompSpec};
use crate::sys;

const LOG: &str = "hakoniwa::executor";

/// Where the sandbox mounts the work directory given to [`Executor::work_dir`].
pub const WORK_DIR_TARGET: &str = "/hako";

/// A sandbox template: a policy that commands are run under.
///
/// Each [`command`](Sandbox::command) gets a sandbox of its own, built from nothing when
/// it runs and gone when it ends; the template itself holds no resources and may be used
/// from many threads.
///
/// ```
/// use hakoniwa::{Sandbox, SandboxPolicy, Stdio};
///
/// let mut sandbox = Sandbox::new(); // the embedded "KISS" policy
/// let result = sandbox
///     .command("/bin/sh", &["sh", "-c", "ls /"])
///     .stdout(Stdio::piped())
///     .run();
/// assert_eq!(result.exit_code, Some(0));
/// assert!(String::from_utf8_lossy(&result.stdout).contains("usr"));
///
/// // Another policy for the commands made from now on.
/// sandbox.with_policy(SandboxPolicy::from_str(r#"mounts = [{ source = "/usr", target = "/usr" }]"#)?);
/// # Ok::<(), hakoniwa::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    policy: SandboxPolicy,
}

impl Sandbox {
    /// A sandbox with the embedded default ("KISS") policy.
    pub fn new() -> Sandbox {
        Sandbox::default()
    }

    /// A sandbox with `policy`, without reading the embedded default first as `new` does:
    /// the command line starts every run this way.
    pub(crate) fn from_policy(policy: SandboxPolicy) -> Sandbox {
        Sandbox { policy }
    }

    /// Uses `policy` for the commands made from now on.
    pub fn with_policy(&mut self, policy: SandboxPolicy) -> &mut Sandbox {
        self.policy = policy;
        self
    }

    /// The policy in use.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.policy
    }

    /// Prepares `program` with the full argument vector `argv` (`argv[0]` included) to run
    /// in a sandbox made from this template's policy.
    ///
    /// A `program` without a slash is looked up in the sandbox's `PATH`, inside the
    /// sandbox. The command's standard streams are inherited until the executor says
    /// otherwise.
    pub fn command<P: AsRef<OsStr>, A: AsRef<OsStr>>(&self, program: P, argv: &[A]) -> Executor {
        Executor {
            policy: self.policy.clone(),
            command: Command {
                program: program.as_ref().to_os_string(),
                argv: argv.iter().map(|a| a.as_ref().to_os_string()).collect(),
            },
            streams: [Stdio::inherit(), Stdio::inherit(), Stdio::inherit()],
            relay_signals: false,
            report: None,
        }
    }
}

/// Where a standard stream of the command comes from or goes to.
///
/// - [`Stdio::inherit()`]: the caller's own stream (the default).
/// - [`Stdio::null()`]: the host's `/dev/null`.
/// - [`Stdio::piped()`]: a pipe to hakoniwa. For stdout and stderr, what the command writes
///   is captured into [`ExecutorResult::stdout`] and [`ExecutorResult::stderr`]; for stdin,
///   the command reads end of file at once.
/// - `Stdio::from(bytes)` (from a `Vec<u8>`, `&[u8]`, `String` or `&str`): for stdin, the
///   command reads these bytes and then end of file.
///
/// Piped streams are served together while the command runs, so a command that reads
/// megabytes and writes megabytes to both outputs at once never waits on hakoniwa.
/// Captured output is kept in memory, whole.
///
/// ```
/// use hakoniwa::{Sandbox, Stdio};
///
/// let result = Sandbox::new()
///     .command("/bin/sh", &["sh", "-c", "tr a-z A-Z; echo done >&2"])
///     .stdin(Stdio::from("hello\n"))
///     .stdout(Stdio::piped())
///     .stderr(Stdio::null())
///     .run();
/// assert_eq!(result.stdout, b"HELLO\n");
/// assert!(result.stderr.is_empty()); // it went to /dev/null
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Stdio(StdioKind);

#[derive(Clone, PartialEq, Eq)]
enum StdioKind {
    Inherit,
    Null,
    Piped,
    Bytes(Vec<u8>),
}

impl Stdio {
    /// The caller's own stream.
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// The host's `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A pipe to hakoniwa: output is captured into the result; stdin reads end of file.
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StdioKind::Inherit => f.write_str("Stdio::inherit()"),
            StdioKind::Null => f.write_str("Stdio::null()"),
            StdioKind::Piped => f.write_str("Stdio::piped()"),
            StdioKind::Bytes(bytes) => write!(f, "Stdio::from({} bytes)", bytes.len()),
        }
    }
}

/// Stdin that reads these bytes, then end of file.
impl From<Vec<u8>> for Stdio {
    fn from(bytes: Vec<u8>) -> Stdio {
        Stdio(StdioKind::Bytes(bytes))
    }
}

/// Stdin that reads these bytes, then end of file.
impl From<&[u8]> for Stdio {
    fn from(bytes: &[u8]) -> Stdio {
        Stdio::from(bytes.to_vec())
    }
}

/// Stdin that reads this text, then end of file.
impl From<String> for Stdio {
    fn from(text: String) -> Stdio {
        Stdio::from(text.into_bytes())
    }
}

/// Stdin that reads this text, then end of file.
impl From<&str> for Stdio {
    fn from(text: &str) -> Stdio {
        Stdio::from(text.as_bytes())
    }
}

/// One command, ready to run in its own sandbox; the builder methods add to the policy.
///
/// Made by [`Sandbox::command`]. Each builder method mirrors an option of `hakoniwa run`
/// and returns the executor for chaining, wrapped in a `Result` where the input can be
/// wrong; the error says what is wrong with which value, and the executor is unchanged.
/// [`run`](Executor::run) builds the sandbox, runs the command, waits for it and returns
/// the [`ExecutorResult`]; it may be called again for another run.
///
/// ```
/// use hakoniwa::{ExecutorResultStatus, Sandbox, Stdio};
///
/// let dir = std::env::temp_dir();
/// let result = Sandbox::new()
///     .command("/bin/sh", &["sh", "-c", "cat /etc/motd; hostname; ls -d /tmp $HOME"])
///     .file("/etc/motd", "welcome\n")?
///     .tmpfs("/tmp")?
///     .dir("/home/user", 0o700)?
///     .setenv("HOME", "/home/user")?
///     .ro_bind(&dir, "/host-tmp")?
///     .hostname("box")?
///     .limit_walltime(Some(10))
///     .stdout(Stdio::piped())
///     .run();
/// assert_eq!(result.status, ExecutorResultStatus::Ok);
/// assert_eq!(result.stdout, b"welcome\nbox\n/home/user\n/tmp\n");
///
/// // Bad input is an error value that names it.
/// let mut executor = Sandbox::new().command("/bin/true", &["true"]);
/// let error = executor.ro_bind("/no/such/dir", "/dir").unwrap_err();
/// assert_eq!(error.to_string(), r#"bind source "/no/such/dir": No such file or directory"#);
/// # Ok::<(), hakoniwa::Error>(())
/// ```
#[derive(Debug)]
pub struct Executor {
    policy: SandboxPolicy,
    command: Command,
    streams: [Stdio; 3],
    relay_signals: bool,
    report: Option<ReportFile>,
}

impl Executor {
    /// Binds host path `source` read-only at `target` (`--ro-bind SOURCE:TARGET`).
    ///
    /// The whole tree is bound, submounts included, read-only, `nosuid` and `nodev`;
    /// missing parents of `target` are created. Errors: `source` does not exist or cannot
    /// be reached; `target` is not an absolute path inside the sandbox.
    pub fn ro_bind(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind(source.as_ref(), target.as_ref(), false)
    }

    /// Binds host path `source` read-write at `target` (`--rw-bind SOURCE:TARGET`);
    /// otherwise as [`ro_bind`](Executor::ro_bind).
    pub fn rw_bind(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind(source.as_ref(), target.as_ref(), true)
    }

    /// Like [`ro_bind`](Executor::ro_bind), but a source that does not exist is skipped
    /// (`--ro-bind-try`).
    pub fn ro_bind_try(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind_try(source.as_ref(), target.as_ref(), false)
    }

    /// Like [`rw_bind`](Executor::rw_bind), but a source that does not exist is skipped
    /// (`--rw-bind-try`).
    pub fn rw_bind_try(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind_try(source.as_ref(), target.as_ref(), true)
    }

    fn bind(&mut self, source: &Path, target: &Path, rw: bool) -> Result<&mut Executor, Error> {
        std::fs::metadata(source).map_err(|e| Error::path("bind source", source, e))?;
        self.bind_try(source, target, rw)?;
        if let Some(FsEntry::Mount(mount)) = self.policy.filesystem.last_mut() {
            mount.required = true;
        }
        Ok(self)
    }

    fn bind_try(&mut self, source: &Path, target: &Path, rw: bool) -> Result<&mut Executor, Error> {
        let target = sandbox_path("mount target", target)?;
        self.policy.filesystem.push(FsEntry::Mount(Mount {
            source: source.to_path_buf(),
            target,
            kind: MountKind::Bind,
            rw,
            required: false,
            options: Vec::new(),
        }));
        Ok(self)
    }

    /// Mounts a new, empty tmpfs (`nosuid`, `nodev`) at `target`, as a policy's
    /// `{ target = "...", fstype = "tmpfs" }`.
    pub fn tmpfs(&mut self, target: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        self.new_fs(MountKind::Tmpfs, target.as_ref())
    }

    /// Mounts a new tmpfs at `target` with `options`: `size=64M,mode=1777,nr_inodes=10k`
    /// (`--tmpfs DEST:OPTIONS`; a policy's `options`).
    pub fn tmpfs_with_options(
        &mut self,
        target: impl AsRef<Path>,
        options: &str,
    ) -> Result<&mut Executor, Error> {
        let options = tmpfs_options(options).map_err(Error::InvalidInput)?;
        self.new_fs(MountKind::Tmpfs, target.as_ref())?;
        if let Some(FsEntry::Mount(mount)) = self.policy.filesystem.last_mut() {
            mount.options = options;
        }
        Ok(self)
    }

    /// Mounts a new `proc` of the sandbox's pid namespace at `target`, as a policy's
    /// `fstype = "proc"` (the default policy has one at `/proc`).
    pub fn proc(&mut self, target: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        self.new_fs(MountKind::Proc, target.as_ref())
    }

    /// Mounts a minimal `/dev` at `target`, as a policy's `fstype = "devfs"`: a tmpfs with
    /// the host's null, zero, full, random, urandom and tty devices, a private devpts with
    /// `ptmx`, a tmpfs at `shm` and the usual symlinks.
    pub fn devfs(&mut self, target: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        self.new_fs(MountKind::Devfs, target.as_ref())
    }

    fn new_fs(&mut self, kind: MountKind, target: &Path) -> Result<&mut Executor, Error> {
        let target = sandbox_path("mount target", target)?;
        self.policy.filesystem.push(FsEntry::Mount(Mount {
            source: PathBuf::new(),
            target,
            kind,
            rw: false,
            required: true,
            options: Vec::new(),
        }));
        Ok(self)
    }

    /// Creates directory `target` (and its missing parents) with permission bits `mode`
    /// (at most `0o7777`), as a policy's `dirs` entry.
    pub fn dir(&mut self, target: impl AsRef<Path>, mode: u32) -> Result<&mut Executor, Error> {
        let target = sandbox_path("dir", target.as_ref())?;
        if mode > 0o7777 {
            return Err(Error::InvalidInput(format!(
                "dir {target:?}: mode {mode:#o} is more than permission bits (at most 0o7777)"
            )));
        }
        self.policy.filesystem.push(FsEntry::Dir { target, mode });
        Ok(self)
    }

    /// Creates file `target` with `contents` (mode 0644; missing parents are created), as
    /// a policy's `files` entry. It is never written through a symlink.
    pub fn file(
        &mut self,
        target: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
    ) -> Result<&mut Executor, Error> {
        let target = sandbox_path("file", target.as_ref())?;
        let contents = contents.as_ref().to_vec();
        self.policy
            .filesystem
            .push(FsEntry::File { target, contents });
        Ok(self)
    }

    /// Creates a symlink at `link` that points to `original` (which need not exist), as a
    /// policy's `symlinks` entry; the order is that of `std::os::unix::fs::symlink`.
    pub fn symlink(
        &mut self,
        original: impl AsRef<Path>,
        link: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        let link = sandbox_path("symlink", link.as_ref())?;
        let original = original.as_ref().as_os_str();
        if original.is_empty() || original.as_bytes().contains(&0) {
            return Err(Error::InvalidInput(format!(
                "symlink {link:?}: the original {original:?} is empty or has a NUL byte"
            )));
        }
        self.policy.filesystem.push(FsEntry::Symlink {
            original: original.to_os_string(),
            link,
        });
        Ok(self)
    }

    /// Binds host directory `dir` read-write at `/hako` and starts the command there
    /// (`--work-dir DIR`).
    pub fn work_dir(&mut self, dir: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        let dir = dir.as_ref();
        let meta = std::fs::metadata(dir).map_err(|e| Error::path("work dir", dir, e))?;
        if !meta.is_dir() {
            let e = std::io::Error::from_raw_os_error(libc::ENOTDIR);
            return Err(Error::path("work dir", dir, e));
        }
        self.bind(dir, Path::new(WORK_DIR_TARGET), true)?;
        self.policy.cwd = Some(WORK_DIR_TARGET.into());
        Ok(self)
    }

    /// Starts the command in directory `dir` of the sandbox (default `/`), as a policy's
    /// `cwd`. The directory must exist in the sandbox when the command starts.
    pub fn cwd(&mut self, dir: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        let dir = dir.as_ref();
        self.policy.cwd = Some(if dir == Path::new("/") {
            dir.to_path_buf()
        } else {
            sandbox_path("cwd", dir)?
        });
        Ok(self)
    }

    /// Sets the hostname inside the sandbox (`--hostname NAME`); at most 64 bytes.
    pub fn hostname(&mut self, name: &str) -> Result<&mut Executor, Error> {
        crate::policy::check_hostname(name).map_err(Error::InvalidInput)?;
        self.policy.hostname = Some(name.to_string());
        Ok(self)
    }

    /// Runs the command as this user id inside the sandbox (`--uid ID`); the caller's own
    /// uid by default. Whatever the id inside, it is the caller's uid on the host.
    pub fn uid(&mut self, id: u32) -> Result<&mut Executor, Error> {
        self.policy.uid = Some(valid_id("uid", id)?);
        Ok(self)
    }

    /// Runs the command as this group id inside the sandbox (`--gid ID`); the caller's own
    /// gid by default. Whatever the id inside, it is the caller's gid on the host.
    pub fn gid(&mut self, id: u32) -> Result<&mut Executor, Error> {
        self.policy.gid = Some(valid_id("gid", id)?);
        Ok(self)
    }

    /// Keeps the host's network namespace (`--share-net`).
    pub fn share_net(&mut self, share: bool) -> &mut Executor {
        self.policy.share_net = share;
        self
    }

    /// Keeps the host's UTS namespace: hostname and domain name (`--share-uts`).
    pub fn share_uts(&mut self, share: bool) -> &mut Executor {
        self.policy.share_uts = share;
        self
    }

    /// Keeps the host's IPC namespace (`--share-ipc`).
    pub fn share_ipc(&mut self, share: bool) -> &mut Executor {
        self.policy.share_ipc = share;
        self
    }

    /// Chooses the command's seccomp filter (`--seccomp NAME|FILE`): an embedded profile
    /// (`default`, `log`), `unconfined` for none, or a profile file, compiled now.
    ///
    /// ```
    /// # fn main() -> Result<(), hakoniwa::Error> {
    /// let mut executor = hakoniwa::Sandbox::new().command("/bin/true", &["true"]);
    /// executor.seccomp("log")?;
    /// assert!(executor.seccomp("no-such-profile").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn seccomp(&mut self, profile: impl AsRef<OsStr>) -> Result<&mut Executor, Error> {
        let profile = profile.as_ref();
        let named = profile
            .to_str()
            .filter(|p| !p.contains('/'))
            .and_then(SeccompSpec::named);
        self.policy.seccomp.base = match named {
            Some(base) => base,
            None => seccomp::profile_file(Path::new(profile))?,
        };
        Ok(self)
    }

    /// Landlock: lets the command read `path` (a path inside the sandbox) and what is
    /// beneath it (`--landlock-ro`). Once any path rule is given, the command may reach no
    /// path but those the rules name, whatever the mounts allow.
    pub fn landlock_ro(&mut self, path: impl AsRef<Path>) -> &mut Executor {
        self.policy.landlock.ro.push(path.as_ref().to_path_buf());
        self
    }

    /// Landlock: lets the command read and execute `path` and what is beneath it
    /// (`--landlock-rx`).
    pub fn landlock_rx(&mut self, path: impl AsRef<Path>) -> &mut Executor {
        self.policy.landlock.rx.push(path.as_ref().to_path_buf());
        self
    }

    /// Landlock: lets the command do anything with `path` and what is beneath it
    /// (`--landlock-rw`).
    pub fn landlock_rw(&mut self, path: impl AsRef<Path>) -> &mut Executor {
        self.policy.landlock.rw.push(path.as_ref().to_path_buf());
        self
    }

    /// Landlock: lets the command bind TCP `port` (`--landlock-tcp-bind`); once any bind
    /// rule is given, no other port can be bound.
    pub fn landlock_tcp_bind(&mut self, port: u16) -> &mut Executor {
        self.policy.landlock.tcp_bind.push(port);
        self
    }

    /// Landlock: lets the command connect to TCP `port` (`--landlock-tcp-connect`); once any
    /// connect rule is given, no other port can be connected to.
    pub fn landlock_tcp_connect(&mut self, port: u16) -> &mut Executor {
        self.policy.landlock.tcp_connect.push(port);
        self
    }

    /// Fails (a setup error) unless the kernel enforces every Landlock rule
    /// (`--landlock-strict`); by default rights the kernel does not know are left out.
    pub fn landlock_strict(&mut self, strict: bool) -> &mut Executor {
        self.policy.landlock.strict = strict;
        self
    }

    /// Keeps capability `name` (`CAP_NET_RAW`, `net_raw`, or `ALL`) for a command that runs
    /// as uid 0 inside (`--cap-add`). By default the command holds no capability at all.
    /// Capabilities inside are those of the sandbox's own user namespace: they act on what
    /// the sandbox owns (its network, its mounts), never on the host's.
    pub fn cap_add(&mut self, name: &str) -> Result<&mut Executor, Error> {
        self.policy.capabilities |= sandbox::parse_capability(name)?;
        Ok(self)
    }

    /// Traces the command's system calls instead of filtering them (`hakoniwa trace`):
    /// each one is counted by the supervisor and then allowed, and the result's
    /// [`syscalls`](crate::ExecutorResult::syscalls) lists them. Replaces the seccomp filter.
    pub fn trace_syscalls(&mut self, trace: bool) -> &mut Executor {
        self.policy.seccomp.base = if trace {
            Base::Trace
        } else {
            Base::Embedded("default")
        };
        self
    }

    /// Lets `socket` and `socketpair` use only these address families (`unix`, `inet`,
    /// `inet6`, `netlink`, ...); any other gives EAFNOSUPPORT (`--socket-families`).
    pub fn socket_families<S: AsRef<str>>(
        &mut self,
        families: impl IntoIterator<Item = S>,
    ) -> Result<&mut Executor, Error> {
        let numbers = families
            .into_iter()
            .map(|name| {
                let name = name.as_ref();
                seccomp::socket_family(name).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "unknown socket family {name:?} (expected {})",
                        seccomp::socket_family_names()
                    ))
                })
            })
            .collect::<Result<Vec<u32>, Error>>()?;
        self.policy.seccomp.socket_families = Some(numbers);
        Ok(self)
    }

    /// Sets a variable of the command's environment (`--setenv NAME=VALUE`), replacing
    /// the policy's value. An empty value leaves the variable out.
    pub fn setenv(
        &mut self,
        name: impl AsRef<OsStr>,
        value: impl AsRef<OsStr>,
    ) -> Result<&mut Executor, Error> {
        let (name, value) = (name.as_ref(), value.as_ref());
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&b'=') || bytes.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "environment variable name {name:?} is not valid"
            )));
        }
        if value.as_bytes().contains(&0) {
            return Err(Error::InvalidInput(format!(
                "environment variable {name:?} has a NUL byte in its value"
            )));
        }
        self.policy
            .set_env(name.to_os_string(), value.to_os_string());
        Ok(self)
    }

    /// Limits the command's address space to this many bytes (`--limit-as`, `RLIMIT_AS`).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_as(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::As, limit)
    }

    /// Limits the size of the command's core dumps, in bytes (`--limit-core`, `RLIMIT_CORE`).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_core(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Core, limit)
    }

    /// Limits the command's cpu time to this many seconds, at least 1 (`--limit-cpu`,
    /// `RLIMIT_CPU`).
    ///
    /// The command gets SIGXCPU when it is used up, and the kernel's SIGKILL a second later
    /// if it ignores that; both end in
    /// [`TimeLimitExceeded`](crate::ExecutorResultStatus::TimeLimitExceeded).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_cpu(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Cpu, limit)
    }

    /// Limits the size of each file the command writes, in bytes (`--limit-fsize`,
    /// `RLIMIT_FSIZE`). Writing past it raises SIGXFSZ:
    /// [`OutputLimitExceeded`](crate::ExecutorResultStatus::OutputLimitExceeded).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_fsize(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Fsize, limit)
    }

    /// Limits the command's open descriptors: each new one must be below this number
    /// (`--limit-nofile`, `RLIMIT_NOFILE`).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_nofile(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Nofile, limit)
    }

    /// Limits the processes the sandbox's user may have in the sandbox, hakoniwa's init and
    /// the command included (`--limit-nproc`, `RLIMIT_NPROC`). The kernel does not enforce
    /// it when the caller is the host's root.
    /// `None` leaves the limit as the caller has it.
    pub fn limit_nproc(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Nproc, limit)
    }

    /// Limits the command's stack to this many bytes (`--limit-stack`, `RLIMIT_STACK`).
    /// `None` leaves the limit as the caller has it.
    pub fn limit_stack(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Stack, limit)
    }

    /// Kills the whole sandbox, every process in it, once it has run this many seconds, at
    /// least 1 (`--limit-walltime`):
    /// [`TimeLimitExceeded`](crate::ExecutorResultStatus::TimeLimitExceeded). `None`: no
    /// walltime.
    pub fn limit_walltime(&mut self, limit: Option<u64>) -> &mut Executor {
        self.limit(Limit::Walltime, limit)
    }

    /// Limits the memory of the whole sandbox to `bytes` (`--limit-memory`), with cgroup v2's
    /// memory.max (and no swap): an out-of-memory kill gives
    /// [`MemoryLimitExceeded`](crate::ExecutorResultStatus::MemoryLimitExceeded). Needs the
    /// memory controller in a cgroup hakoniwa may make a child of.
    pub fn limit_memory(&mut self, bytes: Option<u64>) -> &mut Executor {
        self.limit(Limit::Memory, bytes)
    }

    /// Limits the processes and threads of the whole sandbox (`--limit-pids`), with cgroup
    /// v2's pids.max.
    pub fn limit_pids(&mut self, count: Option<u64>) -> &mut Executor {
        self.limit(Limit::Pids, count)
    }

    /// Limits the cpu share of the whole sandbox to `cpus` (`--limit-cpus 0.5`), with cgroup
    /// v2's cpu.max; three decimals count.
    pub fn limit_cpus(&mut self, cpus: Option<f64>) -> Result<&mut Executor, Error> {
        let millis = match cpus {
            None => None,
            Some(cpus) if (0.001..=1e9).contains(&cpus) => Some((cpus * 1000.0).round() as u64),
            Some(cpus) => {
                return Err(Error::InvalidInput(format!(
                    "{cpus} is not a number of cpus"
                )));
            }
        };
        Ok(self.limit(Limit::Cpus, millis))
    }

    /// Makes the sandbox's cgroup (for the cgroup limits) under cgroup2 directory `dir`
    /// instead of hakoniwa's own cgroup (`--cgroup-parent`): a delegated cgroup without
    /// processes of its own.
    pub fn cgroup_parent(&mut self, dir: impl AsRef<Path>) -> &mut Executor {
        self.policy.cgroup_parent = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Sets one limit; `None` leaves it as the caller has it.
    pub(crate) fn limit(&mut self, limit: Limit, value: Option<u64>) -> &mut Executor {
        self.policy.limits.set(limit, value);
        self
    }

    /// Sets the command's standard input (default: inherited).
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[0] = stdio;
        self
    }

    /// Sets the command's standard output (default: inherited); [`Stdio::piped()`]
    /// captures it into [`ExecutorResult::stdout`].
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[1] = stdio;
        self
    }

    /// Sets the command's standard error (default: inherited); [`Stdio::piped()`]
    /// captures it into [`ExecutorResult::stderr`].
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[2] = stdio;
        self
    }

    /// Passes SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1 and SIGUSR2 that reach the calling
    /// thread on to the command while it runs (the CLI does this). Off by default: a
    /// library leaves its host's signals alone.
    pub fn relay_signals(&mut self, relay: bool) -> &mut Executor {
        self.relay_signals = relay;
        self
    }

    /// Writes each run's result to `path` as one JSON object and a newline, the
    /// [`ExecutorResult::to_json`] form (`--report-file FILE`).
    ///
    /// The file is created (or truncated) now, so a report that cannot be written is an
    /// error before anything runs; every run of this executor then adds its line. A
    /// report that cannot be written after a run is in
    /// [`ExecutorResult::report_error`]. Keep the file where the sandbox cannot write.
    pub fn report_file(&mut self, path: impl AsRef<Path>) -> Result<&mut Executor, Error> {
        self.report = Some(ReportFile::create("report file", path.as_ref())?);
        Ok(self)
    }

    /// Builds the sandbox, runs the command in it, and waits for it to end.
    ///
    /// Every failure is in the result: a sandbox that could not be set up gives status
    /// [`SandboxSetupError`](crate::ExecutorResultStatus::SandboxSetupError) and a reason.
    /// Safe to call from any thread of a multi-threaded program, and from several at once.
    pub fn run(&mut self) -> ExecutorResult {
        let mut result = match self.run_once(true) {
            Ok(Run::Ended(result)) => *result,
            // Root where the kernel refuses user namespaces (rescue systems, initramfs,
            // user.max_user_namespaces=0, some containers): the rest of the sandbox still.
            Ok(Run::UserNamespaceRefused(errno)) if sys::geteuid() == 0 => {
                info!(
                    LOG,
                    "User namespace: refused by the kernel ({errno}); running without one"
                );
                match self.run_once(false) {
                    Ok(Run::Ended(result)) => *result,
                    Ok(Run::UserNamespaceRefused(errno)) => refused(errno),
                    Err(error) => {
                        ExecutorResult::setup_error(error.to_string(), sandbox::SETUP_FAILED)
                    }
                }
            }
            Ok(Run::UserNamespaceRefused(errno)) => refused(errno),
            Err(error) => ExecutorResult::setup_error(error.to_string(), sandbox::SETUP_FAILED),
        };
        if let Some(report) = &mut self.report
            && let Err(error) = report.write(&result)
        {
            result.set_report_error(&error);
        }
        info!(LOG, "Result: {}", result.to_json());
        result
    }

    /// Plans and runs the sandbox, with a user namespace or without one.
    fn run_once(&self, user_namespace: bool) -> Result<Run, Error> {
        let plan = self.plan(user_namespace)?;
        for (index, step) in plan.init.iter().chain(&plan.command).enumerate() {
            debug!(LOG, "Step {index}: {step}");
        }
        let input = match &self.streams[0].0 {
            StdioKind::Bytes(bytes) => bytes.as_slice(),
            _ => &[],
        };
        Ok(sandbox::run(&plan, self.relay_signals, input))
    }

    fn plan(&self, user_namespace: bool) -> Result<Plan, Error> {
        let mut sources = [StreamSource::Inherit; 3];
        for (fd, (stdio, source)) in self.streams.iter().zip(&mut sources).enumerate() {
            *source = match stdio.0 {
                StdioKind::Inherit => StreamSource::Inherit,
                StdioKind::Null => StreamSource::Null,
                StdioKind::Piped => StreamSource::Pipe,
                StdioKind::Bytes(_) if fd == 0 => StreamSource::Pipe,
                StdioKind::Bytes(_) => {
                    let name = if fd == 1 { "stdout" } else { "stderr" };
                    return Err(Error::InvalidInput(format!(
                        "{name}: Stdio::from(bytes) is input for stdin; Stdio::piped() captures output"
                    )));
                }
            };
        }
        Plan::build(&self.policy, &self.command, sources, user_namespace)
    }
}

/// The result when the kernel refuses the sandbox a user namespace and hakoniwa is not root.
fn refused(errno: sys::Errno) -> ExecutorResult {
    let reason = format!(
        "create the sandbox's user namespace (clone3): {errno}: user namespaces are not available \
         to this user (see user.max_user_namespaces, kernel.unprivileged_userns_clone, or the \
         AppArmor or seccomp policy of a container); as root, hakoniwa runs without one"
    );
    ExecutorResult::setup_error(reason, sandbox::SETUP_FAILED)
}

/// `path` as a path created inside the sandbox: absolute, no `..`, not the root, no NUL.
fn sandbox_path(what: &str, path: &Path) -> Result<PathBuf, Error> {
    let why = if path.as_os_str().as_bytes().contains(&0) {
        Err("has a NUL byte")
    } else {
        sandbox::check_target(path)
    };
    why.map_err(|why| Error::InvalidInput(format!("{what} {path:?} {why}")))?;
    Ok(path.to_path_buf())
}

/// An id for the sandbox's id maps: 2^32 - 1 means "no id" to the kernel.
fn valid_id(what: &str, id: u32) -> Result<u32, Error> {
    if id == u32::MAX {
        return Err(Error::InvalidInput(format!(
            "{what} {id} is not valid (2^32 - 1 means \"no id\")"
        )));
    }
    Ok(id)
}

/// The default command: the caller's `$SHELL`, else `/bin/sh`.
pub fn default_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}
