//! Setup failures: every setup step that fails (made to fail with strace's fault
//! injection, one system call at a time, or for the three steps strace cannot single out,
//! by the seccomp filter of an outer hakoniwa) stops hakoniwa with status 125 (127 or 126
//! for execve) and one line naming the step, runs nothing, and leaves nothing behind: no
//! process, no mount.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Caller, NOBODY, TempDir, one_line_error};

/// How many times one system call may be made to fail before the sandbox must start.
const MOST_INJECTIONS: usize = 150;

/// A sandbox whose every kind of setup step the injections can reach, and its command: a
/// static binary (hakoniwa's own `--version`) that makes almost no system calls of its
/// own, so that an injection past the setup lets it run.
struct Setup {
    dir: TempDir,
    binary: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        // A copy of its own, so that a leftover process of this test is told by its exe.
        let dir = TempDir::root_owned("hk-inject-");
        let binary = dir.path("hakoniwa");
        std::fs::copy(common::binary(), &binary).unwrap();
        let policy = format!(
            "mounts = [\n  {{ target = \"/proc\", fstype = \"proc\" }},\n  \
             {{ target = \"/dev\", fstype = \"devfs\" }},\n  {{ target = \"/tmp\", fstype = \"tmpfs\" }},\n  \
             {{ source = \"/etc\", target = \"/etc\" }},\n  {{ source = {binary:?}, target = \"/hk\" }},\n]\n\
             dirs = [{{ target = \"/w\", mode = 0o700 }}]\n\
             files = [{{ target = \"/w/f\", contents = \"x\" }}]\n\
             symlinks = [{{ original = \"/hk\", link = \"/w/l\" }}]\n\
             cwd = \"/w\"\nhostname = \"box\"\n[env]\nPATH = \"/nope:/\"\n[limits]\nnofile = 64\n"
        );
        std::fs::write(dir.path("policy.toml"), policy).unwrap();
        Setup { dir, binary }
    }

    /// `run` options without a policy file (hakoniwa itself opens nothing then).
    fn options(&self) -> Vec<String> {
        let bind = format!("{}:/hk", self.binary.display());
        [
            "--hostname",
            "box",
            "--limit-nofile",
            "64",
            "--ro-bind",
            &bind,
        ]
        .iter()
        .chain(&["--setenv", "PATH=/nope:/"])
        .map(|s| s.to_string())
        .collect()
    }

    /// `run` options with the policy file, for dirs, files, symlinks, devfs and cwd.
    fn policy_options(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.dir.path("policy.toml").display().to_string(),
        ]
    }

    /// `hakoniwa run OPTIONS -- hk --version` started by `caller` under strace, with the
    /// `when`-th call of `syscall` (in each process) failing with `error`; waits at most a
    /// minute.
    fn run(
        &self,
        caller: Caller,
        options: &[String],
        syscall: &str,
        error: &str,
        when: usize,
    ) -> Output {
        let inject = format!("inject={syscall}:error={error}:when={when}");
        let mut strace = Command::new("strace");
        strace
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                &format!("trace={syscall}"),
                "-e",
            ])
            .arg(&inject);
        if caller == Caller::Nobody {
            let id = NOBODY.to_string();
            strace.args([
                "setpriv",
                &format!("--reuid={id}"),
                &format!("--regid={id}"),
            ]);
            strace.args(["--clear-groups", "--"]);
        }
        let mut child = strace
            .arg(&self.binary)
            .arg("run")
            .args(options)
            .args(["--", "hk", "--version"])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is needed for fault injection");
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{inject}: hakoniwa did not end");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait_with_output().unwrap()
    }

    /// Processes still running this test's copy of hakoniwa.
    fn leftovers(&self) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == self.binary)
            })
            .collect()
    }
}

/// Fails the `when`-th call of `syscall` for `when` in `whens` until the sandbox starts
/// anyway (which it must, before `MOST_INJECTIONS`, unless `whens` ends first); checks
/// each failed run and returns its messages.
fn sweep(
    setup: &Setup,
    caller: Caller,
    options: &[String],
    syscall: &str,
    error: &str,
    whens: std::ops::RangeInclusive<usize>,
) -> Vec<String> {
    let version = format!("hakoniwa {}\n", env!("CARGO_PKG_VERSION"));
    let mounts = common::host_mountinfo();
    let mut messages = Vec::new();
    let bounded = *whens.end() != usize::MAX;
    for when in whens.take(MOST_INJECTIONS) {
        let out = setup.run(caller, options, syscall, error, when);
        let what = format!("{syscall}:error={error}:when={when} as {caller:?}");
        assert_eq!(
            setup.leftovers(),
            Vec::<u32>::new(),
            "{what} left processes"
        );
        assert_eq!(mounts, common::host_mountinfo(), "{what} left a mount");
        if out.status.code() == Some(0) && out.stdout == version.as_bytes() {
            return messages;
        }
        let code = out.status.code().unwrap_or(-1);
        assert!(
            [125, 126, 127].contains(&code) && out.stdout.is_empty(),
            "{what}: {out:?}"
        );
        let message = one_line_error(&out, code);
        assert!(
            message.contains(&format!(": {}", describe(error))),
            "{what}: {message}"
        );
        messages.push(message);
    }
    assert!(
        bounded,
        "{syscall} failed {MOST_INJECTIONS} times and the sandbox never started"
    );
    messages
}

fn describe(error: &str) -> &'static str {
    match error {
        "EPERM" => "Operation not permitted",
        "ENOENT" => "No such file or directory",
        "ENOMEM" => "Out of memory",
        _ => "",
    }
}

#[test]
fn every_failed_setup_step_gives_125_names_the_step_and_leaves_nothing() {
    let setup = Setup::new();
    let (cli, policy) = (setup.options(), setup.policy_options());
    let mut unconfined = cli.clone();
    unconfined.extend(["--seccomp".into(), "unconfined".into()]);
    // Kept capabilities: init moves into inner namespaces instead of joining the command's.
    let mut caps = cli.clone();
    caps.extend(["--uid", "0", "--cap-add", "CAP_NET_RAW"].map(String::from));
    let mut messages = Vec::new();
    // (system call, options, which calls to fail). Counts are per process. hakoniwa's own
    // first `write` is its error message, so `write` starts at the second; init's last is
    // its report of the command's end, not a setup step (the fifth, or with capabilities
    // kept and three more maps to write, the eighth); the first `execve` of the traced
    // process is hakoniwa's own, and the command's comes after a PATH miss.
    let all = |from| from..=usize::MAX;
    let sweeps: &[(&str, &[String], std::ops::RangeInclusive<usize>)] = &[
        ("close_range", &cli, all(1)),
        ("prctl", &cli, all(1)),
        ("open", &cli, all(1)),
        ("write", &cli, 2..=4),
        ("write", &caps, 5..=7),
        ("open", &caps, all(1)),
        ("openat", &caps, all(1)),
        ("unshare", &caps, all(1)),
        ("setns", &cli, all(1)),
        ("mount", &cli, all(1)),
        ("fsopen", &policy, all(1)),
        ("fsconfig", &policy, all(1)),
        ("fsmount", &policy, all(1)),
        ("move_mount", &policy, all(1)),
        ("fchdir", &cli, all(1)),
        ("openat2", &cli, all(1)),
        ("open_tree", &cli, all(1)),
        ("mount_setattr", &cli, all(1)),
        ("mkdirat", &policy, all(1)),
        ("openat", &policy, all(1)),
        ("symlinkat", &policy, all(1)),
        ("pivot_root", &cli, all(1)),
        ("umount2", &cli, all(1)),
        ("unshare", &cli, all(1)),
        ("socket", &cli, all(1)),
        ("ioctl", &cli, all(1)),
        ("sethostname", &cli, all(1)),
        ("chdir", &policy, all(1)),
        ("clone3", &cli, all(1)),
        ("setsid", &cli, all(1)),
        ("capget", &cli, all(1)),
        ("capset", &cli, all(1)),
        ("prlimit64", &cli, all(1)),
        ("seccomp", &cli, all(1)),
        ("execve", &unconfined, all(2)),
    ];
    for (syscall, options, whens) in sweeps {
        messages.extend(sweep(
            &setup,
            Caller::Root,
            options,
            syscall,
            "EPERM",
            whens.clone(),
        ));
    }
    let execve_enoent = sweep(
        &setup,
        Caller::Root,
        &unconfined,
        "execve",
        "ENOENT",
        all(2),
    );
    // EPERM from the first clone3 reads as a kernel that refuses user namespaces, and root
    // then builds the sandbox without one; another error stops hakoniwa at once.
    messages.extend(sweep(&setup, Caller::Root, &cli, "clone3", "ENOMEM", 1..=1));
    assert_eq!(execve_enoent, ["execve \"hk\": No such file or directory"]);

    let (uid, gid) = (Caller::Root.uid(), Caller::Root.gid());
    let gid_map = format!("write \"{gid} {gid} 1\" to \"/proc/self/gid_map\": write");
    let bind = format!("bind {:?} on \"/hk\"", setup.binary.display().to_string());
    let named = [
        "close inherited descriptors",
        "tie the sandbox to hakoniwa's life",
        "write \"deny\" to \"/proc/self/setgroups\": open",
        &format!("write \"{uid} {uid} 1\" to \"/proc/self/uid_map\": write"),
        &gid_map,
        "stop mount propagation to the host",
        "mount the root tmpfs: fsopen",
        "mount the root tmpfs: fsconfig",
        "mount the root tmpfs: fsmount",
        "mount the root tmpfs: attach mount",
        "mount proc on \"/proc\": fsmount",
        "mount tmpfs on \"/dev\": fsopen",
        "mount devpts on \"/dev/pts\": attach mount",
        &format!("{bind}: open source"),
        &format!("{bind}: clone mount tree"),
        &format!("{bind}: set mount attributes"),
        &format!("{bind}: create mount point"),
        "create directory \"/w\" (mode 700)",
        "write 1 bytes to \"/w/f\"",
        "create symlink \"/w/l\" -> \"/hk\"",
        "create symlink \"/dev/ptmx\" -> \"pts/ptmx\"",
        "open /proc/self: open",
        "pivot_root into the new root: pivot_root",
        "enter the inner namespaces (locking the mounts)",
        "enter the inner namespaces (locking the mounts): open",
        "enter the inner namespaces (locking the mounts): write",
        "bring up the loopback interface",
        "set hostname \"box\"",
        "chdir \"/w\"",
        "create the sandbox's namespaces (clone3): Out of memory",
        "start the command",
        "create the namespaces",
        "join the command's namespaces",
        "release the command",
        "wait for the new root",
        "start a new session",
        "drop every capability",
        "setrlimit nofile 64",
        "load the seccomp filter (",
        "execve \"hk\"",
    ];
    let missing: Vec<&&str> = named
        .iter()
        .filter(|step| !messages.iter().any(|m| m.starts_with(**step)))
        .collect();
    assert!(
        missing.is_empty(),
        "never named: {missing:?}\namong:\n{}",
        messages.join("\n")
    );
}

#[test]
fn failed_setup_steps_of_an_unprivileged_caller_give_125_and_leave_nothing() {
    // Through setpriv, whose own system calls count in the same process as hakoniwa's:
    // only the calls setpriv does not make are failed here.
    let setup = Setup::new();
    let (cli, policy) = (setup.options(), setup.policy_options());
    let mut messages = Vec::new();
    for (syscall, options) in [
        ("mount", &cli),
        ("fsopen", &policy),
        ("fsmount", &policy),
        ("move_mount", &policy),
        ("openat2", &cli),
        ("open_tree", &cli),
        ("mount_setattr", &cli),
        ("mkdirat", &policy),
        ("symlinkat", &policy),
        ("pivot_root", &cli),
        ("unshare", &cli),
        ("sethostname", &cli),
        ("clone3", &cli),
        ("setsid", &cli),
        ("seccomp", &cli),
    ] {
        let whens = 1..=usize::MAX;
        messages.extend(sweep(
            &setup,
            Caller::Nobody,
            options,
            syscall,
            "EPERM",
            whens,
        ));
    }
    for step in [
        "stop mount propagation to the host",
        "mount the root tmpfs: fsopen",
        "bind \"/usr\" on \"/usr\": open source",
        "create symlink \"/w/l\" -> \"/hk\"",
        "pivot_root into the new root: pivot_root",
        "create the namespaces",
        "load the seccomp filter (",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(step)),
            "never named: {step}\namong:\n{}",
            messages.join("\n")
        );
    }
}

#[test]
fn a_stderr_that_cannot_be_written_still_gives_125() {
    // /dev/full refuses every write: hakoniwa's message is lost, its status is not.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for caller in common::CALLERS {
        let status = common::hakoniwa(caller)
            .args(["run", "--ro-bind", "/no/such/dir", "--", "true"])
            .stderr(full.try_clone().unwrap())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(125), "as {caller:?}");
    }
}

#[test]
fn steps_strace_cannot_single_out_fail_under_an_outer_hakoniwa_s_filter() {
    // strace counts injections per process, and a failure injected in one of init and the
    // command's process is injected at the same count in the other, which may get there
    // first. An outer hakoniwa whose filter fails exactly one call, told by its arguments,
    // reaches these steps of the hakoniwa inside.
    let dir = common::TempDir::new("hk-outer-");
    let cases = [
        // prctl(PR_SET_NO_NEW_PRIVS, ...)
        ("prctl", "arg0 == 38", "set no_new_privs"),
        // close_range(3, ~0, CLOSE_RANGE_CLOEXEC)
        ("close_range", "arg2 == 4", "mark descriptors close-on-exec"),
        // prctl(PR_SET_DUMPABLE, 0): init's second prctl, made after the command's process
        // has made its own second one (it empties the bounding set meanwhile)
        ("prctl", "arg0 == 4", "make init non-dumpable"),
    ];
    for (syscall, condition, step) in cases {
        for caller in common::CALLERS {
            let report = dir.path(&format!("{syscall}-{caller:?}.json"));
            let outer = [
                "--report-file",
                report.to_str().unwrap(),
                // What nesting takes as root (see security_userns.rs).
                "--uid",
                "0",
                "--cap-add",
                "CAP_SETFCAP",
            ];
            let out =
                common::inner_hakoniwa_under_filter(caller, &dir, syscall, Some(condition), &outer);
            let what = format!("{step} as {caller:?}");
            assert_eq!(
                one_line_error(&out, 125),
                format!("{step}: Operation not permitted"),
                "{what}"
            );
            // The outer sandbox ran its command, the inner hakoniwa, which gave 125.
            let report = std::fs::read_to_string(&report).unwrap();
            assert!(
                report.starts_with("{\"status\":\"OK\",\"reason\":\"\",\"exit_code\":125,"),
                "{what}: {report}"
            );
        }
    }
}
