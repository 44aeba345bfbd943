//! Lifetime: a thousand sandboxes in a row, each leaving a background process behind in
//! it, leave nothing on the host: no process, no zombie, no mount, no file, no descriptor.
//! (Dying with hakoniwa, walltime kills and signal forwarding have their own tests in
//! security_isolation.rs and cli_limits.rs.)

mod common;

use std::time::Duration;

use common::{CALLERS, ok};

const RUNS: usize = 1000;

/// Whether no process of the host runs `sleep MARKER` any more (within a grace period:
/// the kernel finishes tearing a pid namespace down as its init is reaped).
fn no_process_with(marker: &str) -> bool {
    common::eventually(Duration::from_secs(5), || {
        common::processes_with_argv(&["sleep", marker]).is_empty()
    })
}

#[test]
fn a_thousand_runs_of_the_binary_leave_nothing_behind() {
    for caller in CALLERS {
        let marker = format!("1000.{}", common::unique_marker(""));
        // In a mount namespace of this test's own, with an empty /tmp (and TMPDIR there),
        // the mount table kept before and compared after.
        let script = format!(
            "before=$(cat /proc/self/mountinfo); ok=0; i=0; \
             while [ $i -lt {RUNS} ]; do i=$((i + 1)); \
               {hakoniwa} run -- /bin/sh -c 'sleep {marker} & echo scratch > /file' && ok=$((ok + 1)); \
             done; \
             echo ran $ok; echo tmp: $(ls -A /tmp); \
             [ \"$before\" = \"$(cat /proc/self/mountinfo)\" ] && echo mounts unchanged",
            hakoniwa = common::shell_command(caller),
        );
        let before = common::host_mountinfo();
        let out = common::sh_with_private_tmp(&script);
        assert_eq!(
            ok(&out),
            format!("ran {RUNS}\ntmp:\nmounts unchanged\n"),
            "as {caller:?}"
        );
        assert!(
            no_process_with(&marker),
            "a sandboxed sleep survived as {caller:?}"
        );
        assert_eq!(before, common::host_mountinfo(), "as {caller:?}");
    }
}

/// The children of the calling thread, and the pidfds this process holds.
fn children_and_pidfds() -> (Vec<u32>, usize) {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let children = common::children_of_task(std::process::id(), tid as u32);
    let pidfds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == "anon_inode:[pidfd]")
        })
        .count();
    (children, pidfds)
}

#[test]
fn a_thousand_library_runs_leave_no_zombie_pidfd_process_or_mount() {
    let marker = format!("1000.{}", common::unique_marker(""));
    let script = format!("sleep {marker} & exit 0");
    let before_mounts = common::host_mountinfo();
    let (children, pidfds) = children_and_pidfds();
    assert!(children.is_empty(), "{children:?}");
    let sandbox = hakoniwa::Sandbox::new();
    for run in 0..RUNS {
        let result = sandbox.command("/bin/sh", &["sh", "-c", &script]).run();
        common::assert_exited_zero(&result, &format!("run {run}"));
    }
    // Every sandbox's init was this thread's child and has been reaped: no zombie.
    assert_eq!(children_and_pidfds(), (vec![], pidfds));
    assert!(no_process_with(&marker), "a sandboxed sleep survived");
    assert_eq!(before_mounts, common::host_mountinfo());
}
