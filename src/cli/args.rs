//! The option table and the argv parser it drives.
//!
//! Forms: `--long VALUE`, `--long=VALUE`, `-s VALUE`, `-sVALUE`, and combined short flags
//! (`-vv`). Parsing stops at `--` or at the first argument that is not an option: what
//! follows is the command, never options.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::error::Error;
use crate::policy::Limit;

/// What an option does; `run.rs` acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Id {
    Help,
    Quiet,
    PolicyFile,
    Policy,
    Verbose,
    ShareNet,
    ShareUts,
    ShareIpc,
    Uid,
    Gid,
    Hostname,
    RoBind,
    RwBind,
    RoBindTry,
    RwBindTry,
    Tmpfs,
    Devfs,
    Proc,
    Dir,
    Symlink,
    File,
    FileFrom,
    Chdir,
    WorkDir,
    Setenv,
    Seccomp,
    SocketFamilies,
    CapAdd,
    CgroupParent,
    LandlockRo,
    LandlockRx,
    LandlockRw,
    LandlockTcpBind,
    LandlockTcpConnect,
    LandlockStrict,
    Limit(Limit),
    ReportFile,
}

/// One row of an option table.
pub(crate) struct Opt {
    pub(crate) id: Id,
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    /// The value's name in help (`SRC[:DEST]`), or `None` for a flag.
    pub(crate) value: Option<&'static str>,
    pub(crate) help: &'static str,
    /// The heading the option is listed under.
    pub(crate) group: &'static str,
}

const fn opt(
    id: Id,
    long: &'static str,
    short: Option<char>,
    value: Option<&'static str>,
    group: &'static str,
    help: &'static str,
) -> Opt {
    Opt {
        id,
        long,
        short,
        value,
        help,
        group,
    }
}

const POLICY: &str = "Policy";
const NAMESPACES: &str = "Namespaces";
const FILESYSTEM: &str = "Filesystem";
const PROCESS: &str = "Process";
const SECURITY: &str = "Security";
const LIMITS: &str = "Limits";
const OUTPUT: &str = "Output";

/// The subcommands of `hakoniwa`, with what they do.
pub(crate) const COMMANDS: &[(&str, &str)] = &[
    ("run", "Run a command in a sandbox"),
    (
        "trace",
        "Run a command and count its system calls; print an allowlist",
    ),
    ("policy", "List, show and check policies"),
    ("seccomp", "List seccomp profiles and system call groups"),
    (
        "completion",
        "Print a completion script for bash, zsh or fish",
    ),
    ("man", "Print the manual page (roff)"),
    ("help", "Print help for hakoniwa or for a command"),
];

/// The options of `hakoniwa run`.
pub(crate) const RUN_OPTIONS: &[Opt] = &[
    opt(
        Id::PolicyFile,
        "policy-file",
        Some('p'),
        Some("FILE"),
        POLICY,
        "Use the policy in FILE [default: the embedded KISS policy]",
    ),
    opt(
        Id::Policy,
        "policy",
        None,
        Some("NAME"),
        POLICY,
        "Use an embedded policy: KISS, net or dev (see 'hakoniwa policy list')",
    ),
    opt(
        Id::ShareNet,
        "share-net",
        None,
        None,
        NAMESPACES,
        "Keep the host's network namespace",
    ),
    opt(
        Id::ShareUts,
        "share-uts",
        None,
        None,
        NAMESPACES,
        "Keep the host's UTS namespace (hostname)",
    ),
    opt(
        Id::ShareIpc,
        "share-ipc",
        None,
        None,
        NAMESPACES,
        "Keep the host's IPC namespace",
    ),
    opt(
        Id::Uid,
        "uid",
        Some('u'),
        Some("ID"),
        NAMESPACES,
        "User id inside the sandbox [default: the caller's]",
    ),
    opt(
        Id::Gid,
        "gid",
        Some('g'),
        Some("ID"),
        NAMESPACES,
        "Group id inside the sandbox [default: the caller's]",
    ),
    opt(
        Id::Hostname,
        "hostname",
        None,
        Some("NAME"),
        NAMESPACES,
        "Hostname inside the sandbox [default: hakoniwa]",
    ),
    opt(
        Id::RoBind,
        "ro-bind",
        None,
        Some("SRC[:DEST]"),
        FILESYSTEM,
        "Bind host path SRC read-only at DEST [default DEST: SRC] (repeatable)",
    ),
    opt(
        Id::RwBind,
        "rw-bind",
        None,
        Some("SRC[:DEST]"),
        FILESYSTEM,
        "Bind host path SRC read-write at DEST [default DEST: SRC] (repeatable)",
    ),
    opt(
        Id::RoBindTry,
        "ro-bind-try",
        None,
        Some("SRC[:DEST]"),
        FILESYSTEM,
        "Like --ro-bind, but skip a SRC that does not exist",
    ),
    opt(
        Id::RwBindTry,
        "rw-bind-try",
        None,
        Some("SRC[:DEST]"),
        FILESYSTEM,
        "Like --rw-bind, but skip a SRC that does not exist",
    ),
    opt(
        Id::Tmpfs,
        "tmpfs",
        None,
        Some("DEST[:OPTS]"),
        FILESYSTEM,
        "Mount a new tmpfs (nosuid,nodev) at DEST; OPTS like size=64M,mode=1777",
    ),
    opt(
        Id::Devfs,
        "devfs",
        None,
        Some("DEST"),
        FILESYSTEM,
        "Mount a minimal /dev at DEST: harmless devices, a private devpts, shm",
    ),
    opt(
        Id::Proc,
        "proc",
        None,
        Some("DEST"),
        FILESYSTEM,
        "Mount a new proc of the sandbox at DEST",
    ),
    opt(
        Id::Dir,
        "dir",
        None,
        Some("DEST[:MODE]"),
        FILESYSTEM,
        "Create directory DEST with octal MODE [default MODE: 755]",
    ),
    opt(
        Id::Symlink,
        "symlink",
        None,
        Some("TARGET:LINK"),
        FILESYSTEM,
        "Create symlink LINK pointing to TARGET",
    ),
    opt(
        Id::File,
        "file",
        None,
        Some("DEST:CONTENTS"),
        FILESYSTEM,
        "Create file DEST holding CONTENTS",
    ),
    opt(
        Id::FileFrom,
        "file-from",
        None,
        Some("DEST:HOSTPATH"),
        FILESYSTEM,
        "Create file DEST holding a copy of host file HOSTPATH",
    ),
    opt(
        Id::Chdir,
        "chdir",
        None,
        Some("DIR"),
        FILESYSTEM,
        "Start the command in DIR [default: /]",
    ),
    opt(
        Id::WorkDir,
        "work-dir",
        Some('w'),
        Some("DIR"),
        FILESYSTEM,
        "Bind host directory DIR read-write at /hako and start there",
    ),
    opt(
        Id::Setenv,
        "setenv",
        None,
        Some("NAME=VALUE"),
        PROCESS,
        "Set an environment variable of the command (repeatable)",
    ),
    opt(
        Id::Seccomp,
        "seccomp",
        None,
        Some("NAME|FILE"),
        SECURITY,
        "Seccomp filter: default, log, unconfined, or a profile file [default: default]",
    ),
    opt(
        Id::SocketFamilies,
        "socket-families",
        None,
        Some("LIST"),
        SECURITY,
        "Only these socket families work (e.g. unix,inet,inet6); others give EAFNOSUPPORT",
    ),
    opt(
        Id::CapAdd,
        "cap-add",
        None,
        Some("CAP"),
        SECURITY,
        "Keep capability CAP (CAP_NET_RAW, or ALL) for a command run as --uid 0 (repeatable)",
    ),
    opt(
        Id::LandlockRo,
        "landlock-ro",
        None,
        Some("PATH"),
        SECURITY,
        "Landlock: the command may read PATH (repeatable; then it may read nothing else)",
    ),
    opt(
        Id::LandlockRx,
        "landlock-rx",
        None,
        Some("PATH"),
        SECURITY,
        "Landlock: the command may read and execute PATH (repeatable)",
    ),
    opt(
        Id::LandlockRw,
        "landlock-rw",
        None,
        Some("PATH"),
        SECURITY,
        "Landlock: the command may do anything under PATH (repeatable)",
    ),
    opt(
        Id::LandlockTcpBind,
        "landlock-tcp-bind",
        None,
        Some("PORT"),
        SECURITY,
        "Landlock: the command may bind TCP PORT (repeatable; then no other)",
    ),
    opt(
        Id::LandlockTcpConnect,
        "landlock-tcp-connect",
        None,
        Some("PORT"),
        SECURITY,
        "Landlock: the command may connect to TCP PORT (repeatable; then no other)",
    ),
    opt(
        Id::LandlockStrict,
        "landlock-strict",
        None,
        None,
        SECURITY,
        "Fail (125) if the kernel cannot enforce every Landlock rule [default: best effort]",
    ),
    opt(
        Id::Limit(Limit::As),
        "limit-as",
        None,
        Some("BYTES"),
        LIMITS,
        "Limit the address space (RLIMIT_AS); K, M, G suffixes",
    ),
    opt(
        Id::Limit(Limit::Core),
        "limit-core",
        None,
        Some("BYTES"),
        LIMITS,
        "Limit core dump size (RLIMIT_CORE); K, M, G suffixes",
    ),
    opt(
        Id::Limit(Limit::Cpu),
        "limit-cpu",
        None,
        Some("SECONDS"),
        LIMITS,
        "Limit cpu time: SIGXCPU, then SIGKILL a second later",
    ),
    opt(
        Id::Limit(Limit::Fsize),
        "limit-fsize",
        None,
        Some("BYTES"),
        LIMITS,
        "Limit the size of written files (RLIMIT_FSIZE); K, M, G suffixes",
    ),
    opt(
        Id::Limit(Limit::Nofile),
        "limit-nofile",
        None,
        Some("COUNT"),
        LIMITS,
        "Limit open descriptors (RLIMIT_NOFILE)",
    ),
    opt(
        Id::Limit(Limit::Nproc),
        "limit-nproc",
        None,
        Some("COUNT"),
        LIMITS,
        "Limit the user's processes in the sandbox (RLIMIT_NPROC)",
    ),
    opt(
        Id::Limit(Limit::Stack),
        "limit-stack",
        None,
        Some("BYTES"),
        LIMITS,
        "Limit the stack size (RLIMIT_STACK); K, M, G suffixes",
    ),
    opt(
        Id::Limit(Limit::Walltime),
        "limit-walltime",
        None,
        Some("SECONDS"),
        LIMITS,
        "Kill the whole sandbox after SECONDS of real time",
    ),
    opt(
        Id::Limit(Limit::Memory),
        "limit-memory",
        None,
        Some("BYTES"),
        LIMITS,
        "Memory of the whole sandbox (cgroup v2 memory.max; K, M, G suffixes)",
    ),
    opt(
        Id::Limit(Limit::Pids),
        "limit-pids",
        None,
        Some("COUNT"),
        LIMITS,
        "Processes and threads of the whole sandbox (cgroup v2 pids.max)",
    ),
    opt(
        Id::Limit(Limit::Cpus),
        "limit-cpus",
        None,
        Some("CPUS"),
        LIMITS,
        "Cpu share of the whole sandbox, like 0.5 (cgroup v2 cpu.max)",
    ),
    opt(
        Id::CgroupParent,
        "cgroup-parent",
        None,
        Some("DIR"),
        LIMITS,
        "Make the sandbox's cgroup under cgroup2 directory DIR [default: hakoniwa's own]",
    ),
    opt(
        Id::Verbose,
        "verbose",
        Some('v'),
        None,
        OUTPUT,
        "Log what the sandbox is made of and how the command ended (-vv: every setup step)",
    ),
    opt(
        Id::Quiet,
        "quiet",
        Some('q'),
        None,
        OUTPUT,
        "Print nothing of hakoniwa's own, not even errors: the exit status tells",
    ),
    opt(
        Id::ReportFile,
        "report-file",
        None,
        Some("FILE"),
        OUTPUT,
        "Write the result as JSON to FILE (also when setup fails)",
    ),
    opt(Id::Help, "help", Some('h'), None, OUTPUT, "Print help"),
];

/// Options in the order given, then the command and its arguments.
pub(crate) struct Parsed {
    pub(crate) options: Vec<(Id, Option<OsString>)>,
    pub(crate) rest: Vec<OsString>,
}

impl Parsed {
    pub(crate) fn has(&self, id: Id) -> bool {
        self.options.iter().any(|(i, _)| *i == id)
    }
}

/// Parses `args` against `table`.
pub(crate) fn parse(table: &'static [Opt], args: &[OsString]) -> Result<Parsed, Error> {
    let mut options = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break;
        }
        if let Some(long) = bytes.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|b| *b == b'=') {
                Some(eq) => (&long[..eq], Some(OsStr::from_bytes(&long[eq + 1..]))),
                None => (long, None),
            };
            let opt = table
                .iter()
                .find(|o| o.long.as_bytes() == name)
                .ok_or_else(|| unknown(table, &String::from_utf8_lossy(bytes)))?;
            let value = match (opt.value, inline) {
                (Some(_), Some(v)) => Some(v.to_os_string()),
                (Some(_), None) => Some(take_value(opt, args, &mut i)?),
                (None, Some(_)) => {
                    return Err(Error::Usage(format!(
                        "option '--{}' takes no value",
                        opt.long
                    )));
                }
                (None, None) => None,
            };
            options.push((opt.id, value));
        } else if bytes.len() > 1 && bytes[0] == b'-' {
            let mut j = 1;
            while let Some(&c) = bytes.get(j) {
                j += 1;
                let opt = table
                    .iter()
                    .find(|o| o.short.is_some_and(|s| s as u32 == c as u32))
                    .ok_or_else(|| unknown(table, &format!("-{}", c as char)))?;
                if opt.value.is_some() {
                    let value = match &bytes[j..] {
                        [] => take_value(opt, args, &mut i)?,
                        attached => OsStr::from_bytes(attached).to_os_string(),
                    };
                    options.push((opt.id, Some(value)));
                    break;
                }
                options.push((opt.id, None));
            }
        } else {
            i -= 1;
            break;
        }
    }
    Ok(Parsed {
        options,
        rest: args[i.min(args.len())..].to_vec(),
    })
}

fn take_value(opt: &Opt, args: &[OsString], i: &mut usize) -> Result<OsString, Error> {
    let value = args.get(*i).ok_or_else(|| {
        Error::Usage(format!(
            "option '--{}' needs a value {}",
            opt.long,
            opt.value.unwrap_or("")
        ))
    })?;
    *i += 1;
    Ok(value.clone())
}

fn unknown(table: &[Opt], given: &str) -> Error {
    let name = given.trim_start_matches('-');
    let name = name.split('=').next().unwrap_or(name);
    match crate::suggest::nearest(name, table.iter().map(|o| o.long)) {
        Some(long) => Error::Usage(format!(
            "unknown option '{given}' (did you mean '--{long}'?)"
        )),
        None => Error::Usage(format!("unknown option '{given}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn long_short_attached_and_combined_forms() {
        let p = parse(
            RUN_OPTIONS,
            &args(&[
                "--hostname=box",
                "-u",
                "0",
                "-g5",
                "-vv",
                "--ro-bind",
                "/a:/b",
                "ls",
                "-l",
            ]),
        )
        .unwrap();
        let got: Vec<(Id, Option<&str>)> = p
            .options
            .iter()
            .map(|(id, v)| (*id, v.as_deref().and_then(OsStr::to_str)))
            .collect();
        assert_eq!(
            got,
            [
                (Id::Hostname, Some("box")),
                (Id::Uid, Some("0")),
                (Id::Gid, Some("5")),
                (Id::Verbose, None),
                (Id::Verbose, None),
                (Id::RoBind, Some("/a:/b")),
            ]
        );
        assert_eq!(p.rest, args(&["ls", "-l"]));
    }

    #[test]
    fn everything_after_double_dash_is_the_command() {
        let p = parse(RUN_OPTIONS, &args(&["-v", "--", "--help", "-v"])).unwrap();
        assert_eq!(p.options.len(), 1);
        assert_eq!(p.rest, args(&["--help", "-v"]));
    }

    #[test]
    fn errors_name_the_option() {
        let e = parse(RUN_OPTIONS, &args(&["--ro-bnd", "/x"]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "unknown option '--ro-bnd' (did you mean '--ro-bind'?)");
        let e = parse(RUN_OPTIONS, &args(&["--hostname"]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "option '--hostname' needs a value NAME");
        let e = parse(RUN_OPTIONS, &args(&["--share-net=1"]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "option '--share-net' takes no value");
        let e = parse(RUN_OPTIONS, &args(&["-x"]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "unknown option '-x'");
        let e = parse(RUN_OPTIONS, &args(&["--zzzzzzzz"]))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "unknown option '--zzzzzzzz'");
    }
}
