//! The policy schema: a TOML table -> `SandboxPolicy`, every error at a position.
//!
//! ```toml
//! share_net = false            # also share_uts, share_ipc
//! uid = 0                      # and gid; the caller's ids by default
//! hostname = "box"
//! cwd = "/job"
//! mounts = [
//!   { source = "/usr", target = "/usr" },               # a read-only bind
//!   { source = "/data", rw = true },                    # target defaults to source
//!   { target = "/proc", fstype = "proc" },              # also "tmpfs" and "devfs"
//! ]
//! dirs = [{ target = "/tmp", mode = 0o1777 }]
//! files = [{ target = "/etc/hostname", contents = "box\n" }]
//! symlinks = [{ original = "usr/bin", link = "/bin" }]
//! [env]
//! LANG = "C.UTF-8"
//! [limits]
//! cpu = 2                      # also as, core, fsize, nofile, nproc, stack, walltime
//! [seccomp]
//! profile = "default"          # or: syscalls = [...], dismatch_action, errno
//! socket_families = ["unix", "inet", "inet6"]
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::toml::{Entry, Item, Table, TextError, Value, fail};
use super::{FsEntry, Limit, Limits, Mount, MountKind, SandboxPolicy};
use crate::sandbox::LandlockSpec;
use crate::seccomp::profile::{Action, Name, Profile, Rule};
use crate::seccomp::{self, Base, SeccompSpec};

type Result<T> = std::result::Result<T, TextError>;

const TOP_KEYS: &[&str] = &[
    "share_net",
    "share_uts",
    "share_ipc",
    "uid",
    "gid",
    "hostname",
    "cwd",
    "mounts",
    "dirs",
    "files",
    "symlinks",
    "env",
    "limits",
    "seccomp",
    "landlock",
];
const MOUNT_KEYS: &[&str] = &["source", "target", "fstype", "rw", "options"];
const DIR_KEYS: &[&str] = &["target", "mode"];
const FILE_KEYS: &[&str] = &["target", "contents"];
const SYMLINK_KEYS: &[&str] = &["original", "link"];

/// Checks a whole policy document.
pub(crate) fn read(root: &Table) -> Result<SandboxPolicy> {
    check_keys(root, TOP_KEYS, "")?;
    let mut policy = SandboxPolicy::empty();
    let (mut mounts, mut dirs, mut files, mut symlinks) = (vec![], vec![], vec![], vec![]);
    for entry in root.entries() {
        let item = &entry.item;
        match entry.key.as_str() {
            "share_net" => policy.share_net = boolean(entry)?,
            "share_uts" => policy.share_uts = boolean(entry)?,
            "share_ipc" => policy.share_ipc = boolean(entry)?,
            "uid" => policy.uid = Some(id(entry)?),
            "gid" => policy.gid = Some(id(entry)?),
            "hostname" => {
                let name = string(entry)?;
                super::check_hostname(name).map_err(|message| TextError {
                    at: item.at,
                    message,
                })?;
                policy.hostname = Some(name.to_string());
            }
            "cwd" if string(entry)? == "/" => policy.cwd = Some(PathBuf::from("/")),
            "cwd" => policy.cwd = Some(absolute(entry)?),
            "mounts" => mounts = tables_of(entry, "a mount", MOUNT_KEYS, mount)?,
            "dirs" => dirs = tables_of(entry, "a dir", DIR_KEYS, dir)?,
            "files" => files = tables_of(entry, "a file", FILE_KEYS, file)?,
            "symlinks" => symlinks = tables_of(entry, "a symlink", SYMLINK_KEYS, symlink)?,
            "env" => policy.env = env(entry)?,
            "limits" => policy.limits = limits(entry)?,
            "seccomp" => policy.seccomp = seccomp(entry)?,
            "landlock" => policy.landlock = landlock(entry)?,
            _ => {}
        }
    }
    policy.filesystem = mounts
        .into_iter()
        .chain(dirs)
        .chain(files)
        .chain(symlinks)
        .collect();
    Ok(policy)
}

/// Refuses keys not in `known`, suggesting the nearest known one.
fn check_keys(table: &Table, known: &[&str], within: &str) -> Result<()> {
    for entry in table.entries() {
        if known.contains(&entry.key.as_str()) {
            continue;
        }
        let hint = match crate::suggest::nearest(&entry.key, known.iter().copied()) {
            Some(near) => format!(" (did you mean {near:?}?)"),
            None => format!(" (expected one of {})", known.join(", ")),
        };
        return fail(
            entry.key_at,
            format!("unknown key {:?}{within}{hint}", entry.key),
        );
    }
    Ok(())
}

fn mismatch<T>(entry: &Entry, expected: &str) -> Result<T> {
    fail(
        entry.item.at,
        format!(
            "expected {expected} for {:?}, found {}",
            entry.key,
            entry.item.value.kind()
        ),
    )
}

fn boolean(entry: &Entry) -> Result<bool> {
    match entry.item.value {
        Value::Boolean(b) => Ok(b),
        _ => mismatch(entry, "a boolean"),
    }
}

fn string(entry: &Entry) -> Result<&str> {
    match &entry.item.value {
        Value::String(s) => Ok(s),
        _ => mismatch(entry, "a string"),
    }
}

fn integer(entry: &Entry, max: u64) -> Result<u64> {
    match entry.item.value {
        Value::Integer(n) => match u64::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => fail(
                entry.item.at,
                format!("{:?} must be between 0 and {max}", entry.key),
            ),
        },
        _ => mismatch(entry, "an integer"),
    }
}

/// A user or group id: 2^32 - 1 means "no id" to the kernel.
fn id(entry: &Entry) -> Result<u32> {
    integer(entry, u64::from(u32::MAX - 1)).map(|n| n as u32)
}

/// An absolute path inside the sandbox, without `..`.
fn absolute(entry: &Entry) -> Result<PathBuf> {
    let path = Path::new(string(entry)?);
    crate::sandbox::check_target(path).map_err(|why| TextError {
        at: entry.item.at,
        message: format!("{:?} {why}", entry.key),
    })?;
    Ok(path.to_path_buf())
}

/// An array of tables, each checked against `keys` and read by `read`.
fn tables_of(
    entry: &Entry,
    what: &str,
    keys: &[&str],
    read: fn(&Table, usize) -> Result<FsEntry>,
) -> Result<Vec<FsEntry>> {
    let Value::Array(items) = &entry.item.value else {
        return mismatch(entry, "an array of tables");
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Item {
            value: Value::Table(table),
            at,
        } = item
        else {
            return fail(
                item.at,
                format!(
                    "expected {what} (a table) in {:?}, found {}",
                    entry.key,
                    item.value.kind()
                ),
            );
        };
        check_keys(table, keys, &format!(" in {what}"))?;
        out.push(read(table, *at)?);
    }
    Ok(out)
}

fn mount(table: &Table, at: usize) -> Result<FsEntry> {
    let kind = match table.get("fstype") {
        None => MountKind::Bind,
        Some(entry) => match string(entry)? {
            "" => MountKind::Bind,
            "proc" => MountKind::Proc,
            "tmpfs" => MountKind::Tmpfs,
            "devfs" => MountKind::Devfs,
            other => {
                return fail(
                    entry.item.at,
                    format!(
                        "unknown fstype {other:?} (expected \"\" for a bind, \"proc\", \"tmpfs\" or \"devfs\")"
                    ),
                );
            }
        },
    };
    let source = table.get("source").map(string).transpose()?;
    let target = table.get("target").map(absolute).transpose()?;
    let rw = table.get("rw").map(boolean).transpose()?;
    let (source, target) = match (kind, source, target) {
        (MountKind::Bind, Some(source), target) => {
            let target = match target {
                Some(target) => target,
                None => {
                    let entry = table.get("source").ok_or_else(|| TextError {
                        at,
                        message: "missing source".into(),
                    })?;
                    absolute(entry).map_err(|e| TextError {
                        message: format!("{} (give \"target\" for a relative source)", e.message),
                        ..e
                    })?
                }
            };
            (PathBuf::from(source), target)
        }
        (MountKind::Bind, None, _) => {
            return fail(
                at,
                "a bind mount needs \"source\" (or an fstype: \"proc\", \"tmpfs\", \"devfs\")",
            );
        }
        (_, Some(_), _) => {
            let entry = table.get("source").map_or(at, |e| e.key_at);
            return fail(entry, "\"source\" applies to bind mounts only");
        }
        (_, None, None) => return fail(at, "a mount needs \"target\""),
        (_, None, Some(target)) => (PathBuf::new(), target),
    };
    if kind != MountKind::Bind && rw.is_some() {
        let key_at = table.get("rw").map_or(at, |e| e.key_at);
        return fail(key_at, "\"rw\" applies to bind mounts only");
    }
    let options = match table.get("options") {
        None => Vec::new(),
        Some(entry) if kind == MountKind::Tmpfs => {
            super::tmpfs_options(string(entry)?).map_err(|message| TextError {
                at: entry.item.at,
                message,
            })?
        }
        Some(entry) => return fail(entry.key_at, "\"options\" applies to tmpfs mounts only"),
    };
    Ok(FsEntry::Mount(Mount {
        source,
        target,
        kind,
        rw: rw.unwrap_or(false),
        required: false,
        options,
    }))
}

fn required<'t>(table: &'t Table, key: &str, at: usize, what: &str) -> Result<&'t Entry> {
    table.get(key).ok_or_else(|| TextError {
        at,
        message: format!("{what} needs {key:?}"),
    })
}

fn dir(table: &Table, at: usize) -> Result<FsEntry> {
    let target = absolute(required(table, "target", at, "a dir")?)?;
    let mode = table
        .get("mode")
        .map(|e| integer(e, 0o7777))
        .transpose()?
        .unwrap_or(0o755);
    Ok(FsEntry::Dir {
        target,
        mode: mode as u32,
    })
}

fn file(table: &Table, at: usize) -> Result<FsEntry> {
    let target = absolute(required(table, "target", at, "a file")?)?;
    let contents = string(required(table, "contents", at, "a file")?)?;
    Ok(FsEntry::File {
        target,
        contents: contents.as_bytes().to_vec(),
    })
}

fn symlink(table: &Table, at: usize) -> Result<FsEntry> {
    let original = required(table, "original", at, "a symlink")?;
    let link = absolute(required(table, "link", at, "a symlink")?)?;
    if string(original)?.is_empty() {
        return fail(original.item.at, "\"original\" must not be empty");
    }
    Ok(FsEntry::Symlink {
        original: OsString::from(string(original)?),
        link,
    })
}

fn sub_table(entry: &Entry) -> Result<&Table> {
    match &entry.item.value {
        Value::Table(t) => Ok(t),
        _ => mismatch(entry, "a table"),
    }
}

fn env(entry: &Entry) -> Result<Vec<(OsString, OsString)>> {
    let table = sub_table(entry)?;
    let mut vars = Vec::with_capacity(table.entries().len());
    for var in table.entries() {
        if var.key.is_empty() || var.key.contains(['=', '\0']) {
            return fail(
                var.key_at,
                format!("{:?} is not a valid environment variable name", var.key),
            );
        }
        let value = string(var)?;
        if value.contains('\0') {
            return fail(
                var.item.at,
                format!("the value of {:?} contains a NUL byte", var.key),
            );
        }
        vars.push((OsString::from(&var.key), OsString::from(value)));
    }
    Ok(vars)
}

fn limits(entry: &Entry) -> Result<Limits> {
    let table = sub_table(entry)?;
    let keys = Limit::ALL.map(Limit::key);
    check_keys(table, &keys, " in [limits]")?;
    let mut limits = Limits::default();
    for (limit, value) in table.entries().iter().filter_map(|e| {
        Limit::ALL
            .into_iter()
            .find(|l| l.key() == e.key)
            .map(|l| (l, e))
    }) {
        let number = match (&value.item.value, limit) {
            // cpus may be fractional; TOML floats are not supported in policies, so a
            // fraction is written as a string.
            (Value::String(text), Limit::Cpus) => {
                crate::sandbox::parse_cpus(text).ok_or_else(|| TextError {
                    at: value.item.at,
                    message: format!("{text:?} is not a number of cpus (like \"0.5\" or 2)"),
                })?
            }
            (_, Limit::Cpus) => integer(value, u64::MAX / 1000)? * 1000,
            _ => integer(value, i64::MAX as u64)?,
        };
        if number < limit.min() {
            return fail(
                value.item.at,
                format!("{:?} must be at least {}", value.key, limit.min()),
            );
        }
        limits.set(limit, Some(number));
    }
    Ok(limits)
}

const SECCOMP_KEYS: &[&str] = &[
    "profile",
    "syscalls",
    "dismatch_action",
    "errno",
    "socket_families",
];

/// `[seccomp]`: an embedded `profile`, or the seed's filter (`syscalls` with a
/// `dismatch_action`, and `errno` to answer with an error instead of killing), and
/// optionally `socket_families`.
fn seccomp(entry: &Entry) -> Result<SeccompSpec> {
    let table = sub_table(entry)?;
    check_keys(table, SECCOMP_KEYS, " in [seccomp]")?;
    let mut spec = SeccompSpec::default();
    let errno = table
        .get("errno")
        .map(|e| integer(e, 4095))
        .transpose()?
        .map(|n| n as u32);
    let dismatch = table.get("dismatch_action");
    match (table.get("profile"), table.get("syscalls")) {
        (Some(profile), Some(_)) => {
            return fail(
                profile.key_at,
                "give \"profile\" or \"syscalls\" in [seccomp], not both",
            );
        }
        (Some(profile), None) => {
            let name = string(profile)?;
            spec.base = SeccompSpec::named(name).ok_or_else(|| TextError {
                at: profile.item.at,
                message: format!(
                    "unknown seccomp profile {name:?} (expected {})",
                    seccomp::profile_names()
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        }
        (None, Some(syscalls)) => {
            let Value::Array(items) = &syscalls.item.value else {
                return mismatch(syscalls, "an array of strings");
            };
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match &item.value {
                    Value::String(s) => names.push(Name {
                        text: s.clone(),
                        at: item.at,
                    }),
                    other => {
                        return fail(
                            item.at,
                            format!("expected a system call name, found {}", other.kind()),
                        );
                    }
                }
            }
            let deny = errno.map_or(Action::KillProcess, Action::Errno);
            let (default, action) = match dismatch.map(string).transpose()? {
                None | Some("kill_process") => (deny, Action::Allow),
                Some("allow") => (Action::Allow, deny),
                Some("log") if errno.is_none() => (Action::Log, Action::Allow),
                Some("log") => {
                    let at = table.get("errno").map_or(entry.key_at, |e| e.key_at);
                    return fail(
                        at,
                        "\"errno\" goes with dismatch_action \"kill_process\" or \"allow\"",
                    );
                }
                Some(other) => {
                    let at = dismatch.map_or(entry.key_at, |e| e.item.at);
                    return fail(
                        at,
                        format!(
                            "unknown dismatch_action {other:?} (expected \"kill_process\", \"log\" or \"allow\")"
                        ),
                    );
                }
            };
            let rule = Rule {
                action,
                syscalls: names,
                when: Vec::new(),
                at: syscalls.item.at,
            };
            let profile = Profile {
                description: String::new(),
                default,
                rules: vec![rule],
            };
            // Unknown system calls and groups are reported here, at their position.
            seccomp::check(&profile).map_err(|(at, message)| TextError { at, message })?;
            spec.base = Base::Profile {
                name: "policy".into(),
                profile,
            };
        }
        (None, None) => {
            if let Some(key) = dismatch.or(table.get("errno")) {
                return fail(
                    key.key_at,
                    format!("{:?} needs \"syscalls\" in [seccomp]", key.key),
                );
            }
        }
    }
    if let Some(families) = table.get("socket_families") {
        let Value::Array(items) = &families.item.value else {
            return mismatch(families, "an array of strings");
        };
        let mut numbers = Vec::with_capacity(items.len());
        for item in items {
            let family = match &item.value {
                Value::String(name) => seccomp::socket_family(name),
                _ => None,
            };
            numbers.push(family.ok_or_else(|| TextError {
                at: item.at,
                message: format!(
                    "unknown socket family (expected {})",
                    seccomp::socket_family_names()
                ),
            })?);
        }
        spec.socket_families = Some(numbers);
    }
    Ok(spec)
}

const LANDLOCK_KEYS: &[&str] = &["ro", "rx", "rw", "tcp_bind", "tcp_connect", "strict"];

/// `[landlock]`: `ro`, `rx`, `rw` (paths inside the sandbox), `tcp_bind`, `tcp_connect`
/// (ports) and `strict`.
fn landlock(entry: &Entry) -> Result<LandlockSpec> {
    let table = sub_table(entry)?;
    check_keys(table, LANDLOCK_KEYS, " in [landlock]")?;
    let mut spec = LandlockSpec::default();
    for entry in table.entries() {
        let items = || match &entry.item.value {
            Value::Array(items) => Ok(items),
            _ => mismatch(entry, "an array"),
        };
        match entry.key.as_str() {
            "strict" => spec.strict = boolean(entry)?,
            "ro" | "rx" | "rw" => {
                let mut paths = Vec::new();
                for item in items()? {
                    let Value::String(path) = &item.value else {
                        return fail(item.at, format!("expected a path in {:?}", entry.key));
                    };
                    crate::sandbox::check_target(Path::new(path)).map_err(|why| TextError {
                        at: item.at,
                        message: format!("{path:?} {why}"),
                    })?;
                    paths.push(PathBuf::from(path));
                }
                match entry.key.as_str() {
                    "ro" => spec.ro = paths,
                    "rx" => spec.rx = paths,
                    _ => spec.rw = paths,
                }
            }
            _ => {
                let mut ports = Vec::new();
                for item in items()? {
                    match item.value {
                        Value::Integer(n) if (0..=65535).contains(&n) => ports.push(n as u16),
                        _ => {
                            return fail(
                                item.at,
                                format!("expected a TCP port (0 to 65535) in {:?}", entry.key),
                            );
                        }
                    }
                }
                match entry.key.as_str() {
                    "tcp_bind" => spec.tcp_bind = ports,
                    _ => spec.tcp_connect = ports,
                }
            }
        }
    }
    Ok(spec)
}
