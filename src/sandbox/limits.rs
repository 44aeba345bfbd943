//! Resource limits: the command's rlimits, set with `prlimit64` just before `execve`, and the
//! walltime deadline the supervisor keeps.

use std::ffi::c_int;
use std::fmt;
use std::time::{Duration, Instant};

use super::plan::Step;
use crate::error::Error;
use crate::policy::{Limit, Limits, Unit};

/// An rlimit of the command, ready for `prlimit64` (built before `clone3`).
pub(crate) struct Rlimit {
    pub(crate) limit: Limit,
    pub(crate) resource: c_int,
    pub(crate) value: libc::rlimit,
}

impl fmt::Display for Rlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "setrlimit {} {}", self.limit.key(), self.value.rlim_cur)?;
        if self.value.rlim_max != self.value.rlim_cur {
            write!(f, " (hard {})", self.value.rlim_max)?;
        }
        Ok(())
    }
}

/// Refuses values no limit can take (a time limit of 0 seconds).
pub(crate) fn check(limits: &Limits) -> Result<(), Error> {
    match limits.iter().find(|(limit, value)| *value < limit.min()) {
        Some((limit, value)) => Err(Error::InvalidInput(format!(
            "limit {} {value}: must be at least {}",
            limit.key(),
            limit.min()
        ))),
        None => Ok(()),
    }
}

/// One `SetRlimit` step for every rlimit the policy sets.
pub(crate) fn rlimit_steps(limits: &Limits) -> Vec<Step> {
    limits
        .iter()
        .filter_map(|(limit, value)| {
            let resource = resource(limit)?;
            // The hard cpu limit is a second above the soft one: the command first gets
            // SIGXCPU, and the kernel's SIGKILL only if it ignores that.
            let hard = match limit {
                Limit::Cpu => value.saturating_add(1),
                _ => value,
            };
            Some(Step::SetRlimit(Rlimit {
                limit,
                resource,
                value: libc::rlimit {
                    rlim_cur: value,
                    rlim_max: hard,
                },
            }))
        })
        .collect()
}

/// The `RLIMIT_*` resource behind a limit; `None` for walltime, which is no rlimit.
fn resource(limit: Limit) -> Option<c_int> {
    let resource = match limit {
        Limit::As => libc::RLIMIT_AS,
        Limit::Core => libc::RLIMIT_CORE,
        Limit::Cpu => libc::RLIMIT_CPU,
        Limit::Fsize => libc::RLIMIT_FSIZE,
        Limit::Nofile => libc::RLIMIT_NOFILE,
        Limit::Nproc => libc::RLIMIT_NPROC,
        Limit::Stack => libc::RLIMIT_STACK,
        Limit::Walltime | Limit::Memory | Limit::Pids | Limit::Cpus => return None,
    };
    Some(resource as c_int)
}

/// The verbose log's line: `cpu: 2, walltime: 5`; `None` when nothing is limited.
pub(crate) fn describe(limits: &Limits) -> Option<String> {
    let parts: Vec<String> = limits
        .iter()
        .map(|(limit, value)| format!("{}: {}", limit.key(), show(limit, value)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A limit's value as written: cpus as a decimal (`0.5`), others as the number.
fn show(limit: Limit, value: u64) -> String {
    match limit.unit() {
        Unit::Cpus => {
            let decimals = format!("{:03}", value % 1000);
            let decimals = decimals.trim_end_matches('0');
            match decimals {
                "" => (value / 1000).to_string(),
                d => format!("{}.{d}", value / 1000),
            }
        }
        _ => value.to_string(),
    }
}

/// A report's reason for a limit the command ran into: `walltime 5s exceeded`.
pub(crate) fn exceeded(limit: Limit, value: u64) -> String {
    let unit = match limit.unit() {
        Unit::Seconds => "s",
        Unit::Bytes => " bytes",
        Unit::Count | Unit::Cpus => "",
    };
    format!("{} {}{unit} exceeded", limit.key(), show(limit, value))
}

/// Whether a command killed by SIGKILL was killed by the kernel at the hard cpu limit
/// (`cpu` + 1 seconds), judged from the cpu time the sandbox used.
///
/// The kernel checks the limit against tick-sampled cpu time, while rusage reports the
/// scheduler's precise runtime. On an idle machine they differ by tens of milliseconds at the
/// kill; on a loaded one the sampled time runs ahead by up to a tenth (measured here with both
/// cores busy: SIGXCPU at 1 s sampled came at 0.89 s precise). A fifth of the limit, and at
/// least half a second, absorbs that; a command that used that much had reached its limit.
pub(crate) fn cpu_hard_limit_reached(cpu: u64, used: Duration) -> bool {
    let hard = Duration::from_secs(cpu.saturating_add(1));
    let tolerance = (hard / 5).max(Duration::from_millis(500));
    used.saturating_add(tolerance) >= hard
}

/// When the supervisor kills the sandbox for running too long (monotonic clock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalltimeDeadline {
    at: Instant,
}

impl WalltimeDeadline {
    /// `seconds` after `start`; `None` when there is no limit or it lies beyond any clock.
    pub(crate) fn new(start: Instant, seconds: Option<u64>) -> Option<WalltimeDeadline> {
        let at = start.checked_add(Duration::from_secs(seconds?))?;
        Some(WalltimeDeadline { at })
    }

    /// A poll(2) timeout in milliseconds that ends at or just after the deadline; 0 once
    /// it has passed. Rounded up, so a wake-up is never early and the wait never spins.
    pub(crate) fn poll_timeout(&self) -> c_int {
        let left = self.at.saturating_duration_since(Instant::now());
        let ms = left.as_nanos().div_ceil(1_000_000);
        ms.min(c_int::MAX as u128) as c_int
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_gets_a_hard_limit_one_second_above_the_soft_one() {
        let limits = Limits {
            cpu: Some(2),
            nofile: Some(5),
            walltime: Some(9),
            ..Limits::default()
        };
        let shown: Vec<String> = rlimit_steps(&limits)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shown, ["setrlimit cpu 2 (hard 3)", "setrlimit nofile 5"]);
        let unlimited = Limits {
            cpu: Some(u64::MAX),
            ..Limits::default()
        };
        assert_eq!(
            rlimit_steps(&unlimited)[0].to_string(),
            format!("setrlimit cpu {}", u64::MAX)
        );
    }

    #[test]
    fn zero_seconds_is_refused() {
        for limits in [
            Limits {
                cpu: Some(0),
                ..Limits::default()
            },
            Limits {
                walltime: Some(0),
                ..Limits::default()
            },
        ] {
            assert!(check(&limits).is_err(), "{limits:?}");
        }
        let zero_files = Limits {
            nofile: Some(0),
            ..Limits::default()
        };
        assert!(check(&zero_files).is_ok());
    }

    #[test]
    fn reasons_and_log_line() {
        assert_eq!(exceeded(Limit::Walltime, 5), "walltime 5s exceeded");
        assert_eq!(exceeded(Limit::Fsize, 2), "fsize 2 bytes exceeded");
        let limits = Limits {
            cpu: Some(2),
            walltime: Some(5),
            ..Limits::default()
        };
        assert_eq!(describe(&limits).as_deref(), Some("cpu: 2, walltime: 5"));
        assert_eq!(describe(&Limits::default()), None);
        let cgroup = Limits {
            cpus: Some(1500),
            memory: Some(1 << 20),
            ..Limits::default()
        };
        assert_eq!(
            describe(&cgroup).as_deref(),
            Some("memory: 1048576, cpus: 1.5")
        );
        assert_eq!(
            exceeded(Limit::Memory, 1 << 20),
            "memory 1048576 bytes exceeded"
        );
    }

    #[test]
    fn cpu_kill_is_told_by_the_time_used() {
        assert!(cpu_hard_limit_reached(1, Duration::from_millis(2000)));
        assert!(cpu_hard_limit_reached(1, Duration::from_millis(1965)));
        assert!(!cpu_hard_limit_reached(1, Duration::from_millis(1400)));
        assert!(cpu_hard_limit_reached(9, Duration::from_millis(8900)));
        assert!(!cpu_hard_limit_reached(9, Duration::from_millis(7000)));
        assert!(!cpu_hard_limit_reached(u64::MAX, Duration::MAX / 2));
    }

    #[test]
    fn deadline_rounds_up_and_survives_huge_limits() {
        let now = Instant::now();
        assert!(WalltimeDeadline::new(now, None).is_none());
        assert!(WalltimeDeadline::new(now, Some(u64::MAX)).is_none());
        let soon = WalltimeDeadline::new(now, Some(1)).unwrap();
        let timeout = soon.poll_timeout();
        assert!((1..=1000).contains(&timeout), "{timeout}");
        let past = WalltimeDeadline {
            at: now - Duration::from_millis(5),
        };
        assert_eq!(past.poll_timeout(), 0);
    }
}
