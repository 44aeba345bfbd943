//! `hakoniwa trace`: the supervisor's side of system call tracing.
//!
//! The command installs a filter that turns each of its system calls into a seccomp user
//! notification and sends the listener over a socket. The supervisor counts each
//! notification by system call and lets the call go ahead (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//! No ptrace and no audit daemon are involved.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::seccomp::syscalls::Arch;
use crate::sys;

/// The supervisor's end of tracing: first the socket the listener arrives on, then the
/// listener, and the counts so far.
pub(crate) struct Tracer {
    socket: OwnedFd,
    listener: Option<OwnedFd>,
    counts: BTreeMap<i32, u64>,
}

impl Tracer {
    pub(crate) fn new(socket: OwnedFd) -> Tracer {
        Tracer {
            socket,
            listener: None,
            counts: BTreeMap::new(),
        }
    }

    /// What to poll: the socket until the listener has come, then the listener.
    pub(crate) fn poll_fd(&self) -> RawFd {
        self.listener.as_ref().unwrap_or(&self.socket).as_raw_fd()
    }

    pub(crate) fn on_ready(&mut self) {
        match &self.listener {
            None => self.listener = sys::recv_fd(&self.socket).ok().flatten(),
            Some(listener) => {
                // A notification whose caller was interrupted or killed meanwhile cannot be
                // answered; it counts all the same.
                if let Ok((id, nr)) = sys::receive_notification(listener) {
                    *self.counts.entry(nr).or_default() += 1;
                    let _ = sys::continue_notification(listener, id);
                }
            }
        }
    }

    /// Each system call's name (or number, if unknown) and count, most frequent first.
    pub(crate) fn into_counts(self) -> Vec<(String, u64)> {
        let arch = Arch::native();
        let mut counts: Vec<(String, u64)> = self
            .counts
            .into_iter()
            .map(|(nr, count)| {
                let name = u32::try_from(nr).ok().and_then(|n| arch?.syscall_name(n));
                (
                    name.map_or_else(|| format!("syscall_{nr}"), str::to_string),
                    count,
                )
            })
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }
}
