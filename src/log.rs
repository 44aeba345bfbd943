//! The verbose logger: `[2022-08-21T09:14:11Z INFO  hakoniwa::executor] message` on stderr.
//!
//! Off by default, so a program embedding the library prints nothing; the CLI turns it on
//! with `--verbose`. Messages are formatted only when their level is on.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

/// How much the logger prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing.
    Off = 0,
    /// What the sandbox is made of and how the command ended.
    Info = 1,
    /// Everything, down to each setup step.
    Debug = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Off as u8);

/// Sets how much hakoniwa logs to stderr (process-wide).
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages of `level` are printed.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && LEVEL.load(Ordering::Relaxed) >= level as u8
}

#[doc(hidden)]
pub fn write(level: Level, target: &str, args: fmt::Arguments<'_>) {
    let name = match level {
        Level::Debug => "DEBUG",
        _ => "INFO ",
    };
    let line = format!(
        "[{} {name} {target}] {args}\n",
        crate::report::rfc3339(SystemTime::now(), false)
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs at info level: `info!(target, "format", args...)`.
macro_rules! info {
    ($target:expr, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::Info) {
            $crate::log::write($crate::log::Level::Info, $target, format_args!($($arg)+));
        }
    };
}

/// Logs at debug level: `debug!(target, "format", args...)`.
macro_rules! debug {
    ($target:expr, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::write($crate::log::Level::Debug, $target, format_args!($($arg)+));
        }
    };
}

pub(crate) use {debug, info};
