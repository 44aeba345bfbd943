//! `hakoniwa run` and `hakoniwa trace`: options -> Executor -> result -> exit status.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::args::{self, Id, RUN_OPTIONS};
use super::{help, limits};
use crate::error::Error;
use crate::executor::{Executor, Sandbox, default_shell};
use crate::log::{self, Level, info};
use crate::policy::SandboxPolicy;
use crate::report::{ExecutorResult, ExecutorResultStatus, ReportFile};
use crate::sandbox;

const LOG: &str = "hakoniwa::cli::run";

/// What the command is run for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    /// Count its system calls instead of filtering them, and print an allowlist.
    Trace,
}

pub(crate) fn main(args: &[OsString], mode: Mode) -> Result<i32, Error> {
    // Quiet holds for a bad option too, found before the options are understood.
    let options = args.iter().take_while(|a| *a != "--");
    if options.into_iter().any(|a| a == "-q" || a == "--quiet") {
        super::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let parsed = args::parse(RUN_OPTIONS, args)?;
    if parsed.has(Id::Help) {
        print!(
            "{}",
            if mode == Mode::Trace {
                help::trace()
            } else {
                help::run()
            }
        );
        return Ok(0);
    }
    log::set_level(log_level(&parsed)?);

    // Opened before anything runs (see ReportFile), and written for every run from here on:
    // one whose options turn out bad too.
    let mut report = match parsed.options.iter().rfind(|(id, _)| *id == Id::ReportFile) {
        Some((_, path)) => {
            let path = Path::new(path.as_deref().unwrap_or_default());
            Some(ReportFile::create("--report-file", path)?)
        }
        None => None,
    };
    let result = match executor(&parsed, mode) {
        Ok(mut executor) => executor.run(),
        Err(error) => ExecutorResult::setup_error(error.to_string(), sandbox::SETUP_FAILED),
    };
    if result.status == ExecutorResultStatus::SandboxSetupError {
        super::complain(format_args!("{}", result.reason));
    } else if mode == Mode::Trace {
        super::write_stderr(&trace_summary(&result.syscalls));
    }
    if let Some(report) = &mut report {
        report.write(&result)?;
    }
    Ok(result.exit_status())
}

/// The executor the options describe; the error names the option at fault.
fn executor(parsed: &args::Parsed, mode: Mode) -> Result<Executor, Error> {
    let sandbox = Sandbox::from_policy(chosen_policy(parsed)?);
    info!(LOG, "Configuration: {:?}", sandbox.policy().name());
    let argv = if parsed.rest.is_empty() {
        vec![default_shell()]
    } else {
        parsed.rest.clone()
    };
    let mut executor = sandbox.command(&argv[0], &argv);
    for (id, value) in &parsed.options {
        apply(&mut executor, *id, value.as_deref().unwrap_or_default()).map_err(|e| {
            let long = RUN_OPTIONS
                .iter()
                .find(|o| o.id == *id)
                .map_or("", |o| o.long);
            Error::Usage(format!("--{long}: {e}"))
        })?;
    }
    executor.relay_signals(true);
    if mode == Mode::Trace {
        if parsed.has(Id::Seccomp) || parsed.has(Id::SocketFamilies) {
            return Err(Error::Usage(
                "trace replaces the seccomp filter: --seccomp and --socket-families do not apply"
                    .into(),
            ));
        }
        executor.trace_syscalls(true);
    }
    Ok(executor)
}

/// `-v` info, `-vv` debug, `-q` nothing; else `HAKONIWA_LOG` (`off`, `info`, `debug`).
fn log_level(parsed: &args::Parsed) -> Result<Level, Error> {
    if parsed.has(Id::Quiet) {
        return Ok(Level::Off);
    }
    match parsed
        .options
        .iter()
        .filter(|(id, _)| *id == Id::Verbose)
        .count()
    {
        0 => {}
        1 => return Ok(Level::Info),
        _ => return Ok(Level::Debug),
    }
    match std::env::var("HAKONIWA_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "off" => Ok(Level::Off),
        "info" => Ok(Level::Info),
        "debug" => Ok(Level::Debug),
        other => Err(Error::Usage(format!(
            "HAKONIWA_LOG={other:?}: expected off, info or debug"
        ))),
    }
}

/// What `hakoniwa trace` prints on stderr once the command has ended: each system call with
/// its count, then a `[seccomp]` table that allows exactly those calls.
fn trace_summary(syscalls: &[(String, u64)]) -> String {
    let total: u64 = syscalls.iter().map(|(_, n)| n).sum();
    let mut out = format!(
        "hakoniwa: trace: {} system calls made {total} times\n",
        syscalls.len()
    );
    for (name, count) in syscalls {
        out.push_str(&format!("{count:>10}  {name}\n"));
    }
    let mut names: Vec<&str> = syscalls.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    out.push_str(
        "# An allowlist for this command, to paste into a policy:\n[seccomp]\nsyscalls = [\n",
    );
    for chunk in names.chunks(6) {
        let quoted: Vec<String> = chunk.iter().map(|n| format!("{n:?}")).collect();
        out.push_str(&format!("  {},\n", quoted.join(", ")));
    }
    out.push_str("]\ndismatch_action = \"kill_process\"\n");
    out
}

/// The policy `--policy-file` or `--policy` names, else the embedded KISS policy.
fn chosen_policy(parsed: &args::Parsed) -> Result<SandboxPolicy, Error> {
    let chosen: Vec<&(Id, Option<OsString>)> = parsed
        .options
        .iter()
        .filter(|(id, _)| matches!(id, Id::PolicyFile | Id::Policy))
        .collect();
    match chosen.as_slice() {
        [] => Ok(SandboxPolicy::kiss()),
        [(Id::PolicyFile, Some(file))] => SandboxPolicy::from_file(file),
        [(_, Some(name))] => utf8(name)
            .and_then(SandboxPolicy::embedded)
            .map_err(|e| Error::Usage(format!("--policy: {e}"))),
        _ => Err(Error::Usage(
            "give one policy: --policy-file and --policy exclude each other and may appear once"
                .into(),
        )),
    }
}

/// Applies one option to the executor.
fn apply(executor: &mut Executor, id: Id, value: &OsStr) -> Result<(), Error> {
    match id {
        Id::Help | Id::Verbose | Id::Quiet | Id::ReportFile | Id::PolicyFile | Id::Policy => {}
        Id::ShareNet => {
            executor.share_net(true);
        }
        Id::ShareUts => {
            executor.share_uts(true);
        }
        Id::ShareIpc => {
            executor.share_ipc(true);
        }
        Id::Uid => {
            executor.uid(parse_id(value)?)?;
        }
        Id::Gid => {
            executor.gid(parse_id(value)?)?;
        }
        Id::Hostname => {
            executor.hostname(utf8(value)?)?;
        }
        Id::RoBind | Id::RwBind => {
            let (source, target) = split_bind(value);
            match id {
                Id::RoBind => executor.ro_bind(source, target)?,
                _ => executor.rw_bind(source, target)?,
            };
        }
        Id::RoBindTry | Id::RwBindTry => {
            let (source, target) = split_bind(value);
            match id {
                Id::RoBindTry => executor.ro_bind_try(source, target)?,
                _ => executor.rw_bind_try(source, target)?,
            };
        }
        Id::Tmpfs => {
            let (target, options) = split_first(value, b':');
            executor.tmpfs_with_options(
                target,
                &String::from_utf8_lossy(options.unwrap_or_default()),
            )?;
        }
        Id::Devfs => {
            executor.devfs(value)?;
        }
        Id::Proc => {
            executor.proc(value)?;
        }
        Id::Dir => {
            let (target, mode) = split_first(value, b':');
            let mode = match mode {
                None => 0o755,
                Some(mode) => std::str::from_utf8(mode)
                    .ok()
                    .and_then(|m| u32::from_str_radix(m, 8).ok())
                    .ok_or_else(|| {
                        Error::InvalidInput(format!("{value:?}: MODE is not an octal number"))
                    })?,
            };
            executor.dir(target, mode)?;
        }
        Id::Symlink => {
            let (original, link) = split_first(value, b':');
            let link =
                link.ok_or_else(|| Error::InvalidInput(format!("{value:?} is not TARGET:LINK")))?;
            executor.symlink(original, OsStr::from_bytes(link))?;
        }
        Id::File => {
            let (target, contents) = split_first(value, b':');
            let contents = contents
                .ok_or_else(|| Error::InvalidInput(format!("{value:?} is not DEST:CONTENTS")))?;
            executor.file(target, contents)?;
        }
        Id::FileFrom => {
            let (target, host) = split_first(value, b':');
            let host = Path::new(OsStr::from_bytes(host.ok_or_else(|| {
                Error::InvalidInput(format!("{value:?} is not DEST:HOSTPATH"))
            })?));
            let contents = read_host_file(host)?;
            executor.file(target, contents)?;
        }
        Id::Chdir => {
            executor.cwd(value)?;
        }
        Id::WorkDir => {
            executor.work_dir(value)?;
        }
        Id::Setenv => {
            let bytes = value.as_bytes();
            let eq = bytes
                .iter()
                .position(|b| *b == b'=')
                .ok_or_else(|| Error::InvalidInput(format!("{value:?} is not NAME=VALUE")))?;
            executor.setenv(
                OsStr::from_bytes(&bytes[..eq]),
                OsStr::from_bytes(&bytes[eq + 1..]),
            )?;
        }
        Id::Seccomp => {
            executor.seccomp(value)?;
        }
        Id::LandlockRo => {
            executor.landlock_ro(value);
        }
        Id::LandlockRx => {
            executor.landlock_rx(value);
        }
        Id::LandlockRw => {
            executor.landlock_rw(value);
        }
        Id::LandlockTcpBind | Id::LandlockTcpConnect => {
            let port = utf8(value)?
                .parse::<u16>()
                .map_err(|_| Error::InvalidInput(format!("{value:?} is not a TCP port")))?;
            match id {
                Id::LandlockTcpBind => executor.landlock_tcp_bind(port),
                _ => executor.landlock_tcp_connect(port),
            };
        }
        Id::LandlockStrict => {
            executor.landlock_strict(true);
        }
        Id::CgroupParent => {
            executor.cgroup_parent(value);
        }
        Id::CapAdd => {
            executor.cap_add(utf8(value)?)?;
        }
        Id::SocketFamilies => {
            let list = utf8(value)?;
            executor.socket_families(list.split(',').map(str::trim).filter(|f| !f.is_empty()))?;
        }
        Id::Limit(limit) => {
            executor.limit(limit, Some(limits::parse(limit, value)?));
        }
    }
    Ok(())
}

fn utf8(value: &OsStr) -> Result<&str, Error> {
    value
        .to_str()
        .ok_or_else(|| Error::InvalidInput(format!("{value:?} is not valid UTF-8")))
}

/// A user or group id: a decimal number that fits 32 bits (the executor refuses 2^32 - 1).
fn parse_id(value: &OsStr) -> Result<u32, Error> {
    utf8(value)?
        .parse::<u32>()
        .map_err(|_| Error::InvalidInput(format!("{value:?} is not a valid id")))
}

/// `A:B` split at the first `separator`: `(A, Some(B))`, or `(whole, None)` without one.
fn split_first(value: &OsStr, separator: u8) -> (&OsStr, Option<&[u8]>) {
    let bytes = value.as_bytes();
    match bytes.iter().position(|b| *b == separator) {
        Some(at) => (OsStr::from_bytes(&bytes[..at]), Some(&bytes[at + 1..])),
        None => (value, None),
    }
}

/// The largest host file `--file-from` copies.
const FILE_FROM_MAX: u64 = 16 << 20;

/// Reads a host file for `--file-from`, at most 16 MiB of it.
fn read_host_file(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| Error::path("host file", path, e))?;
    let mut contents = Vec::new();
    file.take(FILE_FROM_MAX + 1)
        .read_to_end(&mut contents)
        .map_err(|e| Error::path("host file", path, e))?;
    if contents.len() as u64 > FILE_FROM_MAX {
        return Err(Error::InvalidInput(format!(
            "host file {path:?} is larger than 16 MiB"
        )));
    }
    Ok(contents)
}

/// `SRC[:DEST]`: split at the first colon; DEST defaults to SRC made absolute.
fn split_bind(value: &OsStr) -> (PathBuf, PathBuf) {
    match split_first(value, b':') {
        (source, Some(target)) => (
            PathBuf::from(source),
            PathBuf::from(OsStr::from_bytes(target)),
        ),
        (source, None) => (PathBuf::from(source), sandbox::absolute(Path::new(source))),
    }
}
