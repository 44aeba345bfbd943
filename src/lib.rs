//! Hakoniwa: process isolation for Linux.
//!
//! Runs a command in a world built from nothing: new user, mount, pid, ipc, uts, net and
//! cgroup namespaces; a fresh tmpfs root that the host never sees and that vanishes with
//! the last process; only what the policy binds; and a report of how the command ended.
//!
//! ```no_run
//! use hakoniwa::{Sandbox, Stdio};
//!
//! let sandbox = Sandbox::new(); // the embedded "KISS" policy
//! let result = sandbox
//!     .command("/bin/sh", &["/bin/sh", "-c", "id; ls /"])
//!     .stdout(Stdio::inherit())
//!     .run();
//! println!("{}", result.to_json());
//! ```

#![deny(missing_docs)]

#[doc(hidden)]
pub mod cli;
mod error;
mod executor;
pub mod log;
mod policy;
mod report;
mod sandbox;
mod sys;

pub use error::Error;
pub use executor::{Executor, Sandbox, Stdio, WORK_DIR_TARGET, default_shell};
pub use policy::{DEFAULT_HOSTNAME, SandboxPolicy};
pub use report::{ExecutorResult, ExecutorResultStatus, signal_name};
