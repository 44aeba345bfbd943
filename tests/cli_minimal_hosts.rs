//! Minimal hosts: shebang wrappers, hosts without /tmp, HOME or /etc, root without user
//! namespaces, nesting, and cgroup limits that cannot be had.

mod common;

use std::path::{Path, PathBuf};

use common::{CALLERS, Caller, TempDir, ok, run, stderr, stdout};

/// A world-readable copy of the binary at a short path, for `#!` lines (the kernel reads at
/// most 255 bytes of one).
fn shebang_binary(dir: &TempDir) -> PathBuf {
    let path = dir.path("hakoniwa");
    std::fs::copy(common::binary(), &path).unwrap();
    common::set_mode(&path, 0o755);
    path
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    common::set_mode(path, 0o755);
}

#[test]
fn shebang_scripts_run_in_a_sandbox_with_their_arguments() {
    let dir = TempDir::new("shebang");
    common::set_mode(&dir.0, 0o755);
    let hakoniwa = shebang_binary(&dir);
    let script = dir.path("greet.sh");
    write_script(
        &script,
        &format!(
            "#!{} run --hostname 'box one' --setenv \"GREETING=hello \\\"you\\\"\" -- /bin/sh -e\n\
             echo \"$0|$#|$1|$2\"; hostname; echo \"$GREETING\"; id -u; ls /\n",
            hakoniwa.display()
        ),
    );
    for caller in CALLERS {
        let mut command = common::command_as(caller, &script);
        command.args(["first arg", "second"]);
        let out = common::output_of_fresh_program(&mut command);
        let text = ok(&out);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(format!("{}|2|first arg|second", script.display()).as_str())
        );
        assert_eq!(lines.next(), Some("box one"));
        assert_eq!(lines.next(), Some("hello \"you\""));
        assert_eq!(
            lines.next(),
            Some(caller.uid().to_string().as_str()),
            "as {caller:?}"
        );
        // The script is bound at its own path, read-only, in the KISS sandbox.
        let root: Vec<&str> = lines.collect();
        let top = script
            .components()
            .nth(1)
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        assert!(root.contains(&top.as_str()), "{root:?}");
    }
    // A relative path to the script works too.
    let out = common::output_of_fresh_program(
        std::process::Command::new("./greet.sh").current_dir(&dir.0),
    );
    assert!(
        ok(&out).starts_with(&format!("{}|0||", script.display())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn ambiguous_shebang_lines_are_refused() {
    let dir = TempDir::new("shebang-bad");
    common::set_mode(&dir.0, 0o755);
    let hakoniwa = shebang_binary(&dir);
    for (line, why) in [
        ("run --hostname box /bin/sh", "no '--'"),
        ("run --hostname box --", "no interpreter after '--'"),
        ("run --hostname 'box --", "a single quote is not closed"),
    ] {
        let script = dir.path("bad.sh");
        write_script(
            &script,
            &format!("#!{} {line}\necho ran\n", hakoniwa.display()),
        );
        let out = common::output_of_fresh_program(&mut std::process::Command::new(&script));
        assert_eq!(out.status.code(), Some(125), "{line}");
        assert!(
            stderr(&out).starts_with(&format!("hakoniwa: shebang line {line:?}: {why}; expected")),
            "{}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");
    }
}

/// No writable /tmp, a bogus TMPDIR, no /etc, no HOME, no locale: hakoniwa needs none of it.
#[test]
fn works_without_tmp_home_etc_or_locale() {
    for caller in CALLERS {
        let script = format!(
            "mount -t tmpfs -o ro empty /tmp && mount -t tmpfs empty /etc && \
             exec env -i TMPDIR=/no/such/dir {} run --ro-bind-try /etc/passwd -- /bin/sh -c 'echo ok; ls /etc 2>&1 | head -1'",
            common::shell_command(caller)
        );
        let out = common::sh_in_private_mounts(&script);
        assert_eq!(
            ok(&out),
            "ok\nls: cannot access '/etc': No such file or directory\n",
            "as {caller:?}"
        );
    }
}

/// As root where the kernel refuses user namespaces (here: a user namespace whose
/// max_user_namespaces is 0), hakoniwa runs without one, and the command still holds no
/// capability and cannot write the read-only binds.
#[test]
fn root_without_user_namespaces_falls_back() {
    if common::current_uid() != 0 {
        return;
    }
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && {} run -v -- /bin/sh -c \
         'id -u; grep -e CapEff -e CapBnd /proc/self/status; touch /usr/x 2>&1; hostname'",
        common::binary().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "/bin/sh", "-c", &script])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        "0\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n\
         touch: cannot touch '/usr/x': Read-only file system\nhakoniwa\n"
    );
    let log = stderr(&out);
    assert!(log.contains("] User namespace: refused by the kernel (No space left on device); running without one\n"), "{log}");
    assert!(
        log.contains("] User namespace: none; uid 0 and gid 0 are the host's\n"),
        "{log}"
    );
}

/// An unprivileged caller whose user namespaces are refused gets a clear error and no half
/// sandbox. The refusal comes from an outer hakoniwa's seccomp profile (EPERM for clone3),
/// as a container's would.
#[test]
fn unprivileged_without_user_namespaces_is_refused_clearly() {
    let dir = TempDir::new("no-userns");
    let out = common::inner_hakoniwa_under_filter(Caller::Nobody, &dir, "clone3", None, &[]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(stdout(&out), "", "nothing may run");
    assert!(
        stderr(&out).starts_with(
            "hakoniwa: create the sandbox's user namespace (clone3): Operation not permitted: user namespaces are not available to this user"
        ),
        "{}",
        stderr(&out)
    );
}

/// Nested in another user namespace, and in itself.
#[test]
fn nests_in_user_namespaces_and_in_itself() {
    for caller in CALLERS {
        let mut command = common::command_as(caller, Path::new("unshare"));
        command
            .args(["--user", "--map-root-user"])
            .arg(common::public_binary())
            .args(["run", "--", "/bin/sh", "-c", "id -u; ls / | wc -l"]);
        let out = command.output().unwrap();
        let want = format!("0\n{}\n", common::expected_root_listing().len());
        assert_eq!(ok(&out), want, "in unshare -Ur as {caller:?}");

        // hakoniwa in hakoniwa: the outer one without a filter (the default one forbids
        // namespaces); as root inside, the inner one maps uid 0, which the kernel allows
        // only a creator holding CAP_SETFCAP.
        let inner = format!("{}:/hk", common::public_binary().display());
        let mut args = vec!["run", "--seccomp", "unconfined", "--ro-bind", &inner];
        if caller == Caller::Root {
            args.extend(["--cap-add", "CAP_SETFCAP"]);
        }
        args.extend([
            "--",
            "/hk",
            "run",
            "--hostname",
            "inner",
            "--",
            "/bin/sh",
            "-c",
            "hostname; readlink /proc/self/ns/pid",
        ]);
        let out = run(caller, &args);
        let text = ok(&out);
        assert!(
            text.starts_with("inner\npid:["),
            "in hakoniwa as {caller:?}: {text}"
        );
    }
    if std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok()
    {
        let out = std::process::Command::new("bwrap")
            .args(["--unshare-user", "--dev-bind", "/", "/", "--"])
            .arg(common::binary())
            .args(["run", "--", "/bin/echo", "nested in bwrap"])
            .current_dir("/")
            .output()
            .unwrap();
        assert_eq!(ok(&out), "nested in bwrap\n");
    } else {
        eprintln!("skipped the bwrap case: bwrap is not installed");
    }
}

/// A cgroup limit that cannot be had is an error that says why, and nothing runs. (This
/// host's cgroup2 lacks the memory, pids and cpu controllers; the VM suite, tests/vm,
/// checks the limits themselves on a kernel that has them.)
#[test]
fn cgroup_limits_without_their_controller_are_errors() {
    let controllers = cgroup2_controllers();
    for (option, value, controller) in [
        ("--limit-memory", "32M", "memory"),
        ("--limit-pids", "5", "pids"),
        ("--limit-cpus", "0.5", "cpu"),
    ] {
        let Some(controllers) = &controllers else {
            break;
        };
        if controllers.split_whitespace().any(|c| c == controller) {
            eprintln!("skipped {option}: this host's cgroup2 has the {controller} controller");
            continue;
        }
        let out = run(
            Caller::Root,
            &["run", option, value, "--", "/bin/echo", "ran"],
        );
        assert_eq!(out.status.code(), Some(125), "{option}");
        assert_eq!(stdout(&out), "");
        let key = option.trim_start_matches("--limit-");
        assert!(
            stderr(&out).starts_with(&format!(
                "hakoniwa: the {key} limit needs cgroup2's {controller} controller, which cgroup "
            )),
            "{}",
            stderr(&out)
        );
    }
    let out = run(
        Caller::Root,
        &[
            "run",
            "--limit-pids",
            "5",
            "--cgroup-parent",
            "/no/such/cgroup",
            "--",
            "/bin/echo",
            "ran",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        "hakoniwa: cgroup /no/such/cgroup: No such file or directory\n"
    );
}

/// The controllers of this process's cgroup in the cgroup2 hierarchy, if one is mounted.
fn cgroup2_controllers() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (fields, fs) = l.split_once(" - ")?;
        (fs.starts_with("cgroup2 "))
            .then(|| fields.split_whitespace().nth(4).map(str::to_string))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_start_matches('/')
        .to_string();
    std::fs::read_to_string(Path::new(&mount).join(path).join("cgroup.controllers")).ok()
}
