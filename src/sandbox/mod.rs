//! Building and running a sandbox: the plan, the child's steps, PID 1 and the supervisor.

mod child;
mod init;
mod limits;
mod mounts;
mod plan;
mod supervise;

pub(crate) use child::SETUP_FAILED;
pub(crate) use init::exit_code;
pub(crate) use plan::{Command, NodeKind, Plan, StreamSource, Target, absolute};
pub(crate) use supervise::run;
