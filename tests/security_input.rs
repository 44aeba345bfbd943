//! Input: what follows `--` (or the first word that is not an option) is the command and
//! never an option; hostile option values are refused with status 125 and one line, or
//! taken literally, never interpreted; no shell is ever spawned.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use common::{Caller, TempDir, ok, one_line_error, stdout};

#[test]
fn arguments_of_the_command_are_never_options() {
    for caller in common::CALLERS {
        let out = common::run(
            caller,
            &[
                "run",
                "--",
                "/bin/echo",
                "--help",
                "-v",
                "--ro-bind=/etc",
                "--",
                "-u0",
            ],
        );
        assert_eq!(
            ok(&out),
            "--help -v --ro-bind=/etc -- -u0\n",
            "as {caller:?}"
        );
        // Options stop at the first word that is not one.
        let out = common::run(caller, &["run", "/bin/echo", "--version", "-p", "x", "--"]);
        assert_eq!(ok(&out), "--version -p x --\n", "as {caller:?}");
        // A command named like an option is a command.
        let out = common::run(caller, &["run", "--", "--help"]);
        assert_eq!(
            one_line_error(&out, 127),
            "execve \"--help\": No such file or directory"
        );
    }
}

/// Values no option should interpret: shell syntax that would create a file in `dir` if
/// anything ran it, a newline, nothing at all, 64 KiB, and bytes that are not UTF-8.
fn hostile_values(dir: &TempDir) -> Vec<OsString> {
    let d = dir.arg();
    let mut values: Vec<OsString> = [
        format!("$(touch {d}/dollar)"),
        format!("`touch {d}/backtick`"),
        format!(";touch {d}/semicolon"),
        format!("|touch {d}/pipe"),
        format!("&touch {d}/ampersand"),
        format!("a\ntouch {d}/newline"),
        String::new(),
        "A".repeat(64 * 1024),
        "-v".to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    values.push(OsString::from_vec(b"\xff\xfe;\x01\x7f".to_vec()));
    values
}

/// Every option of `hakoniwa run` that takes a value, from its help, but --report-file
/// (which creates the file it is given, in the cwd: a value taken literally).
fn options_with_values() -> Vec<String> {
    let help = ok(&common::run(Caller::Root, &["run", "--help"]));
    help.lines()
        .filter_map(|l| {
            let long = l.trim_start().split(' ').find(|w| w.starts_with("--"))?;
            // A placeholder (FILE, SRC[:DEST]) right after the option, one space away.
            let rest = l.split(long).nth(1)?.strip_prefix(' ')?;
            rest.starts_with(|c: char| c.is_ascii_uppercase())
                .then(|| long.to_string())
        })
        .filter(|o| o != "--report-file")
        .collect()
}

#[test]
fn hostile_option_values_are_refused_in_one_line_or_taken_literally() {
    let dir = TempDir::new("hk-hostile-");
    let options = options_with_values();
    assert!(options.len() > 30, "{options:?}");
    for value in hostile_values(&dir) {
        for option in options.iter().map(String::as_str) {
            let mut args: Vec<OsString> = vec!["run".into(), option.into(), value.clone()];
            let show = "printf '%s|' \"$(hostname)\" \"$A\"";
            args.extend(["--", "/bin/sh", "-c", show].map(OsString::from));
            let out = common::run(Caller::Root, &args);
            let what = format!(
                "{option} {:?}",
                String::from_utf8_lossy(&value.as_bytes()[..value.len().min(40)])
            );
            match out.status.code() {
                Some(125) => {
                    // The line names the option (or what it was for) and stays about the
                    // value.
                    let message = one_line_error(&out, 125);
                    let other = match option {
                        "--policy-file" => "policy file ",
                        // Landlock's paths are the sandbox's, opened inside it, by a
                        // process that names the rule.
                        "--landlock-ro" => "add the Landlock rule ro ",
                        "--landlock-rx" => "add the Landlock rule rx ",
                        "--landlock-rw" => "add the Landlock rule rw ",
                        // Resolved when the sandbox is planned (a missing one is skipped).
                        "--ro-bind-try" | "--rw-bind-try" => "bind source ",
                        _ => "\0",
                    };
                    let shown = &message[..message.floor_char_boundary(300)];
                    assert!(
                        message.starts_with(&format!("{option}: ")) || message.starts_with(other),
                        "{what}: {shown}"
                    );
                    assert!(message.len() < 200 + value.len() * 4, "{what}: {shown}");
                }
                Some(0) => {
                    // Taken literally: what the option sets is the value, byte for byte.
                    let shown = out.stdout.clone();
                    match option {
                        "--hostname" => {
                            assert_eq!(shown, [value.as_bytes(), b"||"].concat(), "{what}")
                        }
                        // No family at all: every socket refused.
                        "--socket-families" => assert!(value.is_empty(), "{what}"),
                        // A source that does not exist is skipped.
                        "--ro-bind-try" | "--rw-bind-try" => {}
                        // Used only with a cgroup limit, which these runs do not ask for.
                        "--cgroup-parent" => {}
                        _ => panic!("{what} was accepted: {}", stdout(&out)),
                    }
                }
                other => panic!("{what}: status {other:?}: {}", common::stderr(&out)),
            }
        }
        // As the value of a variable (an empty one is left out of the environment), and as
        // the contents of a file the sandbox gets: the command sees it byte for byte.
        for (option, prefix, command) in [
            ("--setenv", "A=", &["/bin/sh", "-c", "printf %s \"$A\""][..]),
            ("--file", "/f:", &["/bin/cat", "/f"]),
        ] {
            let mut setting = OsString::from(prefix);
            setting.push(&value);
            let mut args = vec![OsString::from("run"), option.into(), setting, "--".into()];
            args.extend(command.iter().map(OsString::from));
            let out = common::run(Caller::Root, &args);
            assert_eq!(
                out.stdout,
                value.as_bytes(),
                "{option}: {}",
                common::stderr(&out)
            );
        }
    }
    let created: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(created.is_empty(), "something ran a value: {created:?}");
}

#[test]
fn no_shell_is_ever_spawned() {
    let dir = TempDir::new("hk-no-shell-");
    let trace = dir.path("execve.trace");
    let d = dir.arg();
    let touch = format!("$(touch {d}/x);touch {d}/y|touch {d}/z`touch {d}/w`");
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve,execveat", "-o"])
        .arg(&trace)
        .arg(common::binary())
        .args([
            "run",
            "--setenv",
            &format!("A={touch}"),
            "--hostname",
            "h;x",
        ])
        .args(["--", "echo", &touch])
        .current_dir("/")
        .output()
        .expect("strace is needed to watch execve");
    assert_eq!(ok(&out), format!("{touch}\n"));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let programs: Vec<&str> = trace
        .lines()
        .filter_map(|l| l.split("execve(\"").nth(1)?.split('"').next())
        .collect();
    // hakoniwa itself, then the PATH lookup of `echo` inside the sandbox.
    let binary = common::binary().to_str().unwrap();
    assert_eq!(programs.first(), Some(&binary), "{trace}");
    for program in &programs[1..] {
        assert!(
            program.ends_with("/echo"),
            "{program} was executed:\n{trace}"
        );
    }
    let created: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "execve.trace")
        .collect();
    assert!(created.is_empty(), "{created:?}");
}
