//! The parent's side of a sandbox: start it, relay signals, and collect how it ended.

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use super::child::{self, Op, Record};
use super::init;
use super::plan::{Plan, Step};
use crate::error::Error;
use crate::report::{ExecutorResult, ExecutorResultStatus, signal_name};
use crate::sys::{self, Errno};

/// Everything the parent learned about one sandbox run.
struct Outcome {
    start_time: SystemTime,
    real_time: Duration,
    /// The first failed step, as the sandbox reported it.
    failure: Option<(usize, Op, Errno)>,
    /// The command's wait status, as init saw it.
    command: Option<c_int>,
    /// How init itself ended, with the resources of the whole tree.
    init: sys::Exit,
}

/// Blocks the forwarded signals in this thread for as long as it lives, and reads them
/// from a signalfd instead.
struct SignalRelay {
    fd: OwnedFd,
    old_mask: u64,
}

impl SignalRelay {
    fn new() -> Result<SignalRelay, Errno> {
        let mask = sys::sigmask(&init::FORWARDED);
        let old_mask = sys::set_sigmask(mask)?;
        // Keep whatever else the caller had blocked.
        sys::set_sigmask(old_mask | mask)?;
        match sys::signalfd(mask) {
            Ok(fd) => Ok(SignalRelay { fd, old_mask }),
            Err(e) => {
                let _ = sys::set_sigmask(old_mask);
                Err(e)
            }
        }
    }
}

impl Drop for SignalRelay {
    fn drop(&mut self) {
        let _ = sys::set_sigmask(self.old_mask);
    }
}

/// Runs the plan in a new sandbox and waits for it to end.
///
/// With `relay_signals`, the hangup, interrupt, quit, terminate and user signals that
/// reach this thread are passed on to the sandbox (and by its init to the command).
pub(crate) fn run(plan: &Plan, relay_signals: bool) -> ExecutorResult {
    match supervise(plan, relay_signals) {
        Ok(outcome) => result(plan, outcome),
        Err(error) => ExecutorResult::setup_error(error.to_string(), child::SETUP_FAILED),
    }
}

fn supervise(plan: &Plan, relay_signals: bool) -> Result<Outcome, Error> {
    let os = |what: &str| {
        let what = what.to_string();
        move |errno: Errno| Error::Setup(format!("{what}: {errno}"))
    };
    let (report_r, report_w) = sys::pipe().map_err(os("create a pipe"))?;
    let (alive_r, alive_w) = sys::pipe().map_err(os("create a pipe"))?;
    let relay = if relay_signals {
        Some(SignalRelay::new().map_err(os("set up signal forwarding"))?)
    } else {
        None
    };

    let start_time = SystemTime::now();
    let started = Instant::now();
    let (report, alive) = (report_w.as_raw_fd(), alive_r.as_raw_fd());
    // Exit signal 0: no SIGCHLD, and a caller's waitpid(-1) cannot reap the sandbox; it is
    // waited for through its pidfd only.
    // SAFETY: init_main only walks the plan with allocation-free, lock-free steps and ends
    // the process itself.
    let (_, pidfd) = unsafe {
        sys::spawn(plan.namespaces | libc::CLONE_PIDFD as u64, 0, || {
            child::init_main(plan, report, alive)
        })
    }
    .map_err(os("create the sandbox's namespaces (clone3)"))?;
    let pidfd = pidfd.ok_or_else(|| Error::Setup("clone3 returned no pidfd".into()))?;
    drop((report_w, alive_r));

    let records = collect_records(&report_r, &pidfd, relay.as_ref());
    drop(relay);
    let init = sys::wait_pidfd(&pidfd).map_err(os("wait for the sandbox"))?;
    let real_time = started.elapsed();
    drop(alive_w);

    let mut outcome = Outcome {
        start_time,
        real_time,
        failure: None,
        command: None,
        init,
    };
    for record in records
        .chunks_exact(Record::SIZE)
        .filter_map(Record::decode)
    {
        match record {
            Record::Failed { step, op, errno } => {
                outcome
                    .failure
                    .get_or_insert((step as usize, op, Errno(errno)));
            }
            Record::CommandEnded { wait_status } => outcome.command = Some(wait_status),
        }
    }
    Ok(outcome)
}

/// Reads the sandbox's report pipe until every writer is gone, relaying signals meanwhile.
fn collect_records(report: &OwnedFd, pidfd: &OwnedFd, relay: Option<&SignalRelay>) -> Vec<u8> {
    let mut records = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: relay.map_or(-1, |r| r.fd.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        match sys::poll(&mut fds, -1) {
            Ok(_) | Err(Errno(libc::EINTR)) => {}
            Err(_) => return records,
        }
        if let Some(relay) = relay.filter(|_| fds[1].revents != 0)
            && let Ok(signal) = sys::read_signalfd(&relay.fd)
        {
            let _ = sys::pidfd_send_signal(pidfd, signal);
        }
        if fds[0].revents != 0 {
            match sys::read(report.as_raw_fd(), &mut chunk) {
                Ok(0) | Err(_) => return records,
                Ok(n) => records.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Classifies how the sandbox ended.
fn result(plan: &Plan, outcome: Outcome) -> ExecutorResult {
    let mut result =
        ExecutorResult::from_usage(outcome.start_time, outcome.real_time, &outcome.init.rusage);
    if let Some((index, op, errno)) = outcome.failure {
        let step = plan.step(index);
        let mut reason = step.map_or_else(|| format!("step {index}"), |s| s.to_string());
        if op != Op::Whole {
            reason = format!("{reason}: {}", op.describe());
        }
        let code = match (step, errno.0) {
            (Some(Step::Exec(_)), libc::ENOENT | libc::ENOTDIR) => child::NOT_FOUND,
            (Some(Step::Exec(_)), _) => child::NOT_EXECUTABLE,
            _ => child::SETUP_FAILED,
        };
        result.set_setup_error(format!("{reason}: {errno}"), code);
        return result;
    }
    match outcome.command {
        Some(wait_status) if libc::WIFSIGNALED(wait_status) => {
            let signal = libc::WTERMSIG(wait_status);
            let status = if signal == libc::SIGSYS {
                ExecutorResultStatus::RestrictedFunction
            } else {
                ExecutorResultStatus::Signaled
            };
            result.set_ended(
                status,
                format!("signaled: {}", signal_name(signal)),
                wait_status,
            );
        }
        Some(wait_status) => {
            result.set_ended(ExecutorResultStatus::Ok, String::new(), wait_status);
        }
        // Init died without a word: killed from outside (by the OOM killer, say).
        None if matches!(outcome.init.code, libc::CLD_KILLED | libc::CLD_DUMPED) => {
            let signal = outcome.init.status;
            let reason = format!("signaled: {}", signal_name(signal));
            result.set_ended(ExecutorResultStatus::Signaled, reason, signal);
        }
        None => {
            let reason = format!(
                "the sandbox's init exited with status {}",
                outcome.init.status
            );
            result.set_setup_error(reason, child::SETUP_FAILED);
        }
    }
    result
}
