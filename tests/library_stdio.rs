//! The command's standard streams through the library: captured output, stdin from bytes,
//! and a caller that survives a command that does not read its input.

mod common;

use std::time::Duration;

use hakoniwa::{ExecutorResult, ExecutorResultStatus, Sandbox, Stdio};

const FOUR_MIB: usize = 4 << 20;

/// Runs `sh -c SCRIPT` with both outputs piped, stdin as given, and a walltime, so that a
/// deadlock fails the test as TLE instead of hanging it.
fn sh(script: &str, stdin: Stdio) -> ExecutorResult {
    Sandbox::new()
        .command("/bin/sh", &["sh", "-c", script])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .limit_walltime(Some(60))
        .run()
}

fn assert_ok(result: &ExecutorResult) {
    common::assert_exited_zero(result, "sh");
}

/// Asserts `bytes` is `len` copies of `byte`, without printing megabytes when it is not.
fn assert_all(bytes: &[u8], byte: u8, len: usize, what: &str) {
    assert_eq!(bytes.len(), len, "{what}: length");
    if let Some(at) = bytes.iter().position(|b| *b != byte) {
        panic!("{what}: byte {at} is {:#x}, not {byte:#x}", bytes[at]);
    }
}

#[test]
fn four_mib_on_stdout_and_stderr_at_once_are_captured_whole() {
    let o = "head -c 4194304 /dev/zero | tr '\\0' o";
    let e = "head -c 4194304 /dev/zero | tr '\\0' e >&2";
    // Both at once, and each order one after the other: a supervisor that read one
    // stream to its end before the other would deadlock on one of these.
    for script in [
        format!("{o} & {e}; wait"),
        format!("{e}; {o}"),
        format!("{o}; {e}"),
    ] {
        let result = sh(&script, Stdio::null());
        assert_ok(&result);
        assert_all(&result.stdout, b'o', FOUR_MIB, &script);
        assert_all(&result.stderr, b'e', FOUR_MIB, &script);
    }
}

/// Bytes that are not all alike, so a lost or repeated block shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[test]
fn four_mib_of_stdin_go_through_while_both_outputs_are_drained() {
    let input = pattern(FOUR_MIB, 7);
    // cat writes stdout while it still reads stdin: feeding and draining must interleave.
    let script = "cat; head -c 4194304 /dev/zero | tr '\\0' e >&2";
    let result = sh(script, Stdio::from(input.clone()));
    assert_ok(&result);
    assert!(result.stdout == input, "stdout differs from the input");
    assert_all(&result.stderr, b'e', FOUR_MIB, "stderr");
}

#[test]
fn stdin_from_every_kind_of_bytes() {
    let text = "line one\nline two\n";
    for stdin in [
        Stdio::from(text),
        Stdio::from(text.to_string()),
        Stdio::from(text.as_bytes()),
        Stdio::from(text.as_bytes().to_vec()),
    ] {
        let shown = format!("{stdin:?}");
        let result = sh("cat; echo end", stdin);
        assert_ok(&result);
        assert_eq!(result.stdout, b"line one\nline two\nend\n", "{shown}");
    }
    assert_eq!(format!("{:?}", Stdio::from("abc")), "Stdio::from(3 bytes)");
}

#[test]
fn piped_stdin_without_bytes_reads_end_of_file() {
    for stdin in [Stdio::piped(), Stdio::from(""), Stdio::null()] {
        let shown = format!("{stdin:?}");
        let result = sh("cat; echo \"cat said $?\"", stdin);
        assert_ok(&result);
        assert_eq!(result.stdout, b"cat said 0\n", "{shown}");
    }
}

#[test]
fn stdout_and_stderr_are_separate_and_the_rest_is_not_captured() {
    let result = sh("echo out; echo err >&2", Stdio::null());
    assert_eq!(
        (result.stdout.as_slice(), result.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    // Output that is not piped is not captured; /dev/null swallows it.
    let result = Sandbox::new()
        .command("/bin/sh", &["sh", "-c", "echo out; echo err >&2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .run();
    assert_eq!(result.stdout, b"");
    assert_eq!(result.stderr, b"err\n");
    // The captured output is not part of the report.
    assert!(!result.to_json().contains("err"), "{}", result.to_json());
    // Debug shows it as text.
    let debug = format!("{result:?}");
    assert!(debug.contains(r#"stderr: "err\n""#), "{debug}");
}

#[test]
fn the_output_of_a_sandbox_that_is_killed_is_kept() {
    let result = Sandbox::new()
        .command(
            "/bin/sh",
            &["sh", "-c", "echo before; sleep 10; echo after"],
        )
        .stdout(Stdio::piped())
        .limit_walltime(Some(1))
        .run();
    assert_eq!(result.status, ExecutorResultStatus::TimeLimitExceeded);
    assert_eq!(result.stdout, b"before\n");
}

#[test]
fn background_processes_holding_stdout_do_not_keep_the_run_alive() {
    // The command exits while a background child still holds stdout: init ends with the
    // command, the kernel kills the child with it, and the pipe reaches end of file.
    let started = std::time::Instant::now();
    let result = sh("sleep 30 & echo started", Stdio::null());
    assert_ok(&result);
    assert_eq!(result.stdout, b"started\n");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn bytes_cannot_be_stdout_or_stderr() {
    let result = Sandbox::new()
        .command("/bin/true", &["true"])
        .stdout(Stdio::from("x"))
        .run();
    assert_eq!(result.status, ExecutorResultStatus::SandboxSetupError);
    assert_eq!(
        result.reason,
        "stdout: Stdio::from(bytes) is input for stdin; Stdio::piped() captures output"
    );
    let result = Sandbox::new()
        .command("/bin/true", &["true"])
        .stderr(Stdio::from(vec![1u8]))
        .run();
    assert!(result.reason.starts_with("stderr: "), "{}", result.reason);
}

#[test]
fn a_command_that_leaves_its_input_unread_does_not_hurt_the_caller() {
    // Rust programs ignore SIGPIPE, but a library's host may not: take the default action
    // back, under which a SIGPIPE from feeding stdin would kill this whole test process.
    // SAFETY: SIG_DFL is a valid disposition; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let input = pattern(FOUR_MIB, 3);
    for script in [
        "exit 0",
        "head -c 1 >/dev/null",
        "head -c 100000 >/dev/null; exec 0<&-; sleep 0.1",
    ] {
        for _ in 0..5 {
            let result = sh(script, Stdio::from(input.as_slice()));
            assert_ok(&result);
        }
    }
}

/// The children of every thread of this process.
fn own_children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids
}

#[test]
fn init_keeps_no_copy_of_the_pipes() {
    let marker = format!("MARKER=stdio{}", std::process::id());
    let (name, value) = marker.split_once('=').unwrap();
    let dir = common::TempDir::new("init-fds");
    let release = dir.path("release");
    let running = std::thread::spawn({
        let dir = dir.0.clone();
        let (name, value) = (name.to_string(), value.to_string());
        move || {
            Sandbox::new()
                .command(
                    "/bin/sh",
                    &[
                        "sh",
                        "-c",
                        "while ! test -e /w/release; do sleep 0.02; done",
                    ],
                )
                .rw_bind(&dir, "/w")
                .unwrap()
                .setenv(name, value)
                .unwrap()
                .stdin(Stdio::from("unread input"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .limit_walltime(Some(30))
                .run()
        }
    });
    // Init is the child of ours whose own child (the command) has the marker.
    let find_init = || {
        own_children().into_iter().find(|init| {
            let children = format!("/proc/{init}/task/{init}/children");
            std::fs::read_to_string(children)
                .unwrap_or_default()
                .split_whitespace()
                .any(|command| {
                    let environ =
                        std::fs::read(format!("/proc/{command}/environ")).unwrap_or_default();
                    environ
                        .split(|b| *b == 0)
                        .any(|var| var == marker.as_bytes())
                })
        })
    };
    let mut init = None;
    assert!(
        common::eventually(Duration::from_secs(10), || {
            init = find_init();
            init.is_some()
        }),
        "the sandbox's init was not found"
    );
    let init = init.unwrap();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .map(|e| {
            let link = std::fs::read_link(e.unwrap().path()).unwrap();
            link.to_string_lossy().into_owned()
        })
        .collect();
    std::fs::write(&release, "").unwrap();
    let result = running.join().unwrap();
    assert_ok(&result);
    // The report pipe, and nothing else: no stream, no copy of a stream's pipe.
    assert_eq!(fds.len(), 1, "init holds {fds:?}");
    assert!(fds[0].starts_with("pipe:"), "{fds:?}");
}
