//! How a sandboxed command ended: the result type, its JSON form, and time formatting.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// The verdict on a sandbox run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorResultStatus {
    /// The command exited by itself, with any exit code. `OK` in JSON.
    Ok,
    /// The sandbox could not be set up, or the command could not be executed; nothing of
    /// the command ran. `SE` in JSON.
    SandboxSetupError,
    /// The command was killed by a signal. `SIG` in JSON.
    Signaled,
    /// The command was killed by SIGSYS: it made a system call the seccomp filter forbids.
    /// `RFE` in JSON.
    RestrictedFunction,
    /// The command ran out of time. `TLE` in JSON.
    TimeLimitExceeded,
    /// The command wrote more than its file size limit. `OLE` in JSON.
    OutputLimitExceeded,
    /// The command ran out of memory under a memory limit. `MLE` in JSON.
    MemoryLimitExceeded,
}

impl ExecutorResultStatus {
    /// The short code used in the JSON report (`OK`, `SE`, `SIG`, ...).
    pub fn code(self) -> &'static str {
        match self {
            ExecutorResultStatus::Ok => "OK",
            ExecutorResultStatus::SandboxSetupError => "SE",
            ExecutorResultStatus::Signaled => "SIG",
            ExecutorResultStatus::RestrictedFunction => "RFE",
            ExecutorResultStatus::TimeLimitExceeded => "TLE",
            ExecutorResultStatus::OutputLimitExceeded => "OLE",
            ExecutorResultStatus::MemoryLimitExceeded => "MLE",
        }
    }
}

/// The report of one sandbox run, as [`Executor::run`](crate::Executor::run) returns it.
///
/// ```
/// use hakoniwa::{ExecutorResultStatus, Sandbox, Stdio};
///
/// let result = Sandbox::new()
///     .command("/bin/sh", &["sh", "-c", "echo out; echo err >&2; exit 3"])
///     .stdout(Stdio::piped())
///     .stderr(Stdio::piped())
///     .run();
/// assert_eq!(result.status, ExecutorResultStatus::Ok); // it exited by itself
/// assert_eq!(result.exit_code, Some(3));
/// assert_eq!(result.stdout, b"out\n");
/// assert_eq!(result.stderr, b"err\n");
/// assert!(result.to_json().starts_with(r#"{"status":"OK","reason":"","exit_code":3,"#));
/// ```
#[derive(Clone)]
pub struct ExecutorResult {
    /// The verdict.
    pub status: ExecutorResultStatus,
    /// Empty when the status is `Ok`, otherwise what happened, in words.
    pub reason: String,
    /// The command's exit status (128 + N when killed by signal N); `None` when it never ran.
    pub exit_code: Option<i32>,
    /// When the sandbox was started (wall clock).
    pub start_time: SystemTime,
    /// How long the sandbox ran (monotonic clock).
    pub real_time: Duration,
    /// CPU time spent in the kernel by every process of the sandbox.
    pub system_time: Duration,
    /// CPU time spent in user space by every process of the sandbox.
    pub user_time: Duration,
    /// The largest resident set of any process of the sandbox, in KiB.
    pub max_rss: i64,
    /// What the command wrote to its standard output, when that was
    /// [`Stdio::piped`](crate::Stdio::piped); empty otherwise. Not part of the JSON.
    pub stdout: Vec<u8>,
    /// What the command wrote to its standard error, when that was
    /// [`Stdio::piped`](crate::Stdio::piped); empty otherwise. Not part of the JSON.
    pub stderr: Vec<u8>,
    /// Each system call the command made and how often, most frequent first, when it ran
    /// with [`Executor::trace_syscalls`](crate::Executor::trace_syscalls); empty otherwise.
    /// Not part of the JSON.
    pub syscalls: Vec<(String, u64)>,
    exit_status: i32,
    report_error: Option<String>,
}

impl fmt::Debug for ExecutorResult {
    /// Shows the captured output as text when it is UTF-8, as `std::process::Output` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |bytes: &[u8]| match std::str::from_utf8(bytes) {
            Ok(text) => format!("{text:?}"),
            Err(_) => format!("{bytes:?}"),
        };
        let mut s = f.debug_struct("ExecutorResult");
        s.field("status", &self.status)
            .field("reason", &self.reason)
            .field("exit_code", &self.exit_code)
            .field("start_time", &self.start_time)
            .field("real_time", &self.real_time)
            .field("system_time", &self.system_time)
            .field("user_time", &self.user_time)
            .field("max_rss", &self.max_rss)
            .field("stdout", &format_args!("{}", text(&self.stdout)))
            .field("stderr", &format_args!("{}", text(&self.stderr)));
        if !self.syscalls.is_empty() {
            s.field("syscalls", &self.syscalls);
        }
        if let Some(error) = &self.report_error {
            s.field("report_error", error);
        }
        s.finish()
    }
}

impl ExecutorResult {
    /// A run that failed before the sandbox existed.
    pub(crate) fn setup_error(reason: String, exit_status: i32) -> ExecutorResult {
        // SAFETY-free zero: all-zero is a valid rusage.
        let usage = zero_usage();
        let mut result = ExecutorResult::from_usage(SystemTime::now(), Duration::ZERO, &usage);
        result.set_setup_error(reason, exit_status);
        result
    }

    pub(crate) fn from_usage(
        start_time: SystemTime,
        real_time: Duration,
        usage: &libc::rusage,
    ) -> ExecutorResult {
        let time = |tv: libc::timeval| {
            Duration::new(
                tv.tv_sec.max(0) as u64,
                (tv.tv_usec.clamp(0, 999_999) * 1000) as u32,
            )
        };
        ExecutorResult {
            status: ExecutorResultStatus::Ok,
            reason: String::new(),
            exit_code: None,
            start_time,
            real_time,
            system_time: time(usage.ru_stime),
            user_time: time(usage.ru_utime),
            max_rss: usage.ru_maxrss,
            stdout: Vec::new(),
            stderr: Vec::new(),
            syscalls: Vec::new(),
            exit_status: 0,
            report_error: None,
        }
    }

    pub(crate) fn set_setup_error(&mut self, reason: String, exit_status: i32) {
        self.status = ExecutorResultStatus::SandboxSetupError;
        self.reason = reason;
        self.exit_code = None;
        self.exit_status = exit_status;
    }

    /// The command ran and ended with `wait_status`.
    pub(crate) fn set_ended(
        &mut self,
        status: ExecutorResultStatus,
        reason: String,
        wait_status: i32,
    ) {
        let code = crate::sandbox::exit_code(wait_status);
        self.status = status;
        self.reason = reason;
        self.exit_code = Some(code);
        self.exit_status = code;
    }

    /// The exit status `hakoniwa run` ends with for this result: the command's exit code,
    /// 128 + N for signal N, 127 when the command was not found, 126 when it could not be
    /// executed, 125 when the sandbox could not be set up.
    pub fn exit_status(&self) -> i32 {
        self.exit_status
    }

    /// Why the report could not be written to the file given to
    /// [`Executor::report_file`](crate::Executor::report_file), if it could not.
    pub fn report_error(&self) -> Option<&str> {
        self.report_error.as_deref()
    }

    pub(crate) fn set_report_error(&mut self, error: &Error) {
        self.report_error = Some(error.to_string());
    }

    /// The result as one JSON object, in the seed's shape:
    /// `{"status":"OK","reason":"","exit_code":0,"start_time":"2022-08-21T09:14:11.058546277Z",
    /// "real_time":{"secs":16,"nanos":460452556},"system_time":{..},"user_time":{..},"max_rss":3780}`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"status\":");
        json_string(&mut out, self.status.code());
        out.push_str(",\"reason\":");
        json_string(&mut out, &self.reason);
        match self.exit_code {
            Some(code) => {
                let _ = write!(out, ",\"exit_code\":{code}");
            }
            None => out.push_str(",\"exit_code\":null"),
        }
        let _ = write!(
            out,
            ",\"start_time\":\"{}\"",
            rfc3339(self.start_time, true)
        );
        for (name, d) in [
            ("real_time", self.real_time),
            ("system_time", self.system_time),
            ("user_time", self.user_time),
        ] {
            let _ = write!(
                out,
                ",\"{name}\":{{\"secs\":{},\"nanos\":{}}}",
                d.as_secs(),
                d.subsec_nanos()
            );
        }
        let _ = write!(out, ",\"max_rss\":{}}}", self.max_rss);
        out
    }
}

/// The file a report goes to, opened (created or truncated) before the sandbox starts: a
/// report that cannot be written stops the run before the command runs, and the report
/// goes into the file opened then, never through a name the command may have changed
/// since (a symlink it planted cannot redirect the write).
#[derive(Debug)]
pub(crate) struct ReportFile {
    /// What the file was given as, for errors (`--report-file`, `report file`).
    what: &'static str,
    path: PathBuf,
    file: File,
}

impl ReportFile {
    pub(crate) fn create(what: &'static str, path: &Path) -> Result<ReportFile, Error> {
        let file = File::create(path).map_err(|e| Error::path(what, path, e))?;
        Ok(ReportFile {
            what,
            path: path.to_path_buf(),
            file,
        })
    }

    /// Adds the result as one JSON object and a newline.
    pub(crate) fn write(&mut self, result: &ExecutorResult) -> Result<(), Error> {
        let mut json = result.to_json();
        json.push('\n');
        self.file
            .write_all(json.as_bytes())
            .map_err(|e| Error::path(self.what, &self.path, e))
    }
}

fn zero_usage() -> libc::rusage {
    // SAFETY: all-zero bytes are a valid rusage (integers and timevals only).
    unsafe { std::mem::zeroed() }
}

/// Appends `s` as a JSON string literal (also a valid TOML basic string).
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a wall-clock time as RFC 3339 in UTC: `2022-08-21T09:14:11Z`, or with
/// `nanos`, `2022-08-21T09:14:11.058546277Z`.
pub(crate) fn rfc3339(time: SystemTime, nanos: bool) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if nanos {
        format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:09}Z",
            since.subsec_nanos()
        )
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The name of a signal (`SIGKILL`), or `SIG<n>` for one without a classic name.
pub fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(signal - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("SIG{signal}"), |name| (*name).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::new(1_661_073_251, 58_546_277);
        assert_eq!(rfc3339(t, true), "2022-08-21T09:14:11.058546277Z");
        assert_eq!(rfc3339(t, false), "2022-08-21T09:14:11Z");
        assert_eq!(rfc3339(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        // A leap day, and the end of a century that is not a leap year.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap, false), "2000-02-29T00:00:00Z");
        let y2100 = UNIX_EPOCH + Duration::from_secs(4_107_542_399);
        assert_eq!(rfc3339(y2100, false), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn json_escapes_everything_json_requires() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}\u{7f}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001\u007fé""#);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(40), "SIG40");
        assert_eq!(signal_name(0), "SIG0");
    }
}
