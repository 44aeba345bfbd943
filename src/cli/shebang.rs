//! `#!/usr/local/bin/hakoniwa run [OPTIONS] -- INTERPRETER [ARG...]` at the top of a script.
//!
//! The kernel passes everything after the interpreter's path as ONE argument, then the
//! script's path, then the script's arguments. That one argument is split as `env -S` splits
//! its string, the script is bound read-only at its own absolute path, and the command
//! becomes `INTERPRETER [ARG...] /ABS/SCRIPT ARGS...`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::error::Error;

const FORM: &str = "expected '#!/path/to/hakoniwa run [OPTIONS] -- INTERPRETER [ARG...]'";

/// The arguments of a shebang line rewritten as an ordinary command line; other argument
/// lists come back as they are.
pub(crate) fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, Error> {
    let Some(first) = args.first() else {
        return Ok(args);
    };
    let line = first.as_bytes();
    let is_shebang = line.iter().any(u8::is_ascii_whitespace)
        && (line.starts_with(b"run ") || line.starts_with(b"run\t"));
    if !is_shebang {
        return Ok(args);
    }
    let shown = first.to_string_lossy().into_owned();
    let bad = |why: &str| Error::Usage(format!("shebang line {shown:?}: {why}; {FORM}"));
    let words = split(line).map_err(|why| bad(&why))?;
    let dashes = words
        .iter()
        .position(|w| w == b"--")
        .ok_or_else(|| bad("no '--'"))?;
    let (options, interpreter) = (&words[..dashes], &words[dashes + 1..]);
    if interpreter.is_empty() {
        return Err(bad("no interpreter after '--'"));
    }
    let script = args
        .get(1)
        .ok_or_else(|| bad("no script path follows it"))?;
    let script = crate::sandbox::absolute(Path::new(script));
    std::fs::metadata(&script).map_err(|e| Error::path("script", &script, e))?;
    let mut bind = script.as_os_str().to_os_string();
    bind.push(":");
    bind.push(&script);
    let mut out: Vec<OsString> = options
        .iter()
        .map(|w| OsString::from_vec(w.clone()))
        .collect();
    out.extend([OsString::from("--ro-bind"), bind, OsString::from("--")]);
    out.extend(interpreter.iter().map(|w| OsString::from_vec(w.clone())));
    out.push(script.into_os_string());
    out.extend(args.into_iter().skip(2));
    Ok(out)
}

/// Splits a string as `env -S` does: whitespace separates words; single quotes keep
/// everything; double quotes keep all but `\"` and `\\`; outside single quotes `\\`, `\"`,
/// `\'`, `\_` (a space), `\t` and `\n` stand for those characters.
fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b' ' | b'\t' | b'\n' => words.extend(word.take()),
            b'\'' => {
                let current = word.get_or_insert_with(Vec::new);
                loop {
                    match bytes.next() {
                        Some(b'\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            b'"' => {
                let current = word.get_or_insert_with(Vec::new);
                loop {
                    match bytes.next() {
                        Some(b'"') => break,
                        Some(b'\\') => current.push(escaped(bytes.next())?),
                        Some(c) => current.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            b'\\' => word
                .get_or_insert_with(Vec::new)
                .push(escaped(bytes.next())?),
            c => word.get_or_insert_with(Vec::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn escaped(c: Option<u8>) -> Result<u8, String> {
    match c {
        Some(c @ (b'\\' | b'"' | b'\'')) => Ok(c),
        Some(b'_') => Ok(b' '),
        Some(b't') => Ok(b'\t'),
        Some(b'n') => Ok(b'\n'),
        Some(c) => Err(format!("unknown escape \\{}", c as char)),
        None => Err("a backslash ends the line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line.as_bytes())
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_env_s() {
        assert_eq!(words("run -v -- /bin/sh"), ["run", "-v", "--", "/bin/sh"]);
        assert_eq!(
            words("run --hostname 'a b' -- sh -c"),
            ["run", "--hostname", "a b", "--", "sh", "-c"]
        );
        assert_eq!(
            words(r#"run --setenv "X=a \"b\" c" --"#),
            ["run", "--setenv", "X=a \"b\" c", "--"]
        );
        assert_eq!(words(r"run a\_b c\\d ''"), ["run", "a b", r"c\d", ""]);
        assert!(split(b"run 'open").is_err());
        assert!(split(b"run \\q").is_err());
    }

    #[test]
    fn other_arguments_are_left_alone() {
        let args: Vec<OsString> = ["run", "--", "ls"].iter().map(OsString::from).collect();
        assert_eq!(expand(args.clone()).unwrap(), args);
        let err = expand(vec!["run -v /bin/sh".into(), "/x".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no '--'"), "{err}");
    }
}
