//! cgroup v2 limits: memory, process count and cpu share for the whole sandbox.
//!
//! The supervisor makes a child cgroup under the caller's own cgroup (or `--cgroup-parent`),
//! writes the limits, and starts the sandbox in it with `clone3(CLONE_INTO_CGROUP)`, so no
//! process of the sandbox ever runs outside it. Afterwards it reads `memory.events` to tell
//! an out-of-memory kill, and removes the cgroup. A limit that cannot be had (no cgroup2, no
//! such controller, no permission) is an error, never silently dropped.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::Error;
use crate::policy::{Limit, Limits};
use crate::sys;

/// cpu.max's period, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// The cgroup limits a policy asks for, if any.
pub(crate) fn wanted(limits: &Limits) -> bool {
    limits.memory.is_some() || limits.pids.is_some() || limits.cpus.is_some()
}

/// A cgroup made for one sandbox; removed when dropped.
pub(crate) struct SandboxCgroup {
    dir: PathBuf,
    /// The directory, for CLONE_INTO_CGROUP.
    pub(crate) fd: OwnedFd,
    /// What was written, for the log.
    pub(crate) description: String,
}

/// The cgroup2 file system's mount point, from this process's mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (fields, fs) = line.split_once(" - ")?;
        (fs.split_whitespace().next()? == "cgroup2")
            .then(|| fields.split_whitespace().nth(4).map(unescape))?
    })
}

/// mountinfo escapes spaces and a few other bytes as octal `\NNN`.
fn unescape(field: &str) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        match (bytes[i], octal.and_then(|d| u8::from_str_radix(d, 8).ok())) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// This process's cgroup under the cgroup2 mount (the `0::` line of /proc/self/cgroup).
fn own_cgroup(mount: &Path) -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_start_matches('/');
    Some(if path.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(path)
    })
}

fn fail(message: String) -> Error {
    Error::Setup(message)
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        fail(format!(
            "write {value:?} to {}: {}",
            dir.join(file).display(),
            describe(&e)
        ))
    })
}

fn describe(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map_or_else(|| e.to_string(), |errno| sys::Errno(errno).to_string())
}

impl SandboxCgroup {
    /// Makes the sandbox's cgroup under `parent` (default: this process's own cgroup).
    pub(crate) fn create(limits: &Limits, parent: Option<&Path>) -> Result<SandboxCgroup, Error> {
        let mount = cgroup2_mount().ok_or_else(|| {
            fail("cgroup limits need a cgroup2 file system, and none is mounted".into())
        })?;
        let parent = match parent {
            Some(parent) => parent.to_path_buf(),
            None => own_cgroup(&mount).ok_or_else(|| {
                fail("cannot tell this process's cgroup from /proc/self/cgroup".into())
            })?,
        };
        let mut controllers = Vec::new();
        for (limit, controller) in [
            (Limit::Memory, "memory"),
            (Limit::Pids, "pids"),
            (Limit::Cpus, "cpu"),
        ] {
            if limits.get(limit).is_some() {
                controllers.push((limit, controller));
            }
        }
        let available = std::fs::read_to_string(parent.join("cgroup.controllers"))
            .map_err(|e| fail(format!("cgroup {}: {}", parent.display(), describe(&e))))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        for (limit, controller) in &controllers {
            if !available.contains(controller) {
                return Err(fail(format!(
                    "the {} limit needs cgroup2's {controller} controller, which cgroup {} does not have (it has: {})",
                    limit.key(),
                    parent.display(),
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available.join(" ")
                    }
                )));
            }
        }
        // The controllers must be on for the parent's children; the kernel refuses that
        // in a cgroup that holds processes itself (but the root).
        let enabled =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let missing: Vec<String> = controllers
            .iter()
            .filter(|(_, c)| !enabled.split_whitespace().any(|e| e == *c))
            .map(|(_, c)| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            std::fs::write(parent.join("cgroup.subtree_control"), missing.join(" ")).map_err(|e| {
                fail(format!(
                    "cannot enable {} for the children of cgroup {}: {} (a cgroup that holds processes \
                     cannot; give --cgroup-parent a delegated cgroup without processes)",
                    missing.join(" "),
                    parent.display(),
                    describe(&e)
                ))
            })?;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hakoniwa-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| fail(format!("create cgroup {}: {}", dir.display(), describe(&e))))?;
        let fd = match sys::open(&path_cstring(&dir)?, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(errno) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(fail(format!("open cgroup {}: {errno}", dir.display())));
            }
        };
        let mut cgroup = SandboxCgroup {
            dir,
            fd,
            description: String::new(),
        };
        cgroup.write_limits(limits)?;
        Ok(cgroup)
    }

    fn write_limits(&mut self, limits: &Limits) -> Result<(), Error> {
        let mut written = Vec::new();
        if let Some(bytes) = limits.memory {
            write(&self.dir, "memory.max", &bytes.to_string())?;
            written.push(format!("memory.max {bytes}"));
            // Without swap the limit is the memory the sandbox gets, not a point where it
            // starts to swap.
            if self.dir.join("memory.swap.max").exists() {
                write(&self.dir, "memory.swap.max", "0")?;
            }
        }
        if let Some(count) = limits.pids {
            write(&self.dir, "pids.max", &count.to_string())?;
            written.push(format!("pids.max {count}"));
        }
        if let Some(millis) = limits.cpus {
            let quota = (millis * CPU_PERIOD / 1000).max(1000);
            let value = format!("{quota} {CPU_PERIOD}");
            write(&self.dir, "cpu.max", &value)?;
            written.push(format!("cpu.max {value}"));
        }
        self.description = format!("{}: {}", self.dir.display(), written.join(", "));
        Ok(())
    }

    /// Whether the kernel's out-of-memory killer killed a process of the sandbox.
    pub(crate) fn oom_killed(&self) -> bool {
        let events = std::fs::read_to_string(self.dir.join("memory.events")).unwrap_or_default();
        events
            .lines()
            .filter_map(|l| l.strip_prefix("oom_kill "))
            .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        // Every process of the sandbox is reaped by now; the kernel may still be finishing
        // their exit for a moment.
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                _ => return,
            }
        }
    }
}

fn path_cstring(path: &Path) -> Result<std::ffi::CString, Error> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| fail(format!("cgroup path {path:?} contains a NUL byte")))
}

/// `0.5` cpus as thousandths (500): a decimal with at most three places.
pub(crate) fn parse_cpus(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 3 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    let millis = whole.checked_mul(1000)?.checked_add(fraction)?;
    (millis > 0).then_some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_read_in_thousandths() {
        assert_eq!(parse_cpus("0.5"), Some(500));
        assert_eq!(parse_cpus("2"), Some(2000));
        assert_eq!(parse_cpus(".25"), Some(250));
        assert_eq!(parse_cpus("1.125"), Some(1125));
        for bad in ["", ".", "0", "0.0", "-1", "1.2345", "1e3", "abc", "1,5"] {
            assert_eq!(parse_cpus(bad), None, "{bad}");
        }
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape("/sys/fs/cgroup\\040x"),
            PathBuf::from("/sys/fs/cgroup x")
        );
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }
}
