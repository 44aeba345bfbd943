//! Building and running a sandbox: the plan, the child's steps, PID 1 and the supervisor.

mod capabilities;
mod cgroup;
mod child;
mod files;
mod init;
mod landlock;
mod limits;
mod mounts;
mod paths;
mod plan;
mod stdio;
mod supervise;
mod trace;

pub(crate) use capabilities::parse as parse_capability;
pub(crate) use cgroup::parse_cpus;
pub(crate) use child::SETUP_FAILED;
pub(crate) use init::exit_code;
pub(crate) use landlock::LandlockSpec;
pub(crate) use plan::{Command, Plan, StreamSource, absolute, check_target};
pub(crate) use supervise::{Run, run};
