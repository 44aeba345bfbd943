//! The sandbox's PID 1 once the command runs: reaps orphans, forwards signals to the
//! command, and ends with the command's status (which takes down the whole pid namespace).

use std::ffi::c_int;
use std::os::fd::RawFd;

use super::child::Record;
use crate::sys;

/// Signals init passes on to the command.
pub(crate) const FORWARDED: [c_int; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// What init blocks and waits for: the forwarded signals and SIGCHLD.
pub(crate) const SIGNALS: u64 = sys::sigmask(&FORWARDED) | sys::sigmask(&[libc::SIGCHLD]);

/// The exit status a shell reports for a wait status: the code, or 128 + the signal.
pub(crate) fn exit_code(wait_status: c_int) -> i32 {
    if libc::WIFSIGNALED(wait_status) {
        128 + libc::WTERMSIG(wait_status)
    } else {
        libc::WEXITSTATUS(wait_status)
    }
}

/// Waits for signals until the command ends, then reports its wait status and exits with
/// its exit code. Never returns.
pub(crate) fn reap_until_command_ends(command: libc::pid_t, report: RawFd) -> ! {
    // The standard streams are the command's; init holding them would keep readers of a
    // pipe waiting after the command is gone.
    let _ = sys::close_range(0, 2);
    loop {
        let signal = match sys::wait_signal(SIGNALS) {
            Ok(signal) => signal,
            Err(_) => sys::exit(super::child::SETUP_FAILED),
        };
        if signal != libc::SIGCHLD {
            let _ = sys::kill(command, signal);
            continue;
        }
        while let Ok(Some((pid, wait_status))) = sys::reap_any() {
            if pid == command {
                Record::CommandEnded { wait_status }.send(report);
                sys::exit(exit_code(wait_status));
            }
        }
    }
}
