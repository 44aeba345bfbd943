//! Every builder method of `Executor`, observed from inside the sandbox it builds.

mod common;

use std::path::Path;

use common::TempDir;
use hakoniwa::{Executor, ExecutorResultStatus, Sandbox, Stdio};

/// `sh -c SCRIPT` in a sandbox of the default policy, made ready by `build`; its stdout.
fn sh(script: &str, build: impl FnOnce(&mut Executor) -> Result<(), hakoniwa::Error>) -> String {
    let mut executor = Sandbox::new().command("/bin/sh", &["sh", "-c", script]);
    build(&mut executor).expect("the builder methods take these values");
    let result = executor
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .limit_walltime(Some(30))
        .run();
    common::assert_exited_zero(&result, script);
    String::from_utf8_lossy(&result.stdout).into_owned()
}

#[test]
fn binds_read_only_and_read_write() {
    let dir = TempDir::new("binds");
    std::fs::write(dir.path("in"), "from the host\n").unwrap();
    let out = sh(
        "cat /ro/in; touch /ro/x 2>/dev/null || echo read-only; echo from inside > /rw/out",
        |e| {
            e.ro_bind(&dir.0, "/ro")?.rw_bind(&dir.0, "/rw")?;
            Ok(())
        },
    );
    assert_eq!(out, "from the host\nread-only\n");
    assert_eq!(
        std::fs::read_to_string(dir.path("out")).unwrap(),
        "from inside\n"
    );
}

#[test]
fn new_filesystems_tmpfs_proc_and_devfs() {
    let out = sh(
        "while read -r dev dir fs rest; do case $dir in /scratch|/proc2|/dev|/dev/pts|/dev/shm) echo $dir $fs;; esac; done < /proc/mounts
         echo data > /scratch/f && cat /scratch/f
         test -r /proc2/self/status && echo proc2 works
         ls /dev",
        |e| {
            e.tmpfs("/scratch")?.proc("/proc2")?.devfs("/dev")?;
            Ok(())
        },
    );
    let expected = "/scratch tmpfs\n/proc2 proc\n/dev tmpfs\n/dev/pts devpts\n/dev/shm tmpfs\n\
                    data\nproc2 works\n";
    assert!(out.starts_with(expected), "{out}");
    let devices: Vec<&str> = out[expected.len()..].lines().collect();
    for name in [
        "full", "null", "ptmx", "pts", "random", "shm", "stdin", "urandom", "zero",
    ] {
        assert!(
            devices.contains(&name),
            "{name} missing in /dev: {devices:?}"
        );
    }
}

#[test]
fn dirs_files_and_symlinks() {
    let out = sh(
        "stat -c '%a %F' /a/b/c; cat /etc/motd; stat -c '%a' /etc/motd; readlink /bin2",
        |e| {
            e.dir("/a/b/c", 0o700)?
                .file("/etc/motd", "welcome\n")?
                .symlink("usr/bin", "/bin2")?;
            Ok(())
        },
    );
    assert_eq!(out, "700 directory\nwelcome\n644\nusr/bin\n");
    // File contents are bytes.
    let out = sh("od -An -tx1 /bin.dat", |e| {
        e.file("/bin.dat", [0u8, 255, 10])?;
        Ok(())
    });
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["00", "ff", "0a"]
    );
}

#[test]
fn work_dir_and_cwd() {
    let dir = TempDir::new("work");
    std::fs::write(dir.path("here"), "").unwrap();
    let out = sh("pwd; ls; touch made", |e| {
        e.work_dir(&dir.0)?;
        Ok(())
    });
    assert_eq!(out, "/hako\nhere\n");
    assert!(dir.path("made").exists());

    let out = sh("pwd", |e| {
        e.dir("/start/here", 0o755)?.cwd("/start/here")?;
        Ok(())
    });
    assert_eq!(out, "/start/here\n");
    let out = sh("pwd", |e| {
        e.work_dir(&dir.0)?.cwd("/")?;
        Ok(())
    });
    assert_eq!(out, "/\n");
}

#[test]
fn hostname_ids_and_environment() {
    let out = sh(
        "hostname; id -u; id -g; echo \"$GREETING\"; echo \"${LANG-unset}\"",
        |e| {
            e.hostname("box")?
                .uid(0)?
                .gid(123)?
                .setenv("GREETING", "hello there")?
                .setenv("LANG", "")?;
            Ok(())
        },
    );
    assert_eq!(out, "box\n0\n123\nhello there\nunset\n");
}

#[test]
fn shared_namespaces() {
    let script = "readlink /proc/self/ns/net /proc/self/ns/uts /proc/self/ns/ipc";
    let host: Vec<String> = ["net", "uts", "ipc"].map(common::host_namespace).into();
    let new = sh(script, |_| Ok(()));
    let new: Vec<&str> = new.lines().collect();
    let shared = sh(script, |e| {
        e.share_net(true).share_uts(true).share_ipc(true);
        Ok(())
    });
    let shared: Vec<&str> = shared.lines().collect();
    for i in 0..3 {
        assert_ne!(new[i], host[i]);
        assert_eq!(shared[i], host[i]);
    }
    // Sharing the UTS namespace keeps the host's hostname.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        sh("hostname", |e| {
            e.share_uts(true);
            Ok(())
        }),
        hostname
    );
}

/// The soft limits in `/proc/self/limits` of the command, by their names there.
fn soft_limits(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let name = line.get(..26)?.trim().to_string();
            let soft = line.get(26..)?.split_whitespace().next()?.to_string();
            Some((name, soft))
        })
        .collect()
}

#[test]
fn every_rlimit_reaches_the_command() {
    let out = sh("cat /proc/self/limits", |e| {
        e.limit_as(Some(1 << 30))
            .limit_core(Some(4096))
            .limit_cpu(Some(7))
            .limit_fsize(Some(1 << 20))
            .limit_nofile(Some(64))
            .limit_nproc(Some(1000))
            .limit_stack(Some(4 << 20));
        Ok(())
    });
    let limits = soft_limits(&out);
    for (name, value) in [
        ("Max address space", "1073741824"),
        ("Max core file size", "4096"),
        ("Max cpu time", "7"),
        ("Max file size", "1048576"),
        ("Max open files", "64"),
        ("Max processes", "1000"),
        ("Max stack size", "4194304"),
    ] {
        assert!(
            limits.contains(&(name.to_string(), value.to_string())),
            "{name} is not {value}:\n{out}"
        );
    }
    // None leaves a limit as the caller has it.
    let out = sh("cat /proc/self/limits", |e| {
        e.limit_cpu(Some(7)).limit_cpu(None);
        Ok(())
    });
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    let cpu = |limits: &[(String, String)]| {
        limits
            .iter()
            .find(|(name, _)| name == "Max cpu time")
            .cloned()
    };
    assert_eq!(cpu(&soft_limits(&out)), cpu(&soft_limits(&own)));
}

#[test]
fn walltime_kills_the_sandbox() {
    let result = Sandbox::new()
        .command("/bin/sleep", &["sleep", "10"])
        .limit_walltime(Some(1))
        .run();
    assert_eq!(result.status, ExecutorResultStatus::TimeLimitExceeded);
    assert!(
        result.real_time.as_secs_f64() < 5.0,
        "{:?}",
        result.real_time
    );
}

#[test]
fn report_file_gets_a_line_per_run() {
    let dir = TempDir::new("report");
    let path = dir.path("report.json");
    let mut executor = Sandbox::new().command("/bin/sh", &["sh", "-c", "exit 3"]);
    executor.report_file(&path).unwrap();
    // Created (empty) before anything runs.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    let first = executor.run();
    let second = executor.run();
    assert_eq!(first.report_error(), None);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, [first.to_json(), second.to_json()]);
    assert!(lines[0].starts_with(r#"{"status":"OK","reason":"","exit_code":3,"#));
}

#[test]
fn report_file_that_cannot_be_written_after_the_run_is_in_the_result() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let result = Sandbox::new()
        .command("/bin/true", &["true"])
        .report_file("/dev/full")
        .unwrap()
        .run();
    assert_eq!(result.status, ExecutorResultStatus::Ok);
    assert_eq!(
        result.report_error(),
        Some(r#"report file "/dev/full": No space left on device"#)
    );
}

#[test]
fn relayed_signals_reach_the_command() {
    let dir = TempDir::new("relay");
    let ready = dir.path("ready");
    // SAFETY: gettid and getpid take no arguments and cannot fail.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    let signaller = std::thread::spawn(move || {
        assert!(
            common::eventually(std::time::Duration::from_secs(10), || ready.exists()),
            "the command never got ready"
        );
        // To the running thread alone: it blocks SIGUSR1 while it relays, and any other
        // thread of this test process would die of it.
        // SAFETY: tgkill takes integers only.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
    });
    let result = Sandbox::new()
        .command(
            "/bin/sh",
            &[
                "sh",
                "-c",
                "trap 'echo relayed; exit 7' USR1; touch /w/ready; while :; do sleep 0.05; done",
            ],
        )
        .rw_bind(&dir.0, "/w")
        .unwrap()
        .relay_signals(true)
        .stdout(Stdio::piped())
        .limit_walltime(Some(20))
        .run();
    signaller.join().unwrap();
    assert_eq!(result.stdout, b"relayed\n", "{result:?}");
    assert_eq!(result.exit_code, Some(7));
}

#[test]
fn with_policy_changes_what_later_commands_get() {
    let mut sandbox = Sandbox::new();
    sandbox.with_policy(
        hakoniwa::SandboxPolicy::from_str(
            "hostname = \"from-policy\"\nmounts = [{ source = \"/usr\", target = \"/usr\" }, \
             { source = \"/bin\", target = \"/bin\" }, { source = \"/lib\", target = \"/lib\" }, \
             { source = \"/lib64\", target = \"/lib64\" }]\n",
        )
        .unwrap(),
    );
    let result = sandbox
        .command("/bin/sh", &["sh", "-c", "hostname; ls /"])
        .stdout(Stdio::piped())
        .run();
    let mut expected = vec!["from-policy".to_string()];
    expected.extend(
        ["bin", "lib", "lib64", "usr"]
            .iter()
            .filter(|n| Path::new("/").join(n).exists())
            .map(|n| n.to_string()),
    );
    let out = String::from_utf8_lossy(&result.stdout);
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}
