//! What a sandbox is made of: the policy, read from TOML files or embedded ones.
//!
//! A policy's text is rendered through the template language (`template.rs`), read as
//! TOML (`toml.rs`) and checked against the schema (`schema.rs`); every error names the
//! file, line and column.

mod embedded;
mod schema;
mod template;
pub(crate) mod toml;

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub use embedded::EMBEDDED;

use crate::error::Error;
use crate::sandbox::LandlockSpec;
use crate::seccomp::SeccompSpec;

/// The hostname inside the sandbox unless a policy or option says otherwise.
pub const DEFAULT_HOSTNAME: &str = "hakoniwa";

/// How a mount is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A recursive bind mount of a host path.
    Bind,
    /// A new `proc` of the sandbox's pid namespace.
    Proc,
    /// A new, empty tmpfs.
    Tmpfs,
    /// A minimal `/dev`: a tmpfs with the harmless devices of the host, a private devpts,
    /// a tmpfs at `shm` and the usual symlinks.
    Devfs,
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
    /// A tmpfs's `size`, `mode` and `nr_inodes`, checked by [`tmpfs_options`].
    pub(crate) options: Vec<(String, String)>,
}

/// Why `name` cannot be a hostname, if it cannot: the kernel takes at most 64 bytes.
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    if name.len() > 64 || name.contains('\0') {
        return Err(format!(
            "hostname {name:?} is not valid (at most 64 bytes, no NUL)"
        ));
    }
    Ok(())
}

/// Reads a tmpfs's options, `size=64M,mode=1777,nr_inodes=10k`: sizes in bytes with an
/// optional K, M or G (or a percentage of memory for `size`), the mode in octal.
pub(crate) fn tmpfs_options(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut options = Vec::new();
    for option in text.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| format!("tmpfs option {option:?} is not KEY=VALUE"))?;
        let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let sized = |v: &str| {
            let number = v.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G']).unwrap_or(v);
            digits(number)
        };
        let valid = match key {
            "size" => sized(value) || value.strip_suffix('%').is_some_and(digits),
            "nr_inodes" => sized(value),
            "mode" => {
                value.len() <= 4
                    && value.bytes().all(|b| (b'0'..=b'7').contains(&b))
                    && !value.is_empty()
            }
            _ => {
                return Err(format!(
                    "unknown tmpfs option {key:?} (expected size, mode or nr_inodes)"
                ));
            }
        };
        if !valid {
            return Err(format!("tmpfs option {option:?} has a bad value"));
        }
        options.push((key.to_string(), value.to_string()));
    }
    Ok(options)
}

/// One thing built in the sandbox's file tree, in the order it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FsEntry {
    Mount(Mount),
    /// A directory (with its missing parents).
    Dir {
        target: PathBuf,
        mode: u32,
    },
    /// A file with the given contents; never written through a symlink.
    File {
        target: PathBuf,
        contents: Vec<u8>,
    },
    /// A symlink at `link` pointing to `original`.
    Symlink {
        original: OsString,
        link: PathBuf,
    },
}

/// A sandbox policy: namespaces to share, ids, hostname, file tree, environment, limits.
///
/// [`SandboxPolicy::default`] is the embedded "KISS" policy (`policies/KISS-policy.toml`):
/// read-only `/bin`, `/lib`, `/lib64` and `/usr`, the `/dev/null`, `/dev/random`,
/// `/dev/urandom` and `/dev/zero` devices, a new `/proc`, and `LANG`, `LANGUAGE`,
/// `LC_ALL` and `TERM` from the host.
///
/// ```
/// use hakoniwa::{Sandbox, SandboxPolicy, Stdio};
///
/// let policy = SandboxPolicy::from_str(
///     r#"
/// hostname = "judge"
/// mounts = [
///   { source = "/usr", target = "/usr" },
///   { source = "/lib", target = "/lib" },
///   { source = "/lib64", target = "/lib64" },
///   { source = "/bin", target = "/bin" },
/// ]
/// [env]
/// PATH = "/usr/bin:/bin"
/// [limits]
/// walltime = 10
/// "#,
/// )?;
/// let mut sandbox = Sandbox::new();
/// sandbox.with_policy(policy);
/// let result = sandbox.command("hostname", &["hostname"]).stdout(Stdio::piped()).run();
/// assert_eq!(result.stdout, b"judge\n");
///
/// // Mistakes are reported with their line and column.
/// let error = SandboxPolicy::from_str("hostname = 5").unwrap_err();
/// assert_eq!(error.to_string(), r#"policy:1:12: expected a string for "hostname", found an integer"#);
/// # Ok::<(), hakoniwa::Error>(())
/// ```
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
    pub(crate) filesystem: Vec<FsEntry>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) limits: Limits,
    pub(crate) seccomp: SeccompSpec,
    /// Capabilities a uid 0 command keeps, as a bit mask (none by default).
    pub(crate) capabilities: u64,
    /// Landlock rules for the command (none by default).
    pub(crate) landlock: LandlockSpec,
    /// Where cgroup limits make the sandbox's cgroup (default: the caller's own cgroup).
    pub(crate) cgroup_parent: Option<PathBuf>,
}

impl Default for SandboxPolicy {
    fn default() -> SandboxPolicy {
        SandboxPolicy::kiss()
    }
}

impl std::str::FromStr for SandboxPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<SandboxPolicy, Error> {
        SandboxPolicy::read("policy", text)
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
            filesystem: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
            seccomp: SeccompSpec::default(),
            capabilities: 0,
            landlock: LandlockSpec::default(),
            cgroup_parent: None,
        }
    }

    /// The embedded default policy, "KISS-policy.toml".
    pub fn kiss() -> SandboxPolicy {
        match SandboxPolicy::embedded("KISS") {
            Ok(policy) => policy,
            // The embedded text is checked by the tests; an error here is a build defect.
            Err(error) => panic!("the embedded KISS policy is invalid: {error}"),
        }
    }

    /// One of the embedded policies by name (`KISS`, `net`, `dev`; see [`EMBEDDED`]),
    /// rendered with this process's environment.
    pub fn embedded(name: &str) -> Result<SandboxPolicy, Error> {
        let (file, text) = embedded::find(name).ok_or_else(|| {
            let names: Vec<&str> = EMBEDDED.iter().map(|(n, _, _)| *n).collect();
            Error::InvalidInput(format!(
                "no embedded policy named {name:?} (there are {})",
                names.join(", ")
            ))
        })?;
        SandboxPolicy::read(file, text)
    }

    /// Reads a policy: renders its templates, parses the TOML, checks the schema.
    ///
    /// This is the seed's `SandboxPolicy::from_str`; errors are reported as
    /// `policy:LINE:COLUMN: ...`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<SandboxPolicy, Error> {
        text.parse()
    }

    /// Reads a policy file (at most 1 MiB); errors name the file as given.
    pub fn from_file(path: impl AsRef<Path>) -> Result<SandboxPolicy, Error> {
        let path = path.as_ref();
        let text = read_policy_file(path)?;
        SandboxPolicy::read(&path.to_string_lossy(), &text)
    }

    /// Renders and reads `text`, naming it `name` in errors.
    pub(crate) fn read(name: &str, text: &str) -> Result<SandboxPolicy, Error> {
        let (rendered, table) = render_and_parse(name, text)?;
        let mut policy = schema::read(&table)
            .map_err(|e| policy_error(name, text, rendered.source_offset(e.at), e.message))?;
        policy.name = name.to_string();
        Ok(policy)
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

/// Renders a policy's templates and reads the result as TOML, without the schema: for
/// `hakoniwa policy show`, which prints the rendered text of a checked policy.
pub(crate) fn render_checked(name: &str, text: &str) -> Result<String, Error> {
    SandboxPolicy::read(name, text)?;
    let (rendered, _) = render_and_parse(name, text)?;
    Ok(rendered.text)
}

fn render_and_parse(name: &str, text: &str) -> Result<(template::Rendered, toml::Table), Error> {
    let rendered = template::render(text, &template::RealHost)
        .map_err(|e| policy_error(name, text, e.at, e.message))?;
    let table = toml::parse(&rendered.text)
        .map_err(|e| policy_error(name, text, rendered.source_offset(e.at), e.message))?;
    Ok((rendered, table))
}

fn policy_error(file: &str, source: &str, at: usize, message: String) -> Error {
    let (line, column) = toml::line_col(source, at);
    Error::Policy {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// Why a text file (a policy, or a file a policy includes) could not be read.
pub(crate) enum TextFileError {
    Io(std::io::Error),
    TooLarge,
    /// Not UTF-8: the text up to the first bad byte, lossily.
    NotUtf8 {
        valid_prefix: String,
    },
}

/// Reads a text file of at most [`toml::MAX_INPUT`] bytes, without reading more of it.
pub(crate) fn read_text_file(path: &Path) -> Result<String, TextFileError> {
    let file = std::fs::File::open(path).map_err(TextFileError::Io)?;
    let mut bytes = Vec::new();
    file.take(toml::MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(TextFileError::Io)?;
    if bytes.len() > toml::MAX_INPUT {
        return Err(TextFileError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        TextFileError::NotUtf8 {
            valid_prefix: String::from_utf8_lossy(&e.as_bytes()[..valid]).into(),
        }
    })
}

/// Reads a policy file; errors name it.
pub(crate) fn read_policy_file(path: &Path) -> Result<String, Error> {
    read_text(path, "policy file")
}

/// Reads a text file given as `what` (a policy file, a seccomp profile); errors name it.
pub(crate) fn read_text(path: &Path, what: &'static str) -> Result<String, Error> {
    read_text_file(path).map_err(|e| match e {
        TextFileError::Io(e) => Error::path(what, path, e),
        TextFileError::TooLarge => Error::InvalidInput(format!(
            "{what} {path:?} is larger than {} bytes",
            toml::MAX_INPUT
        )),
        TextFileError::NotUtf8 { valid_prefix } => {
            let (line, column) = toml::line_col(&valid_prefix, valid_prefix.len());
            Error::Policy {
                file: path.to_string_lossy().into_owned(),
                line,
                column,
                message: "invalid UTF-8".into(),
            }
        }
    })
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
    /// cgroup v2: memory.max of the whole sandbox, in bytes.
    pub(crate) memory: Option<u64>,
    /// cgroup v2: pids.max of the whole sandbox.
    pub(crate) pids: Option<u64>,
    /// cgroup v2: cpu.max of the whole sandbox, in thousandths of a cpu.
    pub(crate) cpus: Option<u64>,
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
    Memory,
    Pids,
    Cpus,
}

/// What a limit's number counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Seconds,
    Count,
    /// Thousandths of a cpu, written as a decimal (`0.5`).
    Cpus,
}

impl Limit {
    /// Every limit, in the order of their keys.
    pub(crate) const ALL: [Limit; 11] = [
        Limit::As,
        Limit::Core,
        Limit::Cpu,
        Limit::Fsize,
        Limit::Nofile,
        Limit::Nproc,
        Limit::Stack,
        Limit::Walltime,
        Limit::Memory,
        Limit::Pids,
        Limit::Cpus,
    ];

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
            Limit::Memory => "memory",
            Limit::Pids => "pids",
            Limit::Cpus => "cpus",
        }
    }

    pub(crate) fn unit(self) -> Unit {
        match self {
            Limit::As | Limit::Core | Limit::Fsize | Limit::Stack | Limit::Memory => Unit::Bytes,
            Limit::Cpu | Limit::Walltime => Unit::Seconds,
            Limit::Nofile | Limit::Nproc | Limit::Pids => Unit::Count,
            Limit::Cpus => Unit::Cpus,
        }
    }

    /// The smallest value that means something: a time limit of 0 seconds would kill the
    /// command before it did anything.
    pub(crate) fn min(self) -> u64 {
        match self.unit() {
            Unit::Seconds | Unit::Cpus => 1,
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
        *self.slot_mut(limit) = value;
    }

    fn slot(&self, limit: Limit) -> &Option<u64> {
        match limit {
            Limit::As => &self.as_,
            Limit::Core => &self.core,
            Limit::Cpu => &self.cpu,
            Limit::Fsize => &self.fsize,
            Limit::Nofile => &self.nofile,
            Limit::Nproc => &self.nproc,
            Limit::Stack => &self.stack,
            Limit::Walltime => &self.walltime,
            Limit::Memory => &self.memory,
            Limit::Pids => &self.pids,
            Limit::Cpus => &self.cpus,
        }
    }

    fn slot_mut(&mut self, limit: Limit) -> &mut Option<u64> {
        match limit {
            Limit::As => &mut self.as_,
            Limit::Core => &mut self.core,
            Limit::Cpu => &mut self.cpu,
            Limit::Fsize => &mut self.fsize,
            Limit::Nofile => &mut self.nofile,
            Limit::Nproc => &mut self.nproc,
            Limit::Stack => &mut self.stack,
            Limit::Walltime => &mut self.walltime,
            Limit::Memory => &mut self.memory,
            Limit::Pids => &mut self.pids,
            Limit::Cpus => &mut self.cpus,
        }
    }

    /// The limits that are set, in the order of their keys here: as, core, cpu, fsize,
    /// nofile, nproc, stack, walltime.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Limit, u64)> {
        self.values()
            .into_iter()
            .filter_map(|(limit, value)| Some((limit, value?)))
    }

    fn values(&self) -> [(Limit, Option<u64>); 11] {
        Limit::ALL.map(|limit| (limit, *self.slot(limit)))
    }
}
