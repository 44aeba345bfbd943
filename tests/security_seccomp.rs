//! Seccomp: the default profile refuses what it promises (each probe is refused under
//! `default` and is not under `unconfined`, so the filter is what refuses it), foreign
//! architectures and x32 are killed, and policy-defined filters work as documented.

mod common;

use std::path::PathBuf;

use common::{CALLERS, Caller, ok, stderr, stdout};

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

/// One probe: a raw system call made with perl's `syscall`, and what the default profile
/// answers. Arguments are chosen so the kernel itself would refuse the call differently
/// (EBADF, EINVAL, ENOENT...), or let it through.
struct Probe {
    what: &'static str,
    nr: i64,
    args: &'static str,
    refused_with: i64,
}

fn probes() -> Vec<Probe> {
    let p = |what, nr, args, refused_with| Probe {
        what,
        nr,
        args,
        refused_with,
    };
    vec![
        p("mount", libc::SYS_mount, "0, 0, 0, 0, 0", EPERM),
        p("umount2", libc::SYS_umount2, "\"/nonexistent\", 0", EPERM),
        p(
            "pivot_root",
            libc::SYS_pivot_root,
            "\"/nonexistent\", \"/nonexistent\"",
            EPERM,
        ),
        p("chroot", libc::SYS_chroot, "\"/nonexistent\"", EPERM),
        p("fsopen", libc::SYS_fsopen, "\"no-such-fs\", 0", EPERM),
        p("fsconfig", libc::SYS_fsconfig, "-1, 0, 0, 0, 0", EPERM),
        p("fsmount", libc::SYS_fsmount, "-1, 0, 0", EPERM),
        p("fspick", libc::SYS_fspick, "-1, \"/nonexistent\", 0", EPERM),
        p(
            "open_tree",
            libc::SYS_open_tree,
            "-1, \"/nonexistent\", 0",
            EPERM,
        ),
        p(
            "move_mount",
            libc::SYS_move_mount,
            "-1, \"/nonexistent\", -1, \"/nonexistent\", 0",
            EPERM,
        ),
        p(
            "mount_setattr",
            libc::SYS_mount_setattr,
            "-1, \"\", 0, 0, 0",
            EPERM,
        ),
        p("unshare", libc::SYS_unshare, "-1", EPERM),
        p("setns", libc::SYS_setns, "-1, 0", EPERM),
        // CLONE_NEWNS with CLONE_FS is invalid: the kernel says EINVAL, the filter EPERM.
        p(
            "clone(CLONE_NEWNS)",
            libc::SYS_clone,
            "0x20200, 0, 0, 0, 0",
            EPERM,
        ),
        p("clone3", libc::SYS_clone3, "0, 0", ENOSYS),
        p(
            "add_key",
            libc::SYS_add_key,
            "\"no-such-type\", \"x\", 0, 0, 0",
            EPERM,
        ),
        p(
            "request_key",
            libc::SYS_request_key,
            "\"no-such-type\", \"x\", 0, 0",
            EPERM,
        ),
        p("keyctl", libc::SYS_keyctl, "9999, 0, 0, 0, 0", EPERM),
        p("bpf", libc::SYS_bpf, "-1, 0, 0", EPERM),
        p(
            "perf_event_open",
            libc::SYS_perf_event_open,
            "0, 0, -1, -1, 0",
            EPERM,
        ),
        p("userfaultfd", libc::SYS_userfaultfd, "0xffff", EPERM),
        p("iopl", libc::SYS_iopl, "99", EPERM),
        p("quotactl", libc::SYS_quotactl, "0, 0, 0, 0", EPERM),
        p(
            "name_to_handle_at",
            libc::SYS_name_to_handle_at,
            "-1, \"/\", 0, 0, 0",
            EPERM,
        ),
        p(
            "personality(0x0008)",
            libc::SYS_personality,
            "0x0008",
            EPERM,
        ),
        p("ioctl(TIOCSTI)", libc::SYS_ioctl, "-1, 0x5412, 0", EPERM),
        p(
            "ioctl(TIOCSTI | 1 << 32)",
            libc::SYS_ioctl,
            "-1, 0x100005412, 0",
            EPERM,
        ),
        p("ioctl(TIOCLINUX)", libc::SYS_ioctl, "-1, 0x541c, 0", EPERM),
        p("io_uring_setup", libc::SYS_io_uring_setup, "0, 0", EPERM),
    ]
}

/// Runs every probe in one sandbox as uid 0 inside with every capability of its user
/// namespace (so capabilities do not mask the filter) and returns each one's errno (0 when
/// it succeeded).
fn run_probes(caller: Caller, seccomp: &str, probes: &[Probe]) -> Vec<i64> {
    let calls: Vec<(i64, &str)> = probes.iter().map(|p| (p.nr, p.args)).collect();
    let options = ["--uid", "0", "--cap-add", "ALL", "--seccomp", seccomp];
    common::syscall_errnos(caller, &options, &calls)
}

#[test]
fn default_profile_refuses_each_family_and_unconfined_does_not() {
    let probes = probes();
    for caller in CALLERS {
        let confined = run_probes(caller, "default", &probes);
        let unconfined = run_probes(caller, "unconfined", &probes);
        assert_eq!(confined.len(), probes.len(), "as {caller:?}");
        for ((probe, with), without) in probes.iter().zip(&confined).zip(&unconfined) {
            assert_eq!(
                *with, probe.refused_with,
                "{} under default as {caller:?}",
                probe.what
            );
            assert_ne!(
                *without, probe.refused_with,
                "{} under unconfined as {caller:?}",
                probe.what
            );
        }
    }
}

#[test]
fn default_is_used_when_nothing_is_said_and_logged() {
    let out = common::run(Caller::Root, &["run", "-v", "--", "/bin/true"]);
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("Seccomp: "))
        .unwrap_or_default();
    let what = line.split("Seccomp: ").nth(1).unwrap_or_default();
    assert!(
        what.starts_with("default (") && what.ends_with(" rules, built in)"),
        "{line}"
    );
    let unconfined = common::run(
        Caller::Root,
        &["run", "-v", "--seccomp", "unconfined", "--", "/bin/true"],
    );
    assert!(
        stderr(&unconfined).contains("] Seccomp: unconfined\n"),
        "{}",
        stderr(&unconfined)
    );
    for caller in CALLERS {
        let status = ok(&common::sh(caller, &[], "grep Seccomp: /proc/self/status"));
        assert_eq!(
            status.split_whitespace().nth(1),
            Some("2"),
            "filter mode as {caller:?}"
        );
        let status = ok(&common::sh(
            caller,
            &["--seccomp", "unconfined"],
            "grep -e Seccomp: -e NoNewPrivs /proc/self/status",
        ));
        let words: Vec<&str> = status.split_whitespace().collect();
        assert_eq!(
            words,
            ["NoNewPrivs:", "1", "Seccomp:", "0"],
            "as {caller:?}"
        );
    }
}

/// Builds a static probe that makes one system call with `instruction` (`int $0x80` for the
/// i386 ABI, `syscall` with the x32 bit for x32) and exits 0 if the kernel answered.
fn foreign_abi_probe(name: &str, instruction: &str, number: &str) -> PathBuf {
    let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-abi-"));
    std::fs::create_dir(&dir).unwrap();
    common::set_mode(&dir, 0o755);
    let source = dir.join("probe.c");
    std::fs::write(
        &source,
        "int main(void) { long r; __asm__ volatile (INSN : \"=a\"(r) : \"a\"(NR) : \"rcx\", \"r11\", \"memory\"); return 0; }\n",
    )
    .unwrap();
    let binary = dir.join(name);
    let built = std::process::Command::new("gcc")
        .args([
            "-static",
            "-O1",
            &format!("-DINSN=\"{instruction}\""),
            &format!("-DNR={number}"),
            "-o",
        ])
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("gcc is needed to build the foreign-ABI probes");
    assert!(
        built.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    common::set_mode(&binary, 0o755);
    binary
}

#[test]
#[cfg(target_arch = "x86_64")]
fn foreign_architecture_and_x32_calls_are_killed() {
    // getpid: 20 on i386; 39 with the x32 bit on x32.
    for (name, instruction, number) in [
        ("int80", "int $0x80", "20L"),
        ("x32", "syscall", "(0x40000000L + 39)"),
    ] {
        let probe = foreign_abi_probe(name, instruction, number);
        let bind = format!("{}:/probe", probe.display());
        for caller in CALLERS {
            let (out, report) = run_reporting(caller, &["--ro-bind", &bind, "--", "/probe"]);
            assert_eq!(
                out.status.code(),
                Some(128 + libc::SIGSYS),
                "{name} as {caller:?}"
            );
            assert!(report.contains("\"status\":\"RFE\""), "{report}");
            let unconfined = common::run(
                caller,
                &[
                    "run",
                    "--ro-bind",
                    &bind,
                    "--seccomp",
                    "unconfined",
                    "--",
                    "/probe",
                ],
            );
            assert_eq!(
                unconfined.status.code(),
                Some(0),
                "{name} unconfined as {caller:?}"
            );
        }
        std::fs::remove_dir_all(probe.parent().unwrap()).unwrap();
    }
}

#[test]
fn number_minus_one_gets_enosys_so_a_host_ptracer_can_skip_calls() {
    // -1 is what a ptracer sets to skip a call; the kernel answers ENOSYS. The filter must
    // not take it for an x32 call, or strace's fault injection kills the command.
    for caller in CALLERS {
        for seccomp in ["default", "unconfined"] {
            let errnos = common::syscall_errnos(caller, &["--seccomp", seccomp], &[(-1, "")]);
            assert_eq!(errnos, [ENOSYS], "{seccomp} as {caller:?}");
        }
    }
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=uname"])
        .args(["-e", "inject=uname:error=EPERM"])
        .arg(common::binary())
        .args(["run", "--", "/bin/uname"])
        .output()
        .expect("strace is needed for fault injection");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "/bin/uname: cannot get system name: Operation not permitted\n"
    );
}

/// Runs `hakoniwa ARGS` with `--report-file` (in a directory any caller may write) put in
/// right after `run`; returns the output and the report.
fn run_reporting(caller: Caller, args: &[&str]) -> (std::process::Output, String) {
    let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-report-"));
    std::fs::create_dir(&dir).unwrap();
    common::set_mode(&dir, 0o777);
    let report = dir.join("report.json");
    let mut full = vec!["run", "--report-file", report.to_str().unwrap()];
    full.extend(args.iter().skip_while(|a| **a == "run"));
    let out = common::run(caller, &full);
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    (out, text)
}

/// The lines of `policy_with_seccomp`'s text before its `[seccomp]` table's body.
const POLICY_HEADER_LINES: usize = 10;

fn policy_with_seccomp(seccomp: &str) -> PathBuf {
    let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-seccomp-"));
    std::fs::create_dir(&dir).unwrap();
    common::set_mode(&dir, 0o755);
    let path = dir.join("policy.toml");
    let text = format!(
        "mounts = [\n  {{ target = \"/proc\", fstype = \"proc\" }},\n  {{ target = \"/tmp\", fstype = \"tmpfs\" }},\n  \
         {{ source = \"/bin\", target = \"/bin\" }},\n  {{ source = \"/lib\", target = \"/lib\" }},\n  \
         {{ source = \"/lib64\", target = \"/lib64\" }},\n  {{ source = \"/usr\", target = \"/usr\" }},\n  \
         {{ source = \"/dev/null\", target = \"/dev/null\", rw = true }},\n]\n\
         [seccomp]\n{seccomp}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_with(caller: Caller, seccomp: &str, command: &[&str]) -> (std::process::Output, String) {
    let policy = policy_with_seccomp(seccomp);
    let mut args = vec!["-p", policy.to_str().unwrap(), "--"];
    args.extend_from_slice(command);
    let out = run_reporting(caller, &args);
    std::fs::remove_dir_all(policy.parent().unwrap()).unwrap();
    out
}

/// What a dynamically linked coreutils program needs to start and print, without mkdir.
const ECHO_NEEDS: &str = "\"@default\", \"@basic-io\", \"@signal\", \"openat\", \"newfstatat\", \"fstat\", \"statx\", \
    \"access\", \"faccessat\", \"faccessat2\", \"fcntl\", \"ioctl\", \"getcwd\", \"readlink\", \"umask\"";

#[test]
fn allowlist_runs_what_it_lists_and_kills_the_rest() {
    let seccomp = format!("syscalls = [{ECHO_NEEDS}]\ndismatch_action = \"kill_process\"");
    for caller in CALLERS {
        let (echo, _) = run_with(caller, &seccomp, &["/bin/echo", "allowed"]);
        assert_eq!(ok(&echo), "allowed\n", "as {caller:?}: {}", stderr(&echo));
        let (mkdir, report) = run_with(caller, &seccomp, &["/bin/mkdir", "/tmp/x"]);
        assert_eq!(mkdir.status.code(), Some(159), "as {caller:?}");
        assert!(
            report.contains("\"status\":\"RFE\",\"reason\":\"signaled: SIGSYS\""),
            "{report}"
        );
    }
}

#[test]
fn denylist_and_errno_mode() {
    for caller in CALLERS {
        let deny = "syscalls = [\"mkdir\", \"mkdirat\"]\ndismatch_action = \"allow\"";
        assert_eq!(
            ok(&run_with(caller, deny, &["/bin/echo", "fine"]).0),
            "fine\n"
        );
        let (mkdir, report) = run_with(caller, deny, &["/bin/mkdir", "/tmp/x"]);
        assert_eq!(mkdir.status.code(), Some(159), "as {caller:?}");
        assert!(report.contains("\"status\":\"RFE\""), "{report}");

        let errno = "syscalls = [\"mkdir\", \"mkdirat\"]\ndismatch_action = \"allow\"\nerrno = 13";
        let (mkdir, report) = run_with(caller, errno, &["/bin/mkdir", "/tmp/x"]);
        assert_eq!(mkdir.status.code(), Some(1), "as {caller:?}");
        assert!(
            stderr(&mkdir).contains("Permission denied"),
            "{}",
            stderr(&mkdir)
        );
        assert!(report.contains("\"status\":\"OK\""), "{report}");
    }
}

#[test]
fn groups_expand_to_their_members() {
    let chroot = format!(
        "my $p = \"/\"; syscall({}, $p) == -1 and print $! + 0",
        libc::SYS_chroot
    );
    for caller in CALLERS {
        let (out, _) = run_with(
            caller,
            "syscalls = [\"@mount\"]\ndismatch_action = \"allow\"\nerrno = 13",
            &["/usr/bin/perl", "-e", &chroot],
        );
        assert_eq!(ok(&out), "13", "chroot is in @mount, as {caller:?}");
    }
    let groups = ok(&common::run(Caller::Root, &["seccomp", "groups"]));
    assert!(
        groups
            .lines()
            .any(|l| l.starts_with("@mount: mount umount2 pivot_root chroot")),
        "{groups}"
    );
}

#[test]
fn unknown_names_and_bad_values_are_errors_with_positions() {
    // (the [seccomp] table's body, the line within it, column, message)
    let cases = [
        (
            "syscalls = [\"read\", \"no_such_call\"]",
            1,
            21,
            "unknown system call \"no_such_call\"",
        ),
        (
            "syscalls = [\"@no_such_group\"]",
            1,
            13,
            "unknown group \"@no_such_group\" (see 'hakoniwa seccomp groups')",
        ),
        (
            "syscalls = [\"read\"]\ndismatch_action = \"nope\"",
            2,
            19,
            "unknown dismatch_action \"nope\" (expected \"kill_process\", \"log\" or \"allow\")",
        ),
        (
            "profile = \"strict\"",
            1,
            11,
            "unknown seccomp profile \"strict\" (expected default, log, unconfined)",
        ),
        (
            "socket_families = [\"unix\", \"carrier-pigeon\"]",
            1,
            28,
            "unknown socket family (expected unix, local, inet, ax25, ipx, appletalk, inet6, key, netlink, packet, rds, llc, can, tipc, bluetooth, alg, vsock, xdp, mctp)",
        ),
    ];
    for (seccomp, line, column, message) in cases {
        let want = format!("{}:{column}: {message}", POLICY_HEADER_LINES + line);
        let policy = policy_with_seccomp(seccomp);
        let p = policy.to_str().unwrap();
        let out = common::run(Caller::Root, &["run", "-p", p, "--", "/bin/echo", "ran"]);
        assert_eq!(out.status.code(), Some(125), "{seccomp}");
        assert_eq!(stderr(&out), format!("hakoniwa: {p}:{want}\n"));
        assert_eq!(stdout(&out), "");
        std::fs::remove_dir_all(policy.parent().unwrap()).unwrap();
    }
    let out = common::run(
        Caller::Root,
        &["run", "--socket-families", "unix,nope", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).starts_with("hakoniwa: --socket-families: unknown socket family \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = common::run(
        Caller::Root,
        &["run", "--seccomp", "/no/such/profile.toml", "--", "true"],
    );
    assert_eq!(
        stderr(&out),
        "hakoniwa: --seccomp: seccomp profile \"/no/such/profile.toml\": No such file or directory\n"
    );
}

#[test]
fn socket_families_restrict_socket_and_socketpair() {
    // AF_UNIX works; AF_INET, AF_PACKET and AF_NETLINK do not.
    let script = "use Socket; for my $f (1, 2, 17, 16) { if (socket(my $s, $f, SOCK_DGRAM, 0)) { print \"$f ok\\n\" } else { print \"$f \", $! + 0, \"\\n\" } } \
                  print socketpair(my $a, my $b, 1, SOCK_STREAM, 0) ? \"pair ok\\n\" : \"pair $!\\n\";";
    let want = "1 ok\n2 97\n17 97\n16 97\npair ok\n";
    for caller in CALLERS {
        let out = common::run(
            caller,
            &[
                "run",
                "--socket-families",
                "unix",
                "--",
                "/usr/bin/perl",
                "-e",
                script,
            ],
        );
        assert_eq!(ok(&out), want, "--socket-families as {caller:?}");
        let (out, _) = run_with(
            caller,
            "socket_families = [\"unix\"]",
            &["/usr/bin/perl", "-e", script],
        );
        assert_eq!(ok(&out), want, "[seccomp] socket_families as {caller:?}");
        // The default profile still applies alongside.
        let mount = format!("syscall({}, 0, 0, 0, 0, 0); print $! + 0", libc::SYS_mount);
        let out = common::run(
            caller,
            &[
                "run",
                "-u",
                "0",
                "--socket-families",
                "unix",
                "--",
                "/usr/bin/perl",
                "-e",
                &mount,
            ],
        );
        assert_eq!(ok(&out), "1", "as {caller:?}");
    }
}

#[test]
fn profile_files_and_the_log_profile() {
    let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-profile-"));
    std::fs::create_dir(&dir).unwrap();
    common::set_mode(&dir, 0o755);
    let profile = dir.join("no-mkdir.toml");
    std::fs::write(&profile, "default_action = \"allow\"\n[[rules]]\naction = \"errno:EACCES\"\nsyscalls = [\"mkdir\", \"mkdirat\"]\n").unwrap();
    common::set_mode(&profile, 0o644);
    for caller in CALLERS {
        let out = common::run(
            caller,
            &[
                "run",
                "--seccomp",
                profile.to_str().unwrap(),
                "--",
                "/bin/sh",
                "-c",
                "mkdir /x 2>&1; echo done",
            ],
        );
        assert!(ok(&out).contains("Permission denied"), "as {caller:?}");
        let out = common::run(
            caller,
            &["run", "--seccomp", "log", "--", "/bin/echo", "logged"],
        );
        assert_eq!(ok(&out), "logged\n");
    }
    std::fs::write(
        &profile,
        "[[rules]]\naction = \"allow\"\nsyscalls = [\"mkdri\"]\n",
    )
    .unwrap();
    let out = common::run(
        Caller::Root,
        &["run", "--seccomp", profile.to_str().unwrap(), "--", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        format!(
            "hakoniwa: --seccomp: {}:3:13: unknown system call \"mkdri\"\n",
            profile.display()
        )
    );
    let list = ok(&common::run(Caller::Root, &["seccomp", "list"]));
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["default", "log", "unconfined"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trace_counts_system_calls_and_prints_an_allowlist_that_works() {
    for caller in CALLERS {
        let out = common::run(caller, &["trace", "--", "/bin/ls", "/"]);
        assert_eq!(
            ok(&out),
            common::expected_root_listing().join("\n") + "\n",
            "as {caller:?}"
        );
        let log = stderr(&out);
        let counts: Vec<(&str, u64)> = log
            .lines()
            .skip(1)
            .map_while(|l| {
                let mut words = l.split_whitespace();
                let count = words.next()?.parse().ok()?;
                Some((words.next()?, count))
            })
            .collect();
        for name in ["openat", "getdents64", "execve", "write"] {
            assert!(
                counts.iter().any(|(n, c)| *n == name && *c > 0),
                "{name} missing in\n{log}"
            );
        }
        let execve = counts.iter().find(|(n, _)| *n == "execve").map(|(_, c)| *c);
        assert_eq!(execve, Some(1), "ls runs one execve");

        // The allowlist, pasted into a policy, runs ls again, and nothing else it lacks.
        let allowlist = &log[log.find("[seccomp]").expect("an allowlist")..];
        let kiss = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/KISS-policy.toml"
        ))
        .unwrap();
        let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-trace-"));
        std::fs::create_dir(&dir).unwrap();
        common::set_mode(&dir, 0o755);
        let policy = dir.join("ls.toml");
        std::fs::write(&policy, format!("{kiss}\n{allowlist}")).unwrap();
        let p = policy.to_str().unwrap();
        let again = common::run(caller, &["run", "-p", p, "--", "/bin/ls", "/"]);
        assert_eq!(ok(&again), stdout(&out), "as {caller:?}");
        let other = common::run(caller, &["run", "-p", p, "--", "/bin/mkdir", "/x"]);
        assert_eq!(other.status.code(), Some(159), "as {caller:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let out = common::run(
        Caller::Root,
        &["trace", "--seccomp", "log", "--", "/bin/true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("trace replaces the seccomp filter"),
        "{}",
        stderr(&out)
    );
}
