//! The sandbox's PID 1 once the command runs: reaps orphans, forwards signals to the
//! command, and when the command ends (or the walltime passes) kills and reaps whatever is
//! left, so the report's times cover every process, then exits with the command's status.

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

/// The signal the supervisor sends init when the walltime has passed (SIGRTMAX, which is
/// not forwarded): init kills every other process of the sandbox, reaps them so that their
/// cpu time reaches its own rusage and the report, and exits. Only the supervisor can send
/// it: the kernel drops a signal to a pid namespace's init that has no handler for it
/// unless the sender is outside the namespace.
pub(crate) const KILL_ALL: c_int = 64;

/// What init blocks and waits for: the forwarded signals, SIGCHLD and [`KILL_ALL`].
pub(crate) const SIGNALS: u64 = sys::sigmask(&FORWARDED) | sys::sigmask(&[libc::SIGCHLD, KILL_ALL]);

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
        if signal == KILL_ALL {
            kill_all_and_exit(128 + libc::SIGKILL);
        }
        if signal != libc::SIGCHLD {
            let _ = sys::kill(command, signal);
            continue;
        }
        while let Ok(Some((pid, wait_status))) = sys::reap_any(false) {
            if pid == command {
                Record::CommandEnded { wait_status }.send(report);
                // What the command left running in the background goes with it.
                kill_all_and_exit(exit_code(wait_status));
            }
        }
    }
}

/// Kills every other process of the pid namespace and reaps them all before exiting with
/// `code`, so the report's times include theirs. (When init just exits, the kernel kills
/// the rest but reaps them as if init ignored SIGCHLD, and their times are lost.)
fn kill_all_and_exit(code: i32) -> ! {
    // kill(-1) from a pid namespace's init reaches every other process in the namespace
    // (init holds every capability over them: they are in its user namespace or below).
    let _ = sys::kill(-1, libc::SIGKILL);
    while let Ok(Some(_)) = sys::reap_any(true) {}
    sys::exit(code)
}
