//! Isolation the core promises: namespaces, an invisible tmpfs root, read-only binds,
//! nothing left on the host, no leaked descriptors, and a sandbox that dies with hakoniwa.

mod common;

use std::time::Duration;

use common::{CALLERS, Caller, Running, ok, sh, stdout};

const NAMESPACES: [&str; 7] = ["user", "mnt", "pid", "ipc", "uts", "net", "cgroup"];

fn sandbox_namespaces(caller: Caller, options: &[&str]) -> Vec<String> {
    let script = NAMESPACES
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .join("; ");
    ok(&sh(caller, options, &script))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_namespace_is_new() {
    for caller in CALLERS {
        let inside = sandbox_namespaces(caller, &[]);
        assert_eq!(inside.len(), NAMESPACES.len());
        for (name, link) in NAMESPACES.iter().zip(&inside) {
            assert!(link.starts_with(&format!("{name}:[")), "{link}");
            assert_ne!(
                *link,
                common::host_namespace(name),
                "{name} namespace shared as {caller:?}"
            );
        }
    }
}

#[test]
fn share_options_keep_exactly_the_host_namespace_named() {
    for caller in CALLERS {
        for (option, shared) in [
            ("--share-net", "net"),
            ("--share-uts", "uts"),
            ("--share-ipc", "ipc"),
        ] {
            let inside = sandbox_namespaces(caller, &[option]);
            for (name, link) in NAMESPACES.iter().zip(&inside) {
                if *name == shared {
                    assert_eq!(
                        *link,
                        common::host_namespace(name),
                        "{option} as {caller:?}"
                    );
                } else {
                    assert_ne!(
                        *link,
                        common::host_namespace(name),
                        "{option} shared {name}"
                    );
                }
            }
        }
    }
}

#[test]
fn root_is_a_tmpfs_and_the_command_is_pid_2() {
    for caller in CALLERS {
        let out = ok(&sh(
            caller,
            &[],
            "stat -f -c %T /; echo $$; grep ' / / ' /proc/self/mountinfo",
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..2], ["tmpfs", "2"], "as {caller:?}");
        let root = lines[2];
        assert!(root.contains(" - tmpfs "), "root mount: {root}");
        assert!(
            root.contains("nosuid") && root.contains("nodev"),
            "root mount: {root}"
        );
        // The root is writable scratch space.
        let out = ok(&sh(
            caller,
            &[],
            "echo scratch > /output.txt && cat /output.txt",
        ));
        assert_eq!(out, "scratch\n");
    }
}

#[test]
fn sandbox_proc_shows_only_the_sandbox() {
    for caller in CALLERS {
        let out = ok(&sh(caller, &[], "cd /proc && echo [0-9]*"));
        // init (1), the shell (2): nothing of the host.
        assert_eq!(out, "1 2\n", "as {caller:?}");
    }
}

#[test]
fn read_only_binds_stay_read_only() {
    for caller in CALLERS {
        for options in [&[][..], &["--uid", "0"]] {
            let out = sh(
                caller,
                options,
                "touch /usr/x 2>&1; touch /bin/x 2>&1; echo done",
            );
            let text = stdout(&out);
            assert!(
                text.contains("touch: cannot touch '/usr/x': Read-only file system"),
                "{text}"
            );
            assert!(
                text.contains("touch: cannot touch '/bin/x': Read-only file system"),
                "{text}"
            );
            let mounts = ok(&sh(caller, options, "grep ' /usr ' /proc/self/mountinfo"));
            let opts = mounts.split_whitespace().nth(5).unwrap_or_default();
            for flag in ["ro", "nosuid", "nodev"] {
                assert!(
                    opts.split(',').any(|o| o == flag),
                    "/usr lacks {flag}: {mounts}"
                );
            }
        }
    }
}

#[test]
fn rw_bind_is_writable_and_ro_bind_of_the_same_dir_is_not() {
    for caller in CALLERS {
        let dir = std::env::temp_dir().join(common::unique_marker("hk-rw-"));
        std::fs::create_dir(&dir).unwrap();
        common::set_mode(&dir, 0o777);
        let d = dir.to_str().unwrap();
        let rw = format!("{d}:/rw");
        let ro = format!("{d}:/ro");
        let out = sh(
            caller,
            &["--rw-bind", &rw, "--ro-bind", &ro],
            "echo a > /rw/f && cat /ro/f && ! echo b > /ro/g 2>/dev/null && echo ok",
        );
        let found = std::fs::read_to_string(dir.join("f")).unwrap_or_default();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ok(&out), "a\nok\n", "as {caller:?}");
        assert_eq!(found, "a\n");
    }
}

/// Runs hakoniwa inside a private mount namespace whose /tmp is an empty tmpfs, with
/// TMPDIR pointing into it, and lists /tmp while the sandbox runs and after it ends.
#[test]
fn nothing_is_created_in_host_tmp() {
    for caller in CALLERS {
        let script = format!(
            "{} run -- /bin/sh -c 'echo started; sleep 0.3' & \
             sleep 0.15; echo during: $(ls -A /tmp); wait; echo after: $(ls -A /tmp)",
            common::shell_command(caller)
        );
        let out = common::sh_with_private_tmp(&script);
        assert_eq!(ok(&out), "started\nduring:\nafter:\n", "as {caller:?}");
    }
}

#[test]
fn host_mount_table_never_changes() {
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for caller in CALLERS {
        let running = Running::start(caller, &["--ro-bind", "/etc"], "true");
        let during = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(running.release(), Some(0));
        let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            before, during,
            "a mount appeared on the host while a sandbox ran"
        );
        assert_eq!(
            before, after,
            "a mount remained on the host after a sandbox ran"
        );
    }
}

#[test]
fn sandbox_dies_when_hakoniwa_is_killed() {
    for caller in CALLERS {
        let marker = format!("1000.{}", common::unique_marker(""));
        let mut running = Running::start(caller, &[], &format!("sleep {marker} &"));
        // The background sleep may exec a moment after the shell says ready.
        let started = common::eventually(Duration::from_secs(5), || {
            common::processes_with_argv(&["sleep", &marker]).len() == 1
        });
        assert!(started, "the sandboxed sleep should be running");
        let init = common::children(running.pid());
        running.child.kill().unwrap();
        running.child.wait().unwrap();
        let gone = common::eventually(Duration::from_secs(5), || {
            common::processes_with_argv(&["sleep", &marker]).is_empty()
                && init
                    .iter()
                    .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        });
        assert!(
            gone,
            "sandbox processes survived hakoniwa's SIGKILL as {caller:?}"
        );
    }
}

#[test]
fn signals_to_hakoniwa_reach_the_command() {
    for caller in CALLERS {
        for (signal, number) in [("TERM", 15), ("INT", 2), ("HUP", 1), ("USR1", 10)] {
            let script = format!("trap 'echo got {signal}; exit 3' {signal}");
            let mut running = Running::start(caller, &[], &script);
            let status = std::process::Command::new("kill")
                .args([&format!("-{number}"), &running.pid().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let seen = running.wait_for_line(&format!("got {signal}"));
            assert!(seen.is_empty(), "{seen:?}");
            assert_eq!(running.release(), Some(3), "{signal} as {caller:?}");
        }
    }
}

#[test]
fn only_standard_streams_reach_the_command() {
    for caller in CALLERS {
        // Descriptors 5 and 7 are open, without close-on-exec, when hakoniwa starts.
        let script = format!(
            "exec 5</dev/null 7>/dev/null; exec {} run -- /bin/sh -c 'ls /proc/$$/fd'",
            common::shell_command(caller)
        );
        let out = common::host_sh(&script);
        // ls lists the descriptors of the shell that started it.
        assert_eq!(ok(&out), "0\n1\n2\n", "as {caller:?}");
    }
}

#[test]
fn init_holds_nothing_but_its_report_pipe() {
    if common::current_uid() != 0 {
        return; // Reading another process's descriptors needs root.
    }
    for caller in CALLERS {
        let running = Running::start(caller, &[], "true");
        // setpriv execs hakoniwa, so the sandbox's init is hakoniwa's only child.
        let init = common::children(running.pid());
        assert_eq!(init.len(), 1, "{init:?}");
        let fds = || -> Vec<String> {
            std::fs::read_dir(format!("/proc/{}/fd", init[0]))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        // Init closes the standard streams once the command has exec'd, which on a busy
        // machine may be just after the command printed `ready`.
        common::eventually(Duration::from_secs(5), || fds().len() == 1);
        let fds = fds();
        assert_eq!(fds.len(), 1, "init holds {fds:?} as {caller:?}");
        let target = std::fs::read_link(format!("/proc/{}/fd/{}", init[0], fds[0])).unwrap();
        assert!(target.to_string_lossy().starts_with("pipe:"), "{target:?}");
        assert_eq!(running.release(), Some(0));
    }
}

#[test]
fn init_is_in_every_namespace_of_the_command() {
    // Init would otherwise leave a window on the host: /proc/1/net, say, shows its network
    // namespace's interfaces and sockets to anyone in the sandbox. In the default layout
    // the command's process makes the network, uts, ipc and cgroup namespaces and init joins
    // them; with kept capabilities init makes them all and the command starts in them.
    if common::current_uid() != 0 {
        return; // Reading another process's namespaces needs root.
    }
    let layouts: [&[&str]; 3] = [
        &[],
        &["--uid", "0", "--cap-add", "CAP_NET_RAW"],
        &["--share-net", "--share-ipc"],
    ];
    for options in layouts {
        for caller in CALLERS {
            let running = Running::start(caller, options, "true");
            let init = common::children(running.pid());
            assert_eq!(init.len(), 1, "{init:?}");
            let command = common::children(init[0]);
            assert_eq!(command.len(), 1, "{command:?}");
            let namespaces = |pid: u32| -> Vec<String> {
                NAMESPACES
                    .iter()
                    .map(|n| {
                        let link = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
                        link.to_string_lossy().into_owned()
                    })
                    .collect()
            };
            let what = format!("{options:?} as {caller:?}");
            let of_init = namespaces(init[0]);
            assert_eq!(of_init, namespaces(command[0]), "{what}");
            for (name, link) in NAMESPACES.iter().zip(&of_init) {
                let shared = options.contains(&format!("--share-{name}").as_str());
                assert_eq!(
                    *link == common::host_namespace(name),
                    shared,
                    "{name}, {what}"
                );
            }
            assert_eq!(running.release(), Some(0), "{what}");
        }
    }
}

#[test]
fn init_reaps_orphans() {
    for caller in CALLERS {
        // The inner shell exits at once, orphaning its background sleep to init.
        let out = ok(&sh(
            caller,
            &[],
            "sh -c 'sleep 0.05 &'; sleep 0.4; for s in /proc/[0-9]*/stat; do read -r l < $s; echo $l; done",
        ));
        let zombies: Vec<&str> = out.lines().filter(|l| l.contains(") Z ")).collect();
        assert!(zombies.is_empty(), "zombies as {caller:?}: {zombies:?}");
    }
}

#[test]
fn command_runs_in_a_new_session_with_no_new_privs() {
    for caller in CALLERS {
        let out = ok(&sh(
            caller,
            &[],
            "grep NoNewPrivs /proc/self/status; ps -o sid= -p $$",
        ));
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words, ["NoNewPrivs:", "1", "2"], "as {caller:?}");
    }
}
