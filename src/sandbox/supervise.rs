//! The parent's side of a sandbox: start it, relay signals, and collect how it ended.

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use super::cgroup::{self, SandboxCgroup};
use super::child::{self, Channels, Op, Record};
use super::init;
use super::limits::{self, WalltimeDeadline};
use super::plan::{Plan, Step};
use super::stdio::{PipeRead, StreamPipes, StreamPump, read_pipe};
use super::trace::Tracer;
use crate::error::Error;
use crate::log::info;
use crate::policy::{Limit, Limits};
use crate::report::{ExecutorResult, ExecutorResultStatus, signal_name};
use crate::sys::{self, Errno};

const LOG: &str = "hakoniwa::executor";

/// How long init has, after the walltime, to kill and reap the sandbox's processes before
/// it is killed itself.
const KILL_ALL_GRACE_SECS: u64 = 1;

/// Everything the parent learned about one sandbox run.
struct Outcome {
    start_time: SystemTime,
    real_time: Duration,
    /// The first failed step, as the sandbox reported it.
    failure: Option<(usize, Op, Errno)>,
    /// The command's wait status, as init saw it.
    command: Option<c_int>,
    /// The walltime passed and the sandbox was killed.
    walltime_passed: bool,
    /// How init itself ended, with the resources of the whole tree.
    init: sys::Exit,
    /// What the command wrote to piped stdout and stderr.
    captured: [Vec<u8>; 2],
    /// How often the command made each system call, when traced.
    syscalls: Vec<(String, u64)>,
    /// The kernel's out-of-memory killer killed a process of the sandbox's cgroup.
    oom_killed: bool,
}

/// Blocks the forwarded signals in this thread for as long as it lives, and reads them
/// from a signalfd instead.
struct SignalRelay {
    fd: OwnedFd,
    _blocked: sys::BlockedSignals,
}

impl SignalRelay {
    fn new() -> Result<SignalRelay, Errno> {
        let mask = sys::sigmask(&init::FORWARDED);
        let blocked = sys::BlockedSignals::new(mask)?;
        Ok(SignalRelay {
            fd: sys::signalfd(mask)?,
            _blocked: blocked,
        })
    }
}

/// Runs the plan in a new sandbox and waits for it to end; `input` is fed to a piped stdin.
///
/// With `relay_signals`, the hangup, interrupt, quit, terminate and user signals that
/// reach this thread are passed on to the sandbox (and by its init to the command).
pub(crate) fn run(plan: &Plan, relay_signals: bool, input: &[u8]) -> Run {
    match supervise(plan, relay_signals, input) {
        Ok(outcome) => Run::Ended(Box::new(result(plan, outcome))),
        Err(Stop::UserNamespaceRefused(errno)) => Run::UserNamespaceRefused(errno),
        Err(Stop::Failed(error)) => Run::Ended(Box::new(ExecutorResult::setup_error(
            error.to_string(),
            child::SETUP_FAILED,
        ))),
    }
}

/// How a run went.
pub(crate) enum Run {
    Ended(Box<ExecutorResult>),
    /// The kernel refused a user namespace: nothing was started.
    UserNamespaceRefused(Errno),
}

/// Why the supervisor stopped before the sandbox ended.
enum Stop {
    Failed(Error),
    UserNamespaceRefused(Errno),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Stop {
        Stop::Failed(error)
    }
}

fn supervise(plan: &Plan, relay_signals: bool, input: &[u8]) -> Result<Outcome, Stop> {
    let os = |what: &str| {
        let what = what.to_string();
        move |errno: Errno| Error::Setup(format!("{what}: {errno}"))
    };
    let (report_r, report_w) = sys::pipe().map_err(os("create a pipe"))?;
    sys::set_nonblocking(report_r.as_raw_fd()).map_err(os("create a pipe"))?;
    let (alive_r, alive_w) = sys::pipe().map_err(os("create a pipe"))?;
    let streams =
        StreamPipes::new(plan.streams, input).map_err(os("set up the standard streams"))?;
    let relay = if relay_signals {
        Some(SignalRelay::new().map_err(os("set up signal forwarding"))?)
    } else {
        None
    };
    // The cgroup exists before the sandbox and goes after it (SandboxCgroup's drop).
    let cgroup = if cgroup::wanted(&plan.limits) {
        let cgroup = SandboxCgroup::create(&plan.limits, plan.cgroup_parent.as_deref())?;
        info!(LOG, "Cgroup: {}", cgroup.description);
        Some(cgroup)
    } else {
        None
    };
    let trace = if plan.trace {
        Some(sys::socketpair().map_err(os("create a socket for tracing"))?)
    } else {
        None
    };

    let start_time = SystemTime::now();
    let started = Instant::now();
    let channels = Channels {
        report: report_w.as_raw_fd(),
        alive: alive_r.as_raw_fd(),
        streams: streams.sandbox_fds(),
        trace: trace
            .as_ref()
            .map_or(-1, |(_, sandbox)| sandbox.as_raw_fd()),
    };
    // Exit signal 0: no SIGCHLD, and a caller's waitpid(-1) cannot reap the sandbox; it is
    // waited for through its pidfd only.
    // SAFETY: init_main only walks the plan with allocation-free, lock-free steps and ends
    // the process itself.
    let cgroup_fd = cgroup.as_ref().map(|c| c.fd.as_raw_fd());
    let (_, pidfd) = unsafe {
        sys::spawn_into(
            plan.namespaces | libc::CLONE_PIDFD as u64,
            0,
            cgroup_fd,
            || child::init_main(plan, channels),
        )
    }
    .map_err(|errno| {
        // What a kernel without user namespaces, with user.max_user_namespaces at 0, or
        // with a policy against them (a container's seccomp profile, say) answers.
        let refused = matches!(
            errno.0,
            libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS
        );
        if refused && plan.namespaces & libc::CLONE_NEWUSER as u64 != 0 {
            Stop::UserNamespaceRefused(errno)
        } else {
            Stop::Failed(Error::Setup(format!(
                "create the sandbox's namespaces (clone3): {errno}"
            )))
        }
    })?;
    // The sandbox's ends of the pipes are the sandbox's alone: a copy here would keep
    // them open after it is gone.
    drop((report_w, alive_r));
    let mut tracer = trace.map(|(ours, _sandbox)| Tracer::new(ours));
    let mut pump = streams.into_pump();
    let pidfd = pidfd.ok_or_else(|| Error::Setup("clone3 returned no pidfd".into()))?;

    let deadline = WalltimeDeadline::new(started, plan.limits.walltime);
    let (records, walltime_passed) = collect_records(
        &report_r,
        &pidfd,
        relay.as_ref(),
        deadline,
        &mut pump,
        tracer.as_mut(),
    );
    drop(relay);
    let init = sys::wait_pidfd(&pidfd).map_err(os("wait for the sandbox"))?;
    let real_time = started.elapsed();
    drop(alive_w);

    let mut outcome = Outcome {
        start_time,
        real_time,
        failure: None,
        command: None,
        walltime_passed,
        init,
        captured: pump.into_captured(),
        syscalls: tracer.map(Tracer::into_counts).unwrap_or_default(),
        oom_killed: cgroup.as_ref().is_some_and(SandboxCgroup::oom_killed),
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

/// Serves the sandbox's piped streams until the sandbox is gone, relaying signals
/// meanwhile, and kills the sandbox if the deadline passes first; then reads its report
/// pipe. Returns the records and whether it killed the sandbox.
///
/// The sandbox is gone when its init has ended (the pidfd is readable): init ends only
/// after every other process of its pid namespace, so no writer is left in the sandbox
/// then, and what is still in the pipes is read without waiting. That also ends the run
/// when a pipe's write end has got out of the sandbox (passed over a shared socket, say).
fn collect_records(
    report: &OwnedFd,
    pidfd: &OwnedFd,
    relay: Option<&SignalRelay>,
    mut deadline: Option<WalltimeDeadline>,
    pump: &mut StreamPump<'_>,
    mut tracer: Option<&mut Tracer>,
) -> (Vec<u8>, bool) {
    let mut killed = false;
    // The report pipe is read once init has ended: its few 16-byte records never fill it,
    // and not waking for each one saves a wakeup at the end of every run.
    loop {
        let timeout = deadline.map_or(-1, |d| d.poll_timeout());
        if timeout == 0 {
            // First init is asked to kill and reap the rest, so their cpu time is counted;
            // if it has not ended a moment later (still setting up, or stuck), it is
            // killed. Init is PID 1 of the sandbox's pid namespace: when it dies, the
            // kernel kills every other process in it, however deep or detached.
            if !killed && sys::pidfd_send_signal(pidfd, init::KILL_ALL).is_ok() {
                killed = true;
                deadline = WalltimeDeadline::new(Instant::now(), Some(KILL_ALL_GRACE_SECS));
            } else {
                let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                deadline = None;
            }
            continue;
        }
        let entry = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let [stdin, stdout, stderr] = pump.poll_fds();
        let mut fds = [
            entry(relay.map_or(-1, |r| r.fd.as_raw_fd())),
            entry(pidfd.as_raw_fd()),
            stdin,
            stdout,
            stderr,
            entry(tracer.as_ref().map_or(-1, |t| t.poll_fd())),
        ];
        match sys::poll(&mut fds, timeout) {
            Ok(_) | Err(Errno(libc::EINTR)) => {}
            Err(_) => break,
        }
        if let Some(relay) = relay.filter(|_| fds[0].revents != 0)
            && let Ok(signal) = sys::read_signalfd(&relay.fd)
        {
            let _ = sys::pidfd_send_signal(pidfd, signal);
        }
        pump.on_ready(&fds[2..5]);
        if let Some(tracer) = tracer.as_mut().filter(|_| fds[5].revents != 0) {
            tracer.on_ready();
        }
        if fds[1].revents != 0 {
            break;
        }
    }
    // Whatever the sandbox wrote before it ended.
    let mut records = Vec::new();
    let mut chunk = [0u8; 256];
    while read_pipe(report.as_raw_fd(), &mut records, &mut chunk) == PipeRead::Data {}
    pump.drain();
    (records, killed)
}

/// Classifies how the sandbox ended.
fn result(plan: &Plan, outcome: Outcome) -> ExecutorResult {
    let mut result =
        ExecutorResult::from_usage(outcome.start_time, outcome.real_time, &outcome.init.rusage);
    [result.stdout, result.stderr] = outcome.captured;
    result.syscalls = outcome.syscalls;
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
    // Init said nothing of the command and the supervisor killed it: the walltime ended the
    // run. (Had the command ended first, init would have said so, and that is the verdict.)
    if outcome.command.is_none()
        && outcome.walltime_passed
        && let Some(seconds) = plan.limits.walltime
    {
        let reason = limits::exceeded(Limit::Walltime, seconds);
        result.set_ended(
            ExecutorResultStatus::TimeLimitExceeded,
            reason,
            libc::SIGKILL,
        );
        return result;
    }
    match outcome.command {
        Some(wait_status) if libc::WIFSIGNALED(wait_status) => {
            let cpu_used = result.user_time + result.system_time;
            let (status, reason) =
                signal_verdict(&plan.limits, libc::WTERMSIG(wait_status), cpu_used);
            result.set_ended(status, reason, wait_status);
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
    // A SIGKILL in a sandbox whose cgroup saw an out-of-memory kill: the memory limit.
    if outcome.oom_killed
        && result.exit_code == Some(128 + libc::SIGKILL)
        && let Some(bytes) = plan.limits.memory
    {
        result.status = ExecutorResultStatus::MemoryLimitExceeded;
        result.reason = limits::exceeded(Limit::Memory, bytes);
    }
    result
}

/// The status and reason for a command killed by `signal`, when the sandbox used `cpu_used`.
fn signal_verdict(
    limits: &Limits,
    signal: c_int,
    cpu_used: Duration,
) -> (ExecutorResultStatus, String) {
    let signaled = || format!("signaled: {}", signal_name(signal));
    // A limit's signal is that limit's verdict even when the limit came from the caller
    // (an inherited `ulimit`); the reason names the limit when it is the sandbox's own.
    let by_limit = |limit: Limit, status: ExecutorResultStatus| {
        let reason = limits
            .get(limit)
            .map_or_else(signaled, |value| limits::exceeded(limit, value));
        (status, reason)
    };
    match signal {
        libc::SIGSYS => (ExecutorResultStatus::RestrictedFunction, signaled()),
        libc::SIGXCPU => by_limit(Limit::Cpu, ExecutorResultStatus::TimeLimitExceeded),
        libc::SIGXFSZ => by_limit(Limit::Fsize, ExecutorResultStatus::OutputLimitExceeded),
        // The kernel's SIGKILL at the hard cpu limit, for a command that ignored SIGXCPU.
        libc::SIGKILL
            if limits
                .cpu
                .is_some_and(|cpu| limits::cpu_hard_limit_reached(cpu, cpu_used)) =>
        {
            by_limit(Limit::Cpu, ExecutorResultStatus::TimeLimitExceeded)
        }
        _ => (ExecutorResultStatus::Signaled, signaled()),
    }
}
