//! The library from many threads at once: 8 threads run 50 sandboxes each from one shared
//! `Sandbox`, with piped streams. Nothing may cross from one sandbox to another (each
//! command sees exactly its own input and only descriptors 0, 1 and 2, though every thread
//! holds pipes of its own and creates more for each run), and no descriptor may be left
//! behind in this process. One test alone in this binary, so that the descriptor count is
//! this test's.

use std::time::Instant;

mod common;

use hakoniwa::{Sandbox, Stdio};

const THREADS: usize = 8;
const RUNS: usize = 50;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn eight_threads_run_fifty_sandboxes_each() {
    let fds_before = open_fds();
    let started = Instant::now();
    let sandbox = Sandbox::new();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let sandbox = &sandbox;
            scope.spawn(move || {
                // A pipe of this thread's own, open all along and not close-on-exec-safe
                // by luck alone: no sandbox may see it.
                let (_reader, _writer) = std::io::pipe().expect("a pipe");
                for run in 0..RUNS {
                    let marker = format!("thread{thread}run{run}");
                    let result = sandbox
                        .command(
                            "/bin/sh",
                            &[
                                "sh",
                                "-c",
                                "read -r m; echo \"$m\"; echo \"$m\" >&2; ls /proc/$$/fd",
                            ],
                        )
                        .stdin(Stdio::from(format!("{marker}\n")))
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .limit_walltime(Some(120))
                        .run();
                    common::assert_exited_zero(&result, &marker);
                    let stdout = String::from_utf8_lossy(&result.stdout);
                    assert_eq!(stdout, format!("{marker}\n0\n1\n2\n"), "{marker}");
                    assert_eq!(result.stderr, format!("{marker}\n").as_bytes(), "{marker}");
                }
            });
        }
    });
    eprintln!("{} sandboxes in {:?}", THREADS * RUNS, started.elapsed());
    assert_eq!(open_fds(), fds_before, "descriptors left behind");
}

/// What a threaded host needs of the types: compiled, not run.
#[allow(dead_code)]
fn types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<hakoniwa::Sandbox>();
    send_sync::<hakoniwa::SandboxPolicy>();
    send_sync::<hakoniwa::Stdio>();
    send_sync::<hakoniwa::ExecutorResult>();
    send_sync::<hakoniwa::Error>();
    send::<hakoniwa::Executor>();
}
