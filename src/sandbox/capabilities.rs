//! Capabilities: what the command keeps of its user namespace's capabilities.
//!
//! By default nothing: the command's bounding, inheritable and ambient sets are emptied
//! before execve, so even uid 0 inside holds no capability after it. `--cap-add` keeps the
//! named ones in the bounding set, which a uid 0 command then holds (only inside the
//! sandbox's own user namespace, and only over what that namespace owns).

use crate::error::Error;
use crate::sys::{self, Errno};

/// The capabilities by number, as `capabilities(7)` names them without `CAP_`.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The bit of capability `name` (`CAP_NET_RAW`, `net_raw`), or every bit for `ALL`.
pub(crate) fn parse(name: &str) -> Result<u64, Error> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    if bare == "all" {
        return Ok(u64::MAX);
    }
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|bit| 1 << bit)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "unknown capability {name:?} (e.g. CAP_NET_RAW, or ALL)"
            ))
        })
}

/// The capabilities in `mask`, by name, for the log.
pub(crate) fn describe(mask: u64) -> String {
    if mask == u64::MAX {
        return "ALL".to_string();
    }
    let names: Vec<String> = (0..NAMES.len())
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| format!("CAP_{}", NAMES[bit].to_ascii_uppercase()))
        .collect();
    names.join(",")
}

/// Empties the bounding set but for `keep`, and the ambient and inheritable sets.
/// Allocation-free: it runs in the command's process after clone3.
pub(crate) fn drop_all_but(keep: u64) -> Result<(), Errno> {
    for cap in 0..64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match sys::drop_bounding_capability(cap) {
            Ok(()) => {}
            // The kernel's capabilities are numbered from 0 without gaps: this one and
            // every later number are past its last.
            Err(Errno(libc::EINVAL)) => break,
            Err(e) => return Err(e),
        }
    }
    sys::clear_ambient_capabilities()?;
    sys::clear_inheritable_capabilities()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_either_way_and_describe_back() {
        assert_eq!(parse("CAP_NET_RAW").unwrap(), 1 << 13);
        assert_eq!(parse("net_raw").unwrap(), 1 << 13);
        assert_eq!(parse("Sys_Admin").unwrap(), 1 << 21);
        assert_eq!(parse("ALL").unwrap(), u64::MAX);
        assert!(parse("CAP_FLY").is_err());
        assert_eq!(describe((1 << 13) | (1 << 21)), "CAP_NET_RAW,CAP_SYS_ADMIN");
        assert_eq!(describe(u64::MAX), "ALL");
    }
}
