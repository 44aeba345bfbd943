//! The `hakoniwa` command line: a thin user of the library.

mod args;
mod completion;
mod help;
mod limits;
mod man;
mod policy;
mod run;
mod seccomp;
mod shebang;

use std::ffi::OsString;

use crate::error::Error;

#[doc(hidden)]
pub use crate::sys::StartupArena;

/// Exit status for every failure of hakoniwa itself.
const FAILURE: i32 = 125;

/// Runs the `hakoniwa` command with the process's arguments and exits.
/// Set by `--quiet`: hakoniwa prints nothing of its own, not even errors.
pub(crate) static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints one of hakoniwa's own lines on stderr, unless `--quiet`.
pub(crate) fn complain(text: std::fmt::Arguments<'_>) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        write_stderr(&format!("hakoniwa: {text}\n"));
    }
}

pub fn main() -> ! {
    crate::sys::ensure_std_streams();
    // Rust starts with SIGPIPE ignored, which turns `hakoniwa ... | head -1` into a panic on
    // the next write. Like any Unix tool, hakoniwa should just end.
    crate::sys::default_sigpipe();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match shebang::expand(args).and_then(|args| dispatch(&args)) {
        Ok(code) => code,
        Err(error) => {
            complain(format_args!("{error}"));
            FAILURE
        }
    };
    std::process::exit(code)
}

fn dispatch(args: &[OsString]) -> Result<i32, Error> {
    let Some(first) = args.first() else {
        write_stderr(&help::main());
        return Ok(FAILURE);
    };
    match first.to_str() {
        Some("run") => run::main(&args[1..], run::Mode::Run),
        Some("trace") => run::main(&args[1..], run::Mode::Trace),
        Some("policy") => policy::main(&args[1..]),
        Some("seccomp") => seccomp::main(&args[1..]),
        Some("completion") => print(completion::main(args.get(1).and_then(|a| a.to_str()))?),
        Some("man") => print(man::page()),
        Some("help") => match args.get(1).and_then(|a| a.to_str()) {
            None => print(help::main()),
            Some("run") => print(help::run()),
            Some("trace") => print(help::trace()),
            Some("policy") => print(help::policy()),
            Some("seccomp") => print(help::seccomp()),
            Some(other) => Err(Error::Usage(format!(
                "no help for unknown command '{other}'"
            ))),
        },
        Some("-h" | "--help") => print(help::main()),
        Some("-V" | "--version") => print(format!("hakoniwa {}\n", env!("CARGO_PKG_VERSION"))),
        _ => Err(Error::Usage(format!(
            "unknown command '{}' (try 'hakoniwa run --help')",
            first.to_string_lossy()
        ))),
    }
}

/// Writes `text` to stderr with one `write` (so a message is one line even among other
/// writers) and ignores a stderr that cannot take it: closed, full or a dead pipe must not
/// turn hakoniwa's exit status 125 into a panic's 101.
pub(crate) fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn print(text: String) -> Result<i32, Error> {
    print!("{text}");
    Ok(0)
}

/// A subcommand's words, for matching against the forms it takes (a word that is not
/// UTF-8 matches none of them, and is shown as the replacement characters it reads as).
fn words(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}
