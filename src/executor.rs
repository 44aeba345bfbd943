//! The library's front door: [`Sandbox`], [`Executor`] and [`Stdio`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Error;
use crate::log::{debug, info};
use crate::policy::{FsEntry, Limit, Mount, MountKind, SandboxPolicy};
use crate::report::ExecutorResult;
use crate::sandbox::{self, Command, Plan, StreamSource};
use crate::seccomp::{self, SeccompSpec};

const LOG: &str = "hakoniwa::executor";

/// Where the sandbox mounts the work directory given to [`Executor::work_dir`].
pub const WORK_DIR_TARGET: &str = "/hako";

/// A sandbox template: a policy that commands are run under.
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    policy: SandboxPolicy,
}

impl Sandbox {
    /// A sandbox with the embedded default ("KISS") policy.
    pub fn new() -> Sandbox {
        Sandbox::default()
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
    pub fn command<P: AsRef<OsStr>, A: AsRef<OsStr>>(&self, program: P, argv: &[A]) -> Executor {
        Executor {
            policy: self.policy.clone(),
            command: Command {
                program: program.as_ref().to_os_string(),
                argv: argv.iter().map(|a| a.as_ref().to_os_string()).collect(),
            },
            streams: [StreamSource::Inherit; 3],
            relay_signals: false,
        }
    }
}

/// Where a standard stream of the command comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stdio(StreamSource);

impl Stdio {
    /// The caller's own stream.
    pub fn inherit() -> Stdio {
        Stdio(StreamSource::Inherit)
    }

    /// The host's `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(StreamSource::Null)
    }
}

/// One command, ready to run in its own sandbox; the builder methods add to the policy.
pub struct Executor {
    policy: SandboxPolicy,
    command: Command,
    streams: [StreamSource; 3],
    relay_signals: bool,
}

impl Executor {
    /// Binds host path `source` read-only at `target` (`--ro-bind SOURCE:TARGET`).
    pub fn ro_bind(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind(source.as_ref(), target.as_ref(), false)
    }

    /// Binds host path `source` read-write at `target` (`--rw-bind SOURCE:TARGET`).
    pub fn rw_bind(
        &mut self,
        source: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Executor, Error> {
        self.bind(source.as_ref(), target.as_ref(), true)
    }

    fn bind(&mut self, source: &Path, target: &Path, rw: bool) -> Result<&mut Executor, Error> {
        std::fs::metadata(source).map_err(|e| Error::path("bind source", source, e))?;
        sandbox::Target::new(target, sandbox::NodeKind::Dir)?;
        self.policy.filesystem.push(FsEntry::Mount(Mount {
            source: source.to_path_buf(),
            target: target.to_path_buf(),
            kind: MountKind::Bind,
            rw,
            required: true,
        }));
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

    /// Sets the hostname inside the sandbox (`--hostname NAME`).
    pub fn hostname(&mut self, name: &str) -> Result<&mut Executor, Error> {
        if name.len() > 64 || name.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "hostname {name:?} is not valid (at most 64 bytes, no NUL)"
            )));
        }
        self.policy.hostname = Some(name.to_string());
        Ok(self)
    }

    /// Runs the command as this user id inside the sandbox (`--uid ID`).
    pub fn uid(&mut self, id: u32) -> &mut Executor {
        self.policy.uid = Some(id);
        self
    }

    /// Runs the command as this group id inside the sandbox (`--gid ID`).
    pub fn gid(&mut self, id: u32) -> &mut Executor {
        self.policy.gid = Some(id);
        self
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

    /// Sets a variable of the command's environment (`--setenv NAME=VALUE`).
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

    /// Sets one limit; `None` leaves it as the caller has it.
    pub(crate) fn limit(&mut self, limit: Limit, value: Option<u64>) -> &mut Executor {
        self.policy.limits.set(limit, value);
        self
    }

    /// Sets the command's standard input.
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[0] = stdio.0;
        self
    }

    /// Sets the command's standard output.
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[1] = stdio.0;
        self
    }

    /// Sets the command's standard error.
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Executor {
        self.streams[2] = stdio.0;
        self
    }

    /// Passes SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1 and SIGUSR2 that reach the calling
    /// thread on to the command while it runs (the CLI does this). Off by default: a
    /// library leaves its host's signals alone.
    pub fn relay_signals(&mut self, relay: bool) -> &mut Executor {
        self.relay_signals = relay;
        self
    }

    /// Builds the sandbox, runs the command in it, and waits for it to end.
    ///
    /// Every failure is in the result: a sandbox that could not be set up gives status
    /// [`SandboxSetupError`](crate::ExecutorResultStatus::SandboxSetupError) and a reason.
    pub fn run(&mut self) -> ExecutorResult {
        let result = match Plan::build(&self.policy, &self.command, self.streams) {
            Ok(plan) => {
                for (index, step) in plan.init.iter().chain(&plan.command).enumerate() {
                    debug!(LOG, "Step {index}: {step}");
                }
                sandbox::run(&plan, self.relay_signals)
            }
            Err(error) => ExecutorResult::setup_error(error.to_string(), sandbox::SETUP_FAILED),
        };
        info!(LOG, "Result: {}", result.to_json());
        result
    }
}

/// The default command: the caller's `$SHELL`, else `/bin/sh`.
pub fn default_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}
