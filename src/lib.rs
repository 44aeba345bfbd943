//! Hakoniwa: process isolation for Linux, as a library.
//!
//! The crate is also a library, and the `hakoniwa` command is a thin user of it. A `Sandbox`
//! holds a policy; `Sandbox::command` makes an `Executor` for one command; its builder methods
//! add what the options of `hakoniwa run` add; `Executor::run` builds the sandbox, runs the
//! command, waits for it and returns an `ExecutorResult`.
//!
//! The code below is almost `hakoniwa run -- "$SHELL"` with the KISS policy. It is
//! `examples/shell.rs`: `cargo run --example shell`.
//!
//! ```rust,no_run
//! use hakoniwa::{Error, Sandbox, SandboxPolicy, Stdio};
//!
//! fn main() -> Result<(), Error> {
//!     let policy = SandboxPolicy::from_str(
//!         r#"
//! mounts = [
//!   { source = "/bin"        , target = "/bin"         },
//!   { source = "/lib"        , target = "/lib"         },
//!   { source = "/lib64"      , target = "/lib64"       },
//!   { source = "/usr"        , target = "/usr"         },
//!   { source = "/dev/null"   , target = "/dev/null"     , rw = true },
//!   { source = "/dev/random" , target = "/dev/random"   , rw = true },
//!   { source = "/dev/urandom", target = "/dev/urandom"  , rw = true },
//!   { source = "/dev/zero"   , target = "/dev/zero"     , rw = true },
//! ]
//!
//! [env]
//! LANG     = {{ os_env "LANG"     }}
//! LANGUAGE = {{ os_env "LANGUAGE" }}
//! LC_ALL   = {{ os_env "LC_ALL"   }}
//! TERM     = {{ os_env "TERM"     }}
//!     "#,
//!     )?;
//!
//!     let mut sandbox = Sandbox::new();
//!     sandbox.with_policy(policy);
//!
//!     let prog = std::env::var("SHELL").unwrap_or_else(|_| String::from("/bin/sh"));
//!     let argv = vec![&prog];
//!     let mut executor = sandbox.command(&prog, &argv);
//!     let result = executor
//!         // .ro_bind("/etc", "/myetc")? // --ro-bind /etc:/myetc
//!         // .rw_bind("/data", "/data")? // --rw-bind /data
//!         // .limit_cpu(Some(2)) // --limit-cpu 2
//!         // .limit_walltime(Some(5)) // --limit-walltime 5
//!         .stdout(Stdio::inherit())
//!         .stderr(Stdio::inherit())
//!         .stdin(Stdio::inherit())
//!         .run();
//!
//!     dbg!(result);
//!     Ok(())
//! }
//! ```
//!
//! With the builder calls uncommented, the shell also sees the host's `/etc` read-only at
//! `/myetc` and `/data` read-write, and gets two seconds of cpu time and five of real time.
//! On a host without `/data`, `rw_bind` returns the error `bind source "/data": No such file
//! or directory` and nothing runs.
//!
//! A judge or a CI runner feeds the input and captures the output:
//!
//! ```rust
//! use hakoniwa::{ExecutorResultStatus, Sandbox, Stdio};
//!
//! fn main() -> Result<(), hakoniwa::Error> {
//!     let sandbox = Sandbox::new(); // the embedded KISS policy
//!     let result = sandbox
//!         .command("/bin/sh", &["sh", "-c", "read a b; echo $((a + b)); cat /etc/motd >&2"])
//!         .tmpfs("/tmp")?
//!         .file("/etc/motd", "no network here\n")?
//!         .limit_cpu(Some(2))
//!         .limit_walltime(Some(5))
//!         .stdin(Stdio::from("20 22\n"))
//!         .stdout(Stdio::piped())
//!         .stderr(Stdio::piped())
//!         .run();
//!     assert_eq!(result.status, ExecutorResultStatus::Ok);
//!     assert_eq!(result.exit_code, Some(0));
//!     assert_eq!(result.stdout, b"42\n");
//!     assert_eq!(result.stderr, b"no network here\n");
//!     println!("{}", result.to_json());
//!     Ok(())
//! }
//! ```
//!
//! ### Builder methods
//!
//! | `Executor` method | is |
//! |---|---|
//! | `ro_bind(src, dest)?`, `rw_bind(src, dest)?` | `--ro-bind SRC:DEST`, `--rw-bind SRC:DEST` |
//! | `work_dir(dir)?` | `--work-dir DIR` |
//! | `tmpfs(target)?`, `proc(target)?`, `devfs(target)?` | a policy's mount with `fstype = "tmpfs"`, `"proc"` or `"devfs"` |
//! | `dir(target, mode)?`, `file(target, contents)?`, `symlink(original, link)?` | a policy's `dirs`, `files` and `symlinks` |
//! | `cwd(dir)?` | a policy's `cwd` |
//! | `hostname(name)?`, `uid(id)?`, `gid(id)?` | `--hostname NAME`, `--uid ID`, `--gid ID` |
//! | `share_net(true)`, `share_uts(true)`, `share_ipc(true)` | `--share-net`, `--share-uts`, `--share-ipc` |
//! | `setenv(name, value)?` | `--setenv NAME=VALUE` |
//! | `seccomp(profile)?`, `socket_families(names)?` | `--seccomp NAME\|FILE`, `--socket-families LIST` |
//! | `limit_as(Some(bytes))`, `limit_core`, `limit_cpu(Some(seconds))`, `limit_fsize`, `limit_nofile`, `limit_nproc`, `limit_stack`, `limit_walltime` | `--limit-as` ... `--limit-walltime`; `None` takes a limit away again |
//! | `report_file(path)?` | `--report-file FILE`; each run adds a line |
//! | `stdin(stdio)`, `stdout(stdio)`, `stderr(stdio)` | see below |
//! | `relay_signals(true)` | what the CLI does: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1 and SIGUSR2 that reach the calling thread go on to the command (off by default: a library leaves its host's signals alone) |
//!
//! The policy itself is `Sandbox::with_policy` of `SandboxPolicy::from_str`, `from_file` or
//! `embedded("KISS" | "net" | "dev")`. The methods marked `?` return
//! `Result<&mut Executor, Error>`: a value that cannot be right (a bind source that does not
//! exist, a path in the sandbox that is relative or has `..`, a hostname longer than 64 bytes,
//! uid 2^32 - 1 ...) is an error at once, and the executor stays as it was.
//!
//! ### Standard streams
//!
//! `Stdio::inherit()`, the default, gives the command the caller's stream, and
//! `Stdio::null()` the host's `/dev/null`. With `Stdio::piped()` what the command writes to
//! stdout or stderr is captured, whole and in memory, into the result's `stdout` and `stderr`
//! (`Vec<u8>`, not part of the JSON); a piped stdin reads end of file at once.
//! `Stdio::from(bytes)`, from a `Vec<u8>`, `&[u8]`, `String` or `&str`, is a stdin that reads
//! those bytes and then end of file. One poll loop serves the pipes together while the command
//! runs, so a command that writes megabytes to both outputs while it reads its input never
//! waits on the library, and a command that leaves its input unread costs the caller no
//! SIGPIPE. Only descriptors 0, 1 and 2 reach the command.
//!
//! ### The result
//!
//! `ExecutorResult` is the report as a typed value (`Debug`, `Clone`): `status`, an
//! `ExecutorResultStatus` (`Ok`, `SandboxSetupError`, `Signaled`, `RestrictedFunction`,
//! `TimeLimitExceeded`, `OutputLimitExceeded`, `MemoryLimitExceeded`), `reason`, `exit_code:
//! Option<i32>`, `start_time`, `real_time`, `system_time`, `user_time`, `max_rss` (KiB),
//! `stdout` and `stderr`. `to_json()` is the report of `--report-file`, and `exit_status()`
//! the status `hakoniwa run` would exit with. `run` neither fails nor panics: a sandbox that
//! cannot be set up is a result with status `SandboxSetupError` and a reason such as
//! `bind "/usr/bin" on "/bin": attach mount: Permission denied`.
//!
//! ### Errors
//!
//! `Error` is one enum: `Path` (a host path, what it was for, and the `io::Error`), `Policy`
//! (file, line, column and message), `InvalidInput`, `Usage` and `Setup`. Its `Display` is one
//! line that names the culprit, such as `bind source "/data": No such file or directory` or
//! `policy:3:12: expected a string for "hostname", found an integer`, and it implements
//! `std::error::Error`.
//!
//! ### Threads
//!
//! The library is safe to use from multi-threaded programs, and from several threads at once.
//! Everything a sandbox needs is allocated before `clone3`, and the sandbox's side allocates
//! nothing and takes no lock. Every descriptor the library opens is close-on-exec, and a
//! sandbox closes every descriptor it inherits but its own, so a pipe that one thread makes
//! never reaches another thread's sandbox. A sandbox is waited for through its pidfd, never
//! with `wait(-1)`, so the caller's own children stay its own. The logger is off unless
//! `hakoniwa::log::set_level` turns it on. A test runs 50 sandboxes in each of 8 threads at
//! once.

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
