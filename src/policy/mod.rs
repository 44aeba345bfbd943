//! What a sandbox is made of: the policy, and the embedded default ("KISS").

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The hostname inside the sandbox unless a policy or option says otherwise.
pub const DEFAULT_HOSTNAME: &str = "hakoniwa";

/// How a mount is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A recursive bind mount of a host path.
    Bind,
    /// A new `proc` of the sandbox's pid namespace.
    Proc,
}

/// One entry of a policy's `mounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The host path (binds only).
    pub(crate) source: PathBuf,
    /// The absolute path inside the sandbox.
    pub(crate) target: PathBuf,
    pub(crate) kind: MountKind,
    /// Writable; binds are read-only otherwise.
    pub(crate) rw: bool,
    /// A missing source is an error; otherwise it is skipped with a note.
    pub(crate) required: bool,
}

/// A sandbox policy: namespaces to share, ids, hostname, mounts, environment and limits.
///
/// [`SandboxPolicy::default`] is the embedded "KISS" policy: read-only `/bin`, `/lib`,
/// `/lib64` and `/usr`, the `/dev/null`, `/dev/random`, `/dev/urandom` and `/dev/zero`
/// devices, a new `/proc`, and `LANG`, `LANGUAGE`, `LC_ALL` and `TERM` from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxPolicy {
    pub(crate) name: String,
    pub(crate) share_net: bool,
    pub(crate) share_uts: bool,
    pub(crate) share_ipc: bool,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) hostname: Option<String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) limits: Limits,
}

impl Default for SandboxPolicy {
    fn default() -> SandboxPolicy {
        SandboxPolicy::kiss()
    }
}

impl SandboxPolicy {
    /// A policy that shares nothing, mounts nothing and sets no environment.
    pub fn empty() -> SandboxPolicy {
        SandboxPolicy {
            name: "empty".into(),
            share_net: false,
            share_uts: false,
            share_ipc: false,
            uid: None,
            gid: None,
            hostname: None,
            cwd: None,
            mounts: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// The embedded default policy, "KISS-policy.toml".
    pub fn kiss() -> SandboxPolicy {
        let mut policy = SandboxPolicy::empty();
        policy.name = "KISS-policy.toml".into();
        policy.mounts.push(Mount {
            source: PathBuf::new(),
            target: "/proc".into(),
            kind: MountKind::Proc,
            rw: false,
            required: false,
        });
        let binds = [
            ("/bin", false),
            ("/lib", false),
            ("/lib64", false),
            ("/usr", false),
            ("/dev/null", true),
            ("/dev/random", true),
            ("/dev/urandom", true),
            ("/dev/zero", true),
        ];
        for (path, rw) in binds {
            policy.mounts.push(Mount {
                source: path.into(),
                target: path.into(),
                kind: MountKind::Bind,
                rw,
                required: false,
            });
        }
        for name in ["LANG", "LANGUAGE", "LC_ALL", "TERM"] {
            let value = std::env::var_os(name).unwrap_or_default();
            policy.env.push((name.into(), value));
        }
        policy
    }

    /// The policy's name, as logged (`KISS-policy.toml`, or a file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(DEFAULT_HOSTNAME)
    }

    pub(crate) fn cwd(&self) -> &Path {
        self.cwd.as_deref().unwrap_or(Path::new("/"))
    }

    pub(crate) fn env_var(&self, name: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// Sets a variable of the command's environment, replacing an earlier value.
    pub(crate) fn set_env(&mut self, name: OsString, value: OsString) {
        match self.env.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.env.push((name, value)),
        }
    }
}

/// The resource limits of a policy (its `[limits]` table); `None` leaves a limit as the
/// caller has it.
///
/// Byte sizes for `as_`, `core`, `fsize` and `stack`, seconds for `cpu` and `walltime`,
/// counts for `nofile` and `nproc`. All but `walltime` are rlimits of the command's process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) as_: Option<u64>,
    pub(crate) core: Option<u64>,
    pub(crate) cpu: Option<u64>,
    pub(crate) fsize: Option<u64>,
    pub(crate) nofile: Option<u64>,
    pub(crate) nproc: Option<u64>,
    pub(crate) stack: Option<u64>,
    pub(crate) walltime: Option<u64>,
}

/// One of the limits, named as in a policy's `[limits]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    As,
    Core,
    Cpu,
    Fsize,
    Nofile,
    Nproc,
    Stack,
    Walltime,
}

/// What a limit's number counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Seconds,
    Count,
}

impl Limit {
    /// The key in a policy's `[limits]` table (`--limit-KEY` on the command line).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Limit::As => "as",
            Limit::Core => "core",
            Limit::Cpu => "cpu",
            Limit::Fsize => "fsize",
            Limit::Nofile => "nofile",
            Limit::Nproc => "nproc",
            Limit::Stack => "stack",
            Limit::Walltime => "walltime",
        }
    }

    pub(crate) fn unit(self) -> Unit {
        match self {
            Limit::As | Limit::Core | Limit::Fsize | Limit::Stack => Unit::Bytes,
            Limit::Cpu | Limit::Walltime => Unit::Seconds,
            Limit::Nofile | Limit::Nproc => Unit::Count,
        }
    }

    /// The smallest value that means something: a time limit of 0 seconds would kill the
    /// command before it did anything.
    pub(crate) fn min(self) -> u64 {
        match self.unit() {
            Unit::Seconds => 1,
            Unit::Bytes | Unit::Count => 0,
        }
    }
}

impl Limits {
    pub(crate) fn get(&self, limit: Limit) -> Option<u64> {
        self.values()
            .into_iter()
            .find_map(|(l, value)| if l == limit { value } else { None })
    }

    pub(crate) fn set(&mut self, limit: Limit, value: Option<u64>) {
        let slot = match limit {
            Limit::As => &mut self.as_,
            Limit::Core => &mut self.core,
            Limit::Cpu => &mut self.cpu,
            Limit::Fsize => &mut self.fsize,
            Limit::Nofile => &mut self.nofile,
            Limit::Nproc => &mut self.nproc,
            Limit::Stack => &mut self.stack,
            Limit::Walltime => &mut self.walltime,
        };
        *slot = value;
    }

    /// The limits that are set, in the order of their keys here: as, core, cpu, fsize,
    /// nofile, nproc, stack, walltime.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Limit, u64)> {
        self.values()
            .into_iter()
            .filter_map(|(limit, value)| Some((limit, value?)))
    }

    fn values(&self) -> [(Limit, Option<u64>); 8] {
        [
            (Limit::As, self.as_),
            (Limit::Core, self.core),
            (Limit::Cpu, self.cpu),
            (Limit::Fsize, self.fsize),
            (Limit::Nofile, self.nofile),
            (Limit::Nproc, self.nproc),
            (Limit::Stack, self.stack),
            (Limit::Walltime, self.walltime),
        ]
    }
}
