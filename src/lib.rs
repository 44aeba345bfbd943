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
mod seccomp;
mod suggest;
mod sys;

pub use error::Error;
pub use executor::{Executor, Sandbox, Stdio, WORK_DIR_TARGET, default_shell};
pub use policy::{DEFAULT_HOSTNAME, EMBEDDED, SandboxPolicy};
pub use report::{ExecutorResult, ExecutorResultStatus, signal_name};

/// Internals exposed for the project's own tests; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::policy::toml::{self, Table, Value};
    use crate::report::json_string as append_json_string;

    /// Reads a TOML document with the policy reader and returns it in the tagged JSON
    /// form `tests/toml/differential.py` compares with Python's tomllib, or the error.
    pub fn toml_to_json(bytes: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
        let table = toml::parse(text).map_err(|e| {
            let (line, column) = toml::line_col(text, e.at);
            format!("{line}:{column}: {}", e.message)
        })?;
        let mut out = String::new();
        write_table(&mut out, &table);
        Ok(out)
    }

    fn write_table(out: &mut String, table: &Table) {
        out.push('{');
        for (i, entry) in table.entries().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            append_json_string(out, &entry.key);
            out.push(':');
            write_value(out, &entry.item.value);
        }
        out.push('}');
    }

    fn write_value(out: &mut String, value: &Value) {
        let (kind, text) = match value {
            Value::Table(t) => return write_table(out, t),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(out, &item.value);
                }
                out.push(']');
                return;
            }
            Value::String(s) => ("string", s.clone()),
            Value::Integer(n) => ("integer", n.to_string()),
            Value::Boolean(b) => ("bool", b.to_string()),
        };
        out.push_str("{\"type\":\"");
        out.push_str(kind);
        out.push_str("\",\"value\":");
        append_json_string(out, &text);
        out.push('}');
    }

    /// `s` as a JSON string literal, escaped as the reports escape it.
    pub fn json_string(s: &str) -> String {
        let mut out = String::new();
        append_json_string(&mut out, s);
        out
    }
}
