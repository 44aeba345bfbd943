//! Bad input to the library is an error value that says what and where: never a panic, and
//! the executor is left as it was.

use std::error::Error as _;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use hakoniwa::{Error, Executor, ExecutorResultStatus, Sandbox, SandboxPolicy, Stdio};

fn executor() -> Executor {
    Sandbox::new().command("/bin/sh", &["sh", "-c", "echo ran"])
}

/// A call of a builder method that can fail.
type BuilderCall = dyn FnOnce(&mut Executor) -> Result<&mut Executor, Error>;

/// The message of a builder call's error.
fn message(call: impl FnOnce(&mut Executor) -> Result<&mut Executor, Error>) -> String {
    let mut executor = executor();
    match call(&mut executor) {
        Ok(_) => panic!("the call was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_host_paths_are_path_errors_that_name_the_path() {
    let mut executor = executor();
    let error = executor.rw_bind("/no/such/data", "/data").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"bind source "/no/such/data": No such file or directory"#
    );
    match &error {
        Error::Path { what, path, source } => {
            assert_eq!(*what, "bind source");
            assert_eq!(path, OsStr::new("/no/such/data"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(error.source().is_some(), "the io::Error is the source");

    assert_eq!(
        message(|e| e.ro_bind("/no/such", "/x")),
        r#"bind source "/no/such": No such file or directory"#
    );
    assert_eq!(
        message(|e| e.work_dir("/no/such")),
        r#"work dir "/no/such": No such file or directory"#
    );
    assert_eq!(
        message(|e| e.work_dir("/etc/passwd")),
        r#"work dir "/etc/passwd": Not a directory"#
    );
    assert_eq!(
        message(|e| e.ro_bind(OsStr::from_bytes(b"/a\0b"), "/x")),
        r#"bind source "/a\0b": file name contained an unexpected NUL byte"#
    );
    assert_eq!(
        message(|e| e.report_file("/no/such/dir/report.json")),
        r#"report file "/no/such/dir/report.json": No such file or directory"#
    );
}

#[test]
fn bad_sandbox_paths_say_why() {
    let cases: Vec<(String, Box<BuilderCall>)> = vec![
        (
            r#"mount target "relative" is not an absolute path"#.into(),
            Box::new(|e| e.ro_bind("/etc", "relative")),
        ),
        (
            r#"mount target "/a/../b" must not contain "..""#.into(),
            Box::new(|e| e.rw_bind("/tmp", "/a/../b")),
        ),
        (
            r#"mount target "/" is the sandbox's root"#.into(),
            Box::new(|e| e.tmpfs("/")),
        ),
        (
            r#"mount target "proc" is not an absolute path"#.into(),
            Box::new(|e| e.proc("proc")),
        ),
        (
            r#"mount target "/dev/../.." must not contain "..""#.into(),
            Box::new(|e| e.devfs("/dev/../..")),
        ),
        (
            r#"dir "d" is not an absolute path"#.into(),
            Box::new(|e| e.dir("d", 0o755)),
        ),
        (
            r#"dir "/d": mode 0o10000 is more than permission bits (at most 0o7777)"#.into(),
            Box::new(|e| e.dir("/d", 0o10000)),
        ),
        (
            r#"file "/" is the sandbox's root"#.into(),
            Box::new(|e| e.file("/", "x")),
        ),
        (
            r#"file "/a\0b" has a NUL byte"#.into(),
            Box::new(|e| e.file(OsStr::from_bytes(b"/a\0b"), "x")),
        ),
        (
            r#"symlink "/l": the original "" is empty or has a NUL byte"#.into(),
            Box::new(|e| e.symlink("", "/l")),
        ),
        (
            r#"symlink "l" is not an absolute path"#.into(),
            Box::new(|e| e.symlink("/usr", "l")),
        ),
        (
            r#"cwd "work" is not an absolute path"#.into(),
            Box::new(|e| e.cwd("work")),
        ),
    ];
    for (expected, call) in cases {
        assert_eq!(message(call), expected);
    }
}

#[test]
fn bad_values_say_what_is_wrong() {
    let long = "h".repeat(65);
    assert_eq!(
        message(|e| e.hostname(&long)),
        format!("hostname {long:?} is not valid (at most 64 bytes, no NUL)")
    );
    assert_eq!(
        message(|e| e.uid(u32::MAX)),
        r#"uid 4294967295 is not valid (2^32 - 1 means "no id")"#
    );
    assert_eq!(
        message(|e| e.gid(u32::MAX)),
        r#"gid 4294967295 is not valid (2^32 - 1 means "no id")"#
    );
    assert_eq!(
        message(|e| e.setenv("A=B", "x")),
        r#"environment variable name "A=B" is not valid"#
    );
    assert_eq!(
        message(|e| e.setenv("", "x")),
        r#"environment variable name "" is not valid"#
    );
    assert_eq!(
        message(|e| e.setenv("A", OsStr::from_bytes(b"x\0y"))),
        r#"environment variable "A" has a NUL byte in its value"#
    );
}

#[test]
fn a_refused_call_leaves_the_executor_as_it_was() {
    let mut executor = Sandbox::new().command("/bin/sh", &["sh", "-c", "ls /"]);
    assert!(executor.ro_bind("/no/such", "/x").is_err());
    assert!(executor.tmpfs("relative").is_err());
    assert!(executor.hostname(&"x".repeat(100)).is_err());
    let result = executor.stdout(Stdio::piped()).run();
    assert_eq!(result.status, ExecutorResultStatus::Ok, "{}", result.reason);
    let listing = String::from_utf8_lossy(&result.stdout);
    assert!(
        !listing.lines().any(|l| l == "x" || l == "relative"),
        "{listing}"
    );
}

#[test]
fn policies_name_the_file_line_and_column() {
    let error = SandboxPolicy::from_str("hostname = 5\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"policy:1:12: expected a string for "hostname", found an integer"#
    );
    assert!(
        matches!(
            error,
            Error::Policy {
                line: 1,
                column: 12,
                ..
            }
        ),
        "{error:?}"
    );
    let error = SandboxPolicy::from_file("/no/such/policy.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"policy file "/no/such/policy.toml": No such file or directory"#
    );
    let error = SandboxPolicy::embedded("nope").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"no embedded policy named "nope" (there are KISS, net, dev)"#
    );
}

#[test]
fn what_fails_at_run_time_is_in_the_result() {
    let result = Sandbox::new()
        .command("/no/such/program", &["program"])
        .run();
    assert_eq!(result.status, ExecutorResultStatus::SandboxSetupError);
    assert_eq!(
        result.reason,
        r#"execve "/no/such/program": No such file or directory"#
    );
    assert_eq!((result.exit_code, result.exit_status()), (None, 127));

    let empty: [&str; 0] = [];
    let result = Sandbox::new().command("", &empty).run();
    assert_eq!(result.status, ExecutorResultStatus::SandboxSetupError);
    assert_eq!(result.reason, "the command is empty");

    let result = Sandbox::new()
        .command("/bin/sh", &["sh", "-c", "true"])
        .cwd("/no/such/dir")
        .unwrap()
        .run();
    assert_eq!(result.status, ExecutorResultStatus::SandboxSetupError);
    assert_eq!(
        result.reason,
        r#"chdir "/no/such/dir": No such file or directory"#
    );

    let result = Sandbox::new()
        .command(OsStr::from_bytes(b"/bin/s\0h"), &["sh"])
        .run();
    assert_eq!(result.reason, r#"command "/bin/s\0h" contains a NUL byte"#);
}
