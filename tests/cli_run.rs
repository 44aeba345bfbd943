//! `hakoniwa run`: what the command sees, its exit status, and what bad input gets.

mod common;

use common::{CALLERS, Caller, expected_root_listing, ok, run, sh, stderr, stdout};

#[test]
fn root_holds_exactly_the_default_policy() {
    for caller in CALLERS {
        let out = ok(&run(caller, &["run", "--", "/bin/ls", "/"]));
        let names: Vec<&str> = out.lines().collect();
        assert_eq!(names, expected_root_listing(), "as {caller:?}");
        let dev = ok(&run(caller, &["run", "--", "/bin/ls", "/dev"]));
        assert_eq!(dev, "null\nrandom\nurandom\nzero\n", "as {caller:?}");
    }
}

#[test]
fn devices_of_the_default_policy_work() {
    for caller in CALLERS {
        let out = sh(
            caller,
            &[],
            "echo x > /dev/null && head -c 4 /dev/urandom | wc -c && head -c 3 /dev/zero | od -An -tx1",
        );
        assert_eq!(ok(&out), "4\n 00 00 00\n", "as {caller:?}");
    }
}

#[test]
fn command_is_looked_up_in_the_sandbox_path() {
    for caller in CALLERS {
        assert_eq!(ok(&run(caller, &["run", "--", "echo", "hi"])), "hi\n");
        // No `--` is needed before a command that is not an option.
        assert_eq!(ok(&run(caller, &["run", "echo", "-n", "x"])), "x");
        let out = run(
            caller,
            &["run", "--setenv", "PATH=/nowhere", "--", "echo", "hi"],
        );
        assert_eq!(
            out.status.code(),
            Some(127),
            "as {caller:?}: {}",
            stderr(&out)
        );
        assert_eq!(
            stderr(&out),
            "hakoniwa: execve \"echo\": No such file or directory\n"
        );
    }
}

#[test]
fn default_command_is_the_callers_shell() {
    let out = common::hakoniwa(Caller::Root)
        .env("SHELL", "/bin/sh")
        .arg("run")
        .stdin(std::fs::File::open("/dev/null").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = common::hakoniwa(Caller::Root)
        .env("SHELL", "/bin/false")
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "$SHELL=/bin/false must run /bin/false"
    );
}

#[test]
fn exit_status_is_the_commands() {
    for caller in CALLERS {
        assert_eq!(
            sh(caller, &[], "exit 7").status.code(),
            Some(7),
            "as {caller:?}"
        );
        assert_eq!(
            sh(caller, &[], "exit 0").status.code(),
            Some(0),
            "as {caller:?}"
        );
        let killed = sh(caller, &[], "kill -9 $$");
        assert_eq!(killed.status.code(), Some(128 + 9), "as {caller:?}");
        let term = sh(caller, &[], "kill -TERM $$");
        assert_eq!(term.status.code(), Some(128 + 15), "as {caller:?}");
    }
}

#[test]
fn missing_and_unexecutable_commands_give_127_and_126() {
    for caller in CALLERS {
        let out = run(caller, &["run", "--", "/no/such/program"]);
        assert_eq!(out.status.code(), Some(127), "as {caller:?}");
        assert_eq!(
            stderr(&out),
            "hakoniwa: execve \"/no/such/program\": No such file or directory\n"
        );
        // A directory cannot be executed.
        let out = run(caller, &["run", "--", "/usr"]);
        assert_eq!(out.status.code(), Some(126), "as {caller:?}");
        assert_eq!(
            stderr(&out),
            "hakoniwa: execve \"/usr\": Permission denied\n"
        );
    }
}

#[test]
fn bad_options_give_125_and_name_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--ro-bnd", "/etc"],
            "hakoniwa: unknown option '--ro-bnd' (did you mean '--ro-bind'?)\n",
        ),
        (
            &["run", "--hostname"],
            "hakoniwa: option '--hostname' needs a value NAME\n",
        ),
        (
            &["run", "--uid", "abc", "--", "true"],
            "hakoniwa: --uid: \"abc\" is not a valid id\n",
        ),
        (
            &["run", "--gid", "-1", "--", "true"],
            "hakoniwa: --gid: \"-1\" is not a valid id\n",
        ),
        (
            &["run", "--setenv", "NOEQUALS", "--", "true"],
            "hakoniwa: --setenv: \"NOEQUALS\" is not NAME=VALUE\n",
        ),
        (
            &["run", "--setenv", "=x", "--", "true"],
            "hakoniwa: --setenv: environment variable name \"\" is not valid\n",
        ),
        (
            &["run", "--ro-bind", "/etc:relative", "--", "true"],
            "hakoniwa: --ro-bind: mount target \"relative\" is not an absolute path\n",
        ),
        (
            &["run", "--ro-bind", "/etc:/a/../b", "--", "true"],
            "hakoniwa: --ro-bind: mount target \"/a/../b\" must not contain \"..\"\n",
        ),
        (
            &["run", "--ro-bind", "/etc:/", "--", "true"],
            "hakoniwa: --ro-bind: mount target \"/\" is the sandbox's root\n",
        ),
        (
            &["nosuchcommand"],
            "hakoniwa: unknown command 'nosuchcommand' (try 'hakoniwa run --help')\n",
        ),
    ];
    for caller in CALLERS {
        for (args, message) in cases {
            let out = run(caller, args);
            assert_eq!(out.status.code(), Some(125), "{args:?} as {caller:?}");
            assert_eq!(stderr(&out), *message, "{args:?} as {caller:?}");
            assert_eq!(stdout(&out), "", "{args:?} printed on stdout");
        }
    }
}

#[test]
fn missing_bind_source_gives_125_names_it_and_runs_nothing() {
    for caller in CALLERS {
        for option in ["--ro-bind", "--rw-bind", "--work-dir"] {
            let out = run(
                caller,
                &["run", option, "/no/such/dir", "--", "echo", "ran"],
            );
            assert_eq!(out.status.code(), Some(125), "{option} as {caller:?}");
            let what = if option == "--work-dir" {
                "work dir"
            } else {
                "bind source"
            };
            assert_eq!(
                stderr(&out),
                format!("hakoniwa: {option}: {what} \"/no/such/dir\": No such file or directory\n")
            );
            assert_eq!(stdout(&out), "", "the command must not run");
        }
    }
}

#[test]
fn hostname_defaults_to_hakoniwa_and_can_be_set_or_shared() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for caller in CALLERS {
        assert_eq!(ok(&run(caller, &["run", "--", "hostname"])), "hakoniwa\n");
        assert_eq!(
            ok(&run(
                caller,
                &["run", "--hostname", "box", "--", "hostname"]
            )),
            "box\n"
        );
        assert_eq!(
            ok(&run(caller, &["run", "--share-uts", "--", "hostname"])),
            host
        );
    }
}

/// The id maps of the sandboxed command as the host sees them (ids outside), read while
/// it runs: `(uid_map, gid_map)`, whitespace folded.
fn host_view_of_maps(caller: Caller, options: &[&str]) -> (String, String) {
    let running = common::Running::start(caller, options, "true");
    let init = common::children(running.pid());
    let command = init
        .first()
        .map(|i| common::children(*i))
        .unwrap_or_default();
    let read = |name: &str| {
        let path = format!("/proc/{}/{name}", command.first().copied().unwrap_or(0));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let maps = (read("uid_map"), read("gid_map"));
    assert_eq!(running.release(), Some(0));
    maps
}

#[test]
fn ids_map_to_the_caller_or_to_the_chosen_ids() {
    for caller in CALLERS {
        let (me, my_gid) = (caller.uid(), caller.gid());
        let out = ok(&sh(caller, &[], "id -u; id -g"));
        assert_eq!(out, format!("{me}\n{my_gid}\n"), "as {caller:?}");
        let maps = host_view_of_maps(caller, &[]);
        assert_eq!(
            maps,
            (format!("{me} {me} 1"), format!("{my_gid} {my_gid} 1")),
            "as {caller:?}"
        );

        let out = ok(&sh(caller, &["--uid", "0", "-g", "0"], "id -u; id -g"));
        assert_eq!(out, "0\n0\n", "as {caller:?}");
        let maps = host_view_of_maps(caller, &["--uid", "0", "-g", "0"]);
        assert_eq!(
            maps,
            (format!("0 {me} 1"), format!("0 {my_gid} 1")),
            "as {caller:?}"
        );

        let out = ok(&sh(caller, &["-u", "1000", "--gid=1001"], "id -u; id -g"));
        assert_eq!(out, "1000\n1001\n", "as {caller:?}");
    }
}

#[test]
fn environment_is_only_what_the_policy_and_setenv_give() {
    for caller in CALLERS {
        let out = common::hakoniwa(caller)
            .env("TERM", "xterm-test")
            .env("HK_SECRET", "leak")
            .env("LANG", "")
            .args(["run", "--", "/usr/bin/env"])
            .output()
            .unwrap();
        assert_eq!(ok(&out), "TERM=xterm-test\n", "as {caller:?}");

        let out = common::hakoniwa(caller)
            .env("LANG", "C.UTF-8")
            .args([
                "run",
                "--setenv",
                "A=1",
                "--setenv",
                "B=x=y",
                "--setenv",
                "A=2",
                "--",
                "/usr/bin/env",
            ])
            .output()
            .unwrap();
        assert_eq!(ok(&out), "LANG=C.UTF-8\nA=2\nB=x=y\n", "as {caller:?}");
    }
}

#[test]
fn work_dir_is_bound_read_write_at_hako_and_is_the_cwd() {
    for caller in CALLERS {
        let dir = std::env::temp_dir().join(common::unique_marker("hk-workdir-"));
        std::fs::create_dir(&dir).unwrap();
        common::set_mode(&dir, 0o777);
        let dir_s = dir.to_str().unwrap();
        let out = sh(caller, &["-w", dir_s], "pwd; echo written > out.txt");
        assert_eq!(ok(&out), "/hako\n", "as {caller:?}");
        let written = std::fs::read_to_string(dir.join("out.txt")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(written, "written\n", "as {caller:?}");
    }
}

#[test]
fn binds_default_their_target_to_the_source() {
    for caller in CALLERS {
        let out = ok(&sh(
            caller,
            &["--ro-bind", "/etc"],
            "test -f /etc/passwd && echo yes",
        ));
        assert_eq!(out, "yes\n");
        let out = ok(&sh(
            caller,
            &["--ro-bind", "/etc:/myetc"],
            "test -f /myetc/passwd && test ! -e /etc && echo yes",
        ));
        assert_eq!(out, "yes\n");
        // A file bound on a path whose parents do not exist yet.
        let out = ok(&sh(
            caller,
            &["--ro-bind", "/etc/passwd:/a/b/c/passwd"],
            "head -c 5 /a/b/c/passwd",
        ));
        assert_eq!(out, "root:");
    }
}

#[test]
fn seed_interactive_session_prints_what_the_seed_shows() {
    let bash = "/bin/bash";
    assert!(
        std::path::Path::new(bash).exists(),
        "this test needs /bin/bash on the host"
    );
    for caller in CALLERS {
        let mut child = common::hakoniwa(caller)
            .args(["run", "--verbose", "--", bash])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"pwd\nls\nls /dev\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let mut expected = String::from("/\n");
        for name in expected_root_listing() {
            expected.push_str(&name);
            expected.push('\n');
        }
        expected.push_str("null\nrandom\nurandom\nzero\n");
        assert_eq!(ok(&out), expected, "as {caller:?}");

        let log = stderr(&out);
        let messages: Vec<&str> = log.lines().map(check_log_line).collect();
        let me = caller.uid();
        let gid = caller.gid();
        let want_prefix = [
            "hakoniwa::cli::run] Configuration: \"KISS-policy.toml\"".to_string(),
            "hakoniwa::executor] Mount point: host_path: \"\", container_path: \"/\", fstype: \"tmpfs\"".into(),
            "hakoniwa::executor] Mount point: host_path: \"\", container_path: \"/proc\", fstype: \"proc\"".into(),
        ];
        assert_eq!(messages[..3], want_prefix, "as {caller:?}");
        for path in ["/bin", "/lib", "/usr"] {
            let host = std::fs::canonicalize(path).unwrap();
            let line = format!(
                "hakoniwa::executor] Mount point: host_path: {host:?}, container_path: {path:?}, fstype: \"\", rw: false"
            );
            assert!(
                messages.contains(&line.as_str()),
                "missing {line} in\n{log}"
            );
        }
        for dev in ["/dev/null", "/dev/random", "/dev/urandom", "/dev/zero"] {
            let line = format!(
                "hakoniwa::executor] Mount point: host_path: {dev:?}, container_path: {dev:?}, fstype: \"\", rw: true"
            );
            assert!(
                messages.contains(&line.as_str()),
                "missing {line} in\n{log}"
            );
        }
        let n = messages.len();
        assert_eq!(
            messages[n - 5..n - 1],
            [
                format!("hakoniwa::executor] UID map: host_id: {me}, container_id: {me}"),
                format!("hakoniwa::executor] GID map: host_id: {gid}, container_id: {gid}"),
                format!(
                    "hakoniwa::executor] Seccomp: default ({}",
                    seccomp_rules(&messages)
                ),
                "hakoniwa::executor] Execve: /bin/bash [\"/bin/bash\"]".to_string(),
            ],
            "as {caller:?}"
        );
        let result = messages[n - 1];
        let json = result
            .strip_prefix("hakoniwa::executor] Result: ")
            .expect("Result line last");
        assert!(
            json.starts_with(
                "{\"status\":\"OK\",\"reason\":\"\",\"exit_code\":0,\"start_time\":\""
            ),
            "{json}"
        );
        for key in [
            "\"real_time\":{\"secs\":",
            "\"system_time\":{\"secs\":",
            "\"user_time\":{\"secs\":",
            ",\"max_rss\":",
        ] {
            assert!(json.contains(key), "{key} missing from {json}");
        }
    }
}

/// The rule count the log gives for the default profile, followed by ` rules, built in)`.
fn seccomp_rules(messages: &[&str]) -> String {
    let line = messages
        .iter()
        .find(|m| m.contains("] Seccomp: default ("))
        .unwrap_or(&"");
    let rest = line.split("Seccomp: default (").nth(1).unwrap_or_default();
    let count = rest.strip_suffix(" rules, built in)").unwrap_or("missing");
    assert!(count.parse::<u32>().is_ok_and(|n| n > 30), "{line}");
    format!("{count} rules, built in)")
}

/// Checks `[2022-08-21T09:14:11Z INFO  target] message` and returns `target] message`.
fn check_log_line(line: &str) -> &str {
    let rest = line
        .strip_prefix('[')
        .unwrap_or_else(|| panic!("log line without '[': {line}"));
    let (stamp, rest) = rest.split_at(20);
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99Z", "timestamp of {line}");
    rest.strip_prefix(" INFO  ")
        .unwrap_or_else(|| panic!("level of {line}"))
}

#[test]
fn help_and_version() {
    let out = run(Caller::Root, &["--version"]);
    assert_eq!(
        ok(&out),
        format!("hakoniwa {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["run", "--help"][..], &["run", "-h"], &["help", "run"]] {
        let text = ok(&run(Caller::Root, args));
        for option in [
            "--ro-bind SRC[:DEST]",
            "--rw-bind SRC[:DEST]",
            "-w, --work-dir DIR",
            "--setenv NAME=VALUE",
            "-u, --uid ID",
            "-g, --gid ID",
            "--hostname NAME",
            "--share-net",
            "--share-uts",
            "--share-ipc",
            "-v, --verbose",
        ] {
            assert!(text.contains(option), "{args:?}: help lacks {option}");
        }
    }
    let text = ok(&run(Caller::Root, &["--help"]));
    assert!(text.contains("run "), "{text}");
    let out = run(Caller::Root, &[] as &[&str]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("Usage: hakoniwa"));
}
