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
mod suggest;
mod sys;

pub use error::Error;
pub use executor::{Executor, Sandbox, Stdio, WORK_DIR_TARGET, default_shell};
pub use policy::{DEFAULT_HOSTNAME, EMBEDDED, SandboxPolicy};
pub use report::{ExecutorResult, ExecutorResultStatus, signal_name};

/// Internals exposed for the project's own tests; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// Reads a TOML document with the policy reader and returns it in the tagged JSON
    /// form `tests/toml/differential.py` compares with Python's tomllib, or the error.
    pub fn toml_to_json(bytes: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
        crate::policy::toml::parse(text)
            .map(|table| crate::policy::toml::to_tagged_json(&table))
            .map_err(|e| {
                let (line, column) = crate::policy::toml::line_col(text, e.at);
                format!("{line}:{column}: {}", e.message)
            })
    }

    /// `s` as a JSON string literal, escaped as the reports escape it.
    pub fn json_string(s: &str) -> String {
        let mut out = String::new();
        crate::report::json_string(&mut out, s);
        out
    }
}
