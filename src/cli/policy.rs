//! `hakoniwa policy`: list, show and check policies.

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;
use crate::policy::{self, EMBEDDED, SandboxPolicy};

pub(crate) fn main(args: &[OsString]) -> Result<i32, Error> {
    let words = super::words(args);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["list"] => {
            for (name, file, _) in EMBEDDED {
                println!("{name:<6} {file}");
            }
            Ok(0)
        }
        ["show"] => show("KISS"),
        ["show", what] => show(what),
        ["check", file] => {
            SandboxPolicy::from_file(file)?;
            println!("{file}: OK");
            Ok(0)
        }
        ["-h" | "--help"] | ["help"] => {
            print!("{}", super::help::policy());
            Ok(0)
        }
        _ => Err(Error::Usage(format!(
            "policy: expected 'list', 'show [NAME|FILE]' or 'check FILE', got {:?}",
            words.join(" ")
        ))),
    }
}

/// Prints an embedded policy as shipped, or a file's rendered text once it checks out. An
/// argument with a slash, or that names no embedded policy, is a file.
fn show(what: &str) -> Result<i32, Error> {
    if !what.contains('/')
        && let Some((_, _, text)) = EMBEDDED
            .iter()
            .find(|(name, file, _)| name.eq_ignore_ascii_case(what) || *file == what)
    {
        print!("{text}");
        return Ok(0);
    }
    let path = Path::new(what);
    let text = policy::read_policy_file(path)?;
    print!("{}", policy::render_checked(what, &text)?);
    Ok(0)
}
