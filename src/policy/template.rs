//! The policy template language, applied to a policy's text before it is read as TOML.
//!
//! `{{ function "argument" }}` is replaced by:
//! - `os_env "NAME"`: the host variable as a quoted TOML string (`""` when unset), so no
//!   value can inject TOML;
//! - `os_homedir "/suffix"`: `$HOME` followed by the suffix, quoted the same way;
//! - `fs_read_to_string "PATH"`: the file's text, inserted as it is (the policy author's
//!   own content).
//!
//! The rendered text remembers where each part came from, so an error found later points
//! at the policy file itself, or at the `{{ ... }}` that inserted the text at fault.

use super::TextFileError;
use super::toml::{MAX_INPUT, MAX_RENDERED};
use crate::error::Error;

/// Rendered text and the map back to the source.
pub(crate) struct Rendered {
    pub(crate) text: String,
    /// `(rendered offset, source offset, expansion)`, sorted by rendered offset: from that
    /// rendered offset on, text was copied from the source at that offset, or (for an
    /// expansion) inserted by the template call at that source offset.
    spans: Vec<(usize, usize, bool)>,
}

impl Rendered {
    /// The source offset that produced rendered offset `at`.
    pub(crate) fn source_offset(&self, at: usize) -> usize {
        let i = self.spans.partition_point(|(start, _, _)| *start <= at);
        match i.checked_sub(1).and_then(|i| self.spans.get(i)) {
            Some((start, source, false)) => source + (at - start),
            Some((_, source, true)) => *source,
            None => at,
        }
    }
}

/// A template error: where in the source, and what.
#[derive(Debug)]
pub(crate) struct TemplateError {
    pub(crate) at: usize,
    pub(crate) message: String,
}

/// Where the template functions look things up: the host, or fixed values in tests.
pub(crate) trait Host {
    fn env(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &str) -> Result<String, String>;
}

/// The real host: process environment and file system.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        super::read_text_file(std::path::Path::new(path)).map_err(|e| match e {
            TextFileError::Io(e) => Error::path("file", std::path::Path::new(path), e).to_string(),
            TextFileError::TooLarge => format!("file {path:?} is larger than {MAX_INPUT} bytes"),
            TextFileError::NotUtf8 { .. } => format!("file {path:?} is not valid UTF-8"),
        })
    }
}

/// Renders every `{{ ... }}` of `source`.
pub(crate) fn render(source: &str, host: &dyn Host) -> Result<Rendered, TemplateError> {
    let mut out = Rendered {
        text: String::with_capacity(source.len()),
        spans: Vec::new(),
    };
    let mut copied = 0;
    while let Some(found) = source[copied..].find("{{") {
        let open = copied + found;
        out.spans.push((out.text.len(), copied, false));
        out.text.push_str(&source[copied..open]);
        let close = source[open..]
            .find("}}")
            .map(|i| open + i)
            .ok_or_else(|| TemplateError {
                at: open,
                message: "unclosed '{{'".into(),
            })?;
        let expansion = call(&source[open + 2..close], open, host)?;
        out.spans.push((out.text.len(), open, true));
        out.text.push_str(&expansion);
        if out.text.len() > MAX_RENDERED {
            return Err(TemplateError {
                at: open,
                message: format!("the rendered policy is larger than {MAX_RENDERED} bytes"),
            });
        }
        copied = close + 2;
    }
    out.spans.push((out.text.len(), copied, false));
    out.text.push_str(&source[copied..]);
    Ok(out)
}

/// Evaluates the inside of one `{{ ... }}` that starts at source offset `at`.
fn call(inside: &str, at: usize, host: &dyn Host) -> Result<String, TemplateError> {
    let fail = |message: String| TemplateError { at, message };
    let inside = inside.trim();
    let (function, rest) = inside
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((inside, ""));
    let argument =
        parse_argument(rest.trim()).map_err(|why| fail(format!("{{{{ {function} }}}}: {why}")));
    match function {
        "os_env" => Ok(quote(&host.env(&argument?).unwrap_or_default())),
        "os_homedir" => {
            let suffix = argument?;
            let home = host
                .env("HOME")
                .filter(|h| !h.is_empty())
                .ok_or_else(|| fail("{{ os_homedir }}: $HOME is not set".into()))?;
            Ok(quote(&format!("{home}{suffix}")))
        }
        "fs_read_to_string" => host
            .read_file(&argument?)
            .map_err(|why| fail(format!("{{{{ fs_read_to_string }}}}: {why}"))),
        "" => Err(fail(
            "empty '{{ }}': expected os_env, os_homedir or fs_read_to_string".into(),
        )),
        other => Err(fail(format!(
            "unknown template function {other:?} (expected os_env, os_homedir or fs_read_to_string)"
        ))),
    }
}

/// The one argument: a double-quoted string, in which `\"` and `\\` stand for `"` and `\`.
fn parse_argument(text: &str) -> Result<String, String> {
    let body = text
        .strip_prefix('"')
        .ok_or_else(|| "expected one argument in double quotes".to_string())?;
    let mut value = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.as_str().trim().is_empty() => return Ok(value),
            '"' => return Err("expected one argument in double quotes".into()),
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => value.push(escaped),
                _ => return Err("only \\\" and \\\\ may be escaped in an argument".into()),
            },
            c => value.push(c),
        }
    }
    Err("unterminated argument".into())
}

/// `value` as a TOML basic string literal. The escapes JSON needs are exactly the ones a
/// TOML basic string needs, so the report's escaper serves both.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    crate::report::json_string(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::toml;

    struct FakeHost;

    impl Host for FakeHost {
        fn env(&self, name: &str) -> Option<String> {
            match name {
                "LANG" => Some("C.UTF-8".into()),
                "EVIL" => Some("x\"\nshare_net = true\n\\".into()),
                "HOME" => Some("/home/me".into()),
                _ => None,
            }
        }

        fn read_file(&self, path: &str) -> Result<String, String> {
            match path {
                "/inc" => Ok("a = 1\nb = 2\n".into()),
                _ => Err(format!("file {path:?}: No such file or directory")),
            }
        }
    }

    fn rendered(source: &str) -> String {
        render(source, &FakeHost)
            .map(|r| r.text)
            .unwrap_or_else(|e| format!("error at {}: {}", e.at, e.message))
    }

    #[test]
    fn functions_expand() {
        assert_eq!(
            rendered("LANG = {{ os_env \"LANG\" }}"),
            "LANG = \"C.UTF-8\""
        );
        assert_eq!(rendered("X = {{os_env \"UNSET\"}}"), "X = \"\"");
        assert_eq!(
            rendered("H = {{ os_homedir \"/.cache\" }}"),
            "H = \"/home/me/.cache\""
        );
        assert_eq!(
            rendered("{{ fs_read_to_string \"/inc\" }}c = 3"),
            "a = 1\nb = 2\nc = 3"
        );
    }

    #[test]
    fn env_values_cannot_inject_toml() {
        let text = rendered("v = {{ os_env \"EVIL\" }}\n");
        let table = toml::parse(&text).unwrap();
        assert_eq!(table.entries().len(), 1, "{text}");
        let entry = table.get("v").unwrap();
        assert_eq!(
            entry.item.value,
            toml::Value::String("x\"\nshare_net = true\n\\".into())
        );
    }

    #[test]
    fn errors_point_at_the_call() {
        assert_eq!(
            rendered("a = 1\nb = {{ nope \"x\" }}"),
            "error at 10: unknown template function \"nope\" (expected os_env, os_homedir or fs_read_to_string)"
        );
        assert_eq!(
            rendered("b = {{ os_env }}"),
            "error at 4: {{ os_env }}: expected one argument in double quotes"
        );
        assert_eq!(
            rendered("b = {{ os_env \"A\" \"B\" }}"),
            "error at 4: {{ os_env }}: expected one argument in double quotes"
        );
        assert_eq!(rendered("b = {{ os_env \"A"), "error at 4: unclosed '{{'");
        assert_eq!(
            rendered("{{ fs_read_to_string \"/missing\" }}"),
            "error at 0: {{ fs_read_to_string }}: file \"/missing\": No such file or directory"
        );
    }

    #[test]
    fn offsets_map_back_to_the_source() {
        let source = "a = {{ fs_read_to_string \"/inc\" }}\nz = 1";
        let r = render(source, &FakeHost).unwrap();
        // Inside the inserted text: the call's offset.
        assert_eq!(r.source_offset(r.text.find("b = 2").unwrap()), 4);
        // After it: the source's own offset.
        assert_eq!(
            r.source_offset(r.text.find("z = 1").unwrap()),
            source.find("z = 1").unwrap()
        );
        assert_eq!(r.source_offset(0), 0);
    }
}
