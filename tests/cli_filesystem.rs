//! Filesystem building blocks on the command line, network, Landlock, and the command line's
//! own help, man page and completion scripts.

mod common;

use common::{CALLERS, Caller, ok, run, sh, stderr, stdout};

/// Each filesystem option, observed from inside; later options build on earlier ones.
#[test]
fn filesystem_options_build_the_tree_in_order() {
    let host = common::TempDir::new("fs-ops");
    std::fs::write(host.path("data"), b"from the host\n").unwrap();
    common::set_mode(&host.path("data"), 0o644);
    let data = format!("/t/d/copy:{}", host.path("data").display());
    for caller in CALLERS {
        let options = [
            "--tmpfs",
            "/t:size=1M,mode=700",
            "--dir",
            "/t/d:750",
            "--file",
            "/t/d/f:hello",
            "--file-from",
            &data,
            "--symlink",
            "/t/d/f:/link",
            "--proc",
            "/p2",
            "--ro-bind-try",
            "/no/such/path:/skipped",
            "--rw-bind-try",
            "/etc/hostname:/t/hostname",
            "--chdir",
            "/t/d",
        ];
        let script = "pwd; stat -c '%a' /t /t/d; cat /link; echo; cat copy; readlink /link; \
                      grep ' /t ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1,3; \
                      test -e /skipped || echo skipped; test -r /t/hostname && echo bound; \
                      test -d /p2/self && echo proc";
        let out = ok(&sh(caller, &options, script));
        // A tmpfs made as another user than root also shows its owner.
        let lines: Vec<&str> = out
            .lines()
            .map(|l| l.split(",uid=").next().unwrap_or(l))
            .collect();
        assert_eq!(
            lines,
            [
                "/t/d",
                "700",
                "750",
                "hello",
                "from the host",
                "/t/d/f",
                "tmpfs rw,size=1024k,mode=700",
                "skipped",
                "bound",
                "proc",
            ],
            "as {caller:?}"
        );
    }
}

#[test]
fn bad_filesystem_option_values_give_125() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--tmpfs", "/t:size=lots"],
            "hakoniwa: --tmpfs: tmpfs option \"size=lots\" has a bad value\n",
        ),
        (
            &["--tmpfs", "/t:uid=0"],
            "hakoniwa: --tmpfs: unknown tmpfs option \"uid\" (expected size, mode or nr_inodes)\n",
        ),
        (
            &["--dir", "/d:999"],
            "hakoniwa: --dir: \"/d:999\": MODE is not an octal number\n",
        ),
        (
            &["--symlink", "nolink"],
            "hakoniwa: --symlink: \"nolink\" is not TARGET:LINK\n",
        ),
        (
            &["--file", "/f"],
            "hakoniwa: --file: \"/f\" is not DEST:CONTENTS\n",
        ),
        (
            &["--file-from", "/f:/no/such/file"],
            "hakoniwa: --file-from: host file \"/no/such/file\": No such file or directory\n",
        ),
        (
            &["--landlock-tcp-bind", "99999"],
            "hakoniwa: --landlock-tcp-bind: \"99999\" is not a TCP port\n",
        ),
    ];
    for (options, message) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--", "/bin/echo", "ran"]);
        let out = run(Caller::Root, &args);
        assert_eq!(out.status.code(), Some(125), "{options:?}");
        assert_eq!(stderr(&out), *message, "{options:?}");
        assert_eq!(stdout(&out), "");
    }
}

/// The devfs's nodes work: write to null, 4 bytes from urandom, a new pty.
#[test]
fn devfs_nodes_are_usable() {
    let script = "use IO::Handle; \
        open(my $n, '>', '/dev/null') or die 'null'; print $n 'x'; close $n; \
        open(my $r, '<', '/dev/urandom') or die 'urandom'; read($r, my $b, 4); print length($b), \"\\n\"; \
        open(my $m, '+<', '/dev/ptmx') or die \"ptmx: $!\"; \
        ioctl($m, 0x80045430, my $n2 = pack('i', 0)) or die \"TIOCGPTN: $!\"; \
        print 'pty ', unpack('i', $n2), \"\\n\"; \
        print join(' ', map { -e \"/dev/$_\" ? $_ : \"no-$_\" } qw(zero full random tty fd stdin stdout stderr shm pts)), \"\\n\";";
    for caller in CALLERS {
        let out = ok(&run(
            caller,
            &[
                "run",
                "--devfs",
                "/dev",
                "--",
                "/usr/bin/perl",
                "-e",
                script,
            ],
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "4", "as {caller:?}");
        assert!(lines[1].starts_with("pty "), "{out}");
        assert_eq!(
            lines[2], "zero full random tty fd stdin stdout stderr shm pts",
            "as {caller:?}"
        );
    }
}

/// `lo` is up in the sandbox's own network: a TCP listener and a client on 127.0.0.1.
#[test]
fn loopback_is_up_and_reachable() {
    let script = "use IO::Socket::INET; \
        my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:8080', ReuseAddr => 1) or die \"listen: $!\"; \
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080') or die \"connect: $!\"; \
        my $a = $l->accept; print $c \"ping\\n\"; print scalar <$a>;";
    for caller in CALLERS {
        let out = run(caller, &["run", "--", "/usr/bin/perl", "-e", script]);
        assert_eq!(ok(&out), "ping\n", "as {caller:?}");
        let flags = ok(&sh(
            caller,
            &[],
            "cat /sys/class/net/lo/flags 2>/dev/null || grep -c lo /proc/net/dev",
        ));
        assert!(!flags.is_empty());
    }
}

fn landlock_abi() -> u32 {
    // The kernel answers a version query on landlock_create_ruleset.
    // SAFETY: with the version flag the attribute is NULL and the size 0.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    u32::try_from(abi).unwrap_or(0)
}

#[test]
fn landlock_path_rules() {
    if landlock_abi() == 0 {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    let paths = [
        "--landlock-rx",
        "/usr",
        "--landlock-rx",
        "/bin",
        "--landlock-rx",
        "/lib",
        "--landlock-rx",
        "/lib64",
    ];
    for caller in CALLERS {
        let mut options = vec![
            "--tmpfs",
            "/w",
            "--tmpfs",
            "/r",
            "--landlock-rw",
            "/w",
            "--landlock-ro",
            "/r",
            "--landlock-rw",
            "/dev/null",
        ];
        options.extend_from_slice(&paths);
        let script = "ls /usr >/dev/null && echo rx-ok; echo x > /w/f && echo rw-ok; cat /w/f; \
                      ls /r >/dev/null && echo ro-read-ok; touch /r/f 2>/dev/null || echo ro-write-denied; \
                      cat /proc/self/status >/dev/null 2>&1 || echo unlisted-denied";
        let out = ok(&sh(caller, &options, script));
        assert_eq!(
            out, "rx-ok\nrw-ok\nx\nro-read-ok\nro-write-denied\nunlisted-denied\n",
            "as {caller:?}"
        );
        // Without the rx rule on /bin, nothing there can run.
        let out = run(caller, &["run", "--landlock-ro", "/usr", "--", "/bin/true"]);
        assert_eq!(
            out.status.code(),
            Some(126),
            "as {caller:?}: {}",
            stderr(&out)
        );
        // A rule on a path the sandbox lacks is named, among others that are fine.
        let mut options = vec!["run", "--landlock-rw", "/nowhere"];
        options.extend_from_slice(&paths);
        options.extend(["--", "/bin/true"]);
        let out = run(caller, &options);
        assert_eq!(out.status.code(), Some(125), "as {caller:?}");
        assert_eq!(
            stderr(&out),
            "hakoniwa: add the Landlock rule rw \"/nowhere\": No such file or directory\n",
            "as {caller:?}"
        );
    }
}

#[test]
fn landlock_tcp_rules() {
    if landlock_abi() < 4 {
        eprintln!("skipped: this kernel's Landlock has no TCP rules");
        return;
    }
    let script = "use IO::Socket::INET; \
        my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:8081', ReuseAddr => 1) or die \"listen 8081: $!\\n\"; print \"bind ok\\n\"; \
        IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1:8082') and print \"bind 8082 allowed\\n\" or print \"bind 8082 denied\\n\"; \
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1:8081') and print \"connect allowed\\n\" or print \"connect denied\\n\";";
    for caller in CALLERS {
        // Binding 8081 allowed; connecting allowed to `connect` only.
        let run_with = |connect: &str| {
            ok(&run(
                caller,
                &[
                    "run",
                    "--landlock-tcp-bind",
                    "8081",
                    "--landlock-tcp-connect",
                    connect,
                    "--",
                    "/usr/bin/perl",
                    "-e",
                    script,
                ],
            ))
        };
        assert_eq!(
            run_with("9"),
            "bind ok\nbind 8082 denied\nconnect denied\n",
            "as {caller:?}"
        );
        assert_eq!(
            run_with("8081"),
            "bind ok\nbind 8082 denied\nconnect allowed\n",
            "as {caller:?}"
        );
    }
}

#[test]
fn landlock_is_logged_and_strict_is_honoured() {
    let out = run(
        Caller::Root,
        &[
            "run",
            "-v",
            "--landlock-rx",
            "/",
            "--landlock-strict",
            "--",
            "/bin/true",
        ],
    );
    if landlock_abi() >= 4 {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let abi = landlock_abi();
        assert!(
            stderr(&out).contains(&format!(
                "] Landlock: ABI {abi}, 1 path rules, 0 port rules\n"
            )),
            "{}",
            stderr(&out)
        );
    }
    // A policy's [landlock] table.
    let dir = common::TempDir::new("landlock-policy");
    let policy = dir.path("p.toml");
    let kiss = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/KISS-policy.toml"
    ))
    .unwrap();
    std::fs::write(
        &policy,
        format!(
            "{kiss}\n[landlock]\nrx = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\"]\nstrict = false\n"
        ),
    )
    .unwrap();
    common::set_mode(&policy, 0o644);
    for caller in CALLERS {
        let out = run(
            caller,
            &[
                "run",
                "-p",
                policy.to_str().unwrap(),
                "--",
                "/bin/sh",
                "-c",
                "ls /proc >/dev/null 2>&1 || echo denied",
            ],
        );
        let want = if landlock_abi() > 0 { "denied\n" } else { "" };
        assert_eq!(ok(&out), want, "as {caller:?}");
    }
}

#[test]
fn help_man_and_completions() {
    let help = ok(&run(Caller::Root, &["run", "--help"]));
    for option in [
        "--tmpfs DEST[:OPTS]",
        "--landlock-rw PATH",
        "--cap-add CAP",
        "-q, --quiet",
    ] {
        assert!(help.contains(option), "{option}");
    }
    let bash = ok(&run(Caller::Root, &["completion", "bash"]));
    let dir = common::TempDir::new("completion");
    let script = dir.path("hakoniwa.bash");
    std::fs::write(&script, &bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(check.success(), "bash -n rejects the completion script");
    let completed = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(hakoniwa run --ro-bi); COMP_CWORD=2; _hakoniwa; echo ${{COMPREPLY[@]}}",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(stdout(&completed), "--ro-bind --ro-bind-try\n");
    for (shell, flag) in [("zsh", "-n"), ("fish", "--no-execute")] {
        let text = ok(&run(Caller::Root, &["completion", shell]));
        assert!(
            text.contains("--share-net") || text.contains("-l share-net"),
            "{shell}"
        );
        let path = dir.path(&format!("hakoniwa.{shell}"));
        std::fs::write(&path, text).unwrap();
        match std::process::Command::new(shell)
            .arg(flag)
            .arg(&path)
            .status()
        {
            Ok(status) => assert!(status.success(), "{shell} rejects its completion script"),
            Err(_) => eprintln!("skipped: {shell} is not installed"),
        }
    }
    let bad = run(Caller::Root, &["completion", "tcsh"]);
    assert_eq!(bad.status.code(), Some(125));
    assert_eq!(
        stderr(&bad),
        "hakoniwa: completion: expected bash, zsh or fish, got \"tcsh\"\n"
    );

    let page = ok(&run(Caller::Root, &["man"]));
    assert!(page.starts_with(".TH HAKONIWA 1"));
    let rendered = std::process::Command::new("sh")
        .arg("-c")
        .arg("command -v man >/dev/null || exit 77; MANWIDTH=80 man -l - 2>/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(page.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    match rendered.status.code() {
        Some(77) => eprintln!("skipped: man is not installed"),
        _ => assert!(
            stdout(&rendered).contains("--landlock-strict"),
            "{}",
            stdout(&rendered)
        ),
    }
}

#[test]
fn quiet_and_hakoniwa_log() {
    let out = run(
        Caller::Root,
        &["run", "-q", "--ro-bind", "/no/such", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(stderr(&out), "", "--quiet prints nothing");
    let out = run(Caller::Root, &["run", "--quiet", "--no-such-option"]);
    assert_eq!((out.status.code(), stderr(&out).as_str()), (Some(125), ""));
    let out = common::hakoniwa(Caller::Root)
        .env("HAKONIWA_LOG", "debug")
        .args(["run", "--", "/bin/true"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains(" DEBUG hakoniwa::executor] Step 0: "),
        "{}",
        stderr(&out)
    );
    let out = common::hakoniwa(Caller::Root)
        .env("HAKONIWA_LOG", "loud")
        .args(["run", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        "hakoniwa: HAKONIWA_LOG=\"loud\": expected off, info or debug\n"
    );
}
