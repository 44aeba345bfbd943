//! The one error type of the library.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, and where. `Display` gives one line that names the culprit.
///
/// ```
/// use hakoniwa::{Error, Sandbox};
///
/// let mut executor = Sandbox::new().command("/bin/true", &["true"]);
/// match executor.rw_bind("/no/such/data", "/data") {
///     Err(Error::Path { what, path, source }) => {
///         assert_eq!(what, "bind source");
///         assert_eq!(path.to_str(), Some("/no/such/data"));
///         assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
///     }
///     other => panic!("{other:?}"),
/// }
/// let error = executor.tmpfs("tmp").unwrap_err();
/// assert_eq!(error.to_string(), r#"mount target "tmp" is not an absolute path"#);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A command-line argument is wrong.
    Usage(String),
    /// A value given to the library or in a policy cannot be used.
    InvalidInput(String),
    /// A host path cannot be used: `what` it was for, the path, and the reason.
    Path {
        /// What the path was given as (`bind source`, `work dir`, ...).
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// A policy is wrong: `file:line:column: message`.
    Policy {
        /// The policy's file name as given (or `policy` for text).
        file: String,
        /// The line, from 1.
        line: usize,
        /// The column in characters, from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The sandbox could not be set up.
    Setup(String),
}

impl Error {
    pub(crate) fn path(what: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Path {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::InvalidInput(msg) | Error::Setup(msg) => f.write_str(msg),
            Error::Policy {
                file,
                line,
                column,
                message,
            } => {
                write!(f, "{file}:{line}:{column}: {message}")
            }
            Error::Path { what, path, source } => {
                let why = match source.raw_os_error() {
                    Some(errno) => crate::sys::Errno(errno).to_string(),
                    None => source.to_string(),
                };
                write!(f, "{what} {path:?}: {why}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Path { source, .. } => Some(source),
            _ => None,
        }
    }
}
