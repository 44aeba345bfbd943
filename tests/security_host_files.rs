//! Host files: only what the policy binds is reachable, /etc/shadow stays unreadable for a
//! non-root caller, /proc shows only the sandbox, and hakoniwa's own binary (init's
//! /proc/1/exe) is out of reach (runc CVE-2019-5736), even for a command given everything.

mod common;

use common::{CALLERS, Caller, EVERYTHING, Running, TempDir, ok, sh};

#[test]
fn only_what_the_policy_binds_is_reachable() {
    let dir = TempDir::new("hk-unbound-");
    let marker = common::unique_marker("hk-marker-");
    std::fs::write(dir.path(&marker), "secret\n").unwrap();
    let d = dir.arg();
    // A search of the whole tree (but the host's /usr and /proc, which cannot hold it), the
    // host path itself, and the roots and cwds of every process of the sandbox.
    let script = format!(
        "find / -path /proc -prune -o -path /usr -prune -o -name {marker} -print 2>/dev/null; \
         cat {d}/{marker} 2>/dev/null; \
         for p in /proc/[0-9]*; do cat $p/root{d}/{marker} $p/cwd{d}/{marker} 2>/dev/null; done; \
         echo searched"
    );
    for caller in CALLERS {
        for options in [&[][..], &EVERYTHING] {
            let out = ok(&sh(caller, options, &script));
            assert_eq!(out, "searched\n", "{options:?} as {caller:?}");
        }
        // The same search finds it once it is bound.
        let bind = format!("{d}:/bound");
        let out = ok(&sh(caller, &["--ro-bind", &bind], &script));
        assert_eq!(out, format!("/bound/{marker}\nsearched\n"), "as {caller:?}");
    }
}

#[test]
fn shadow_stays_unreadable_through_a_bind_of_etc_for_a_non_root_caller() {
    // name_to_handle_at + open_by_handle_at, the way around permissions on directories.
    let by_handle = format!(
        r#"my ($h, $m, $p, $cwd, $z) = (pack("LL", 128, 0) . ("\0" x 128), "\0" x 8, "/etc/shadow", -100, 0);
        if (syscall({name}, $cwd, $p, $h, $m, $z) == -1) {{ print "handle: $!\n"; exit 0; }}
        open(my $etc, "<", "/etc") or die;
        my $e = fileno($etc);
        print syscall({open}, $e, $h, $z) == -1 ? "by handle: $!\n" : "by handle: opened\n";"#,
        name = libc::SYS_name_to_handle_at,
        open = libc::SYS_open_by_handle_at,
    );
    for options in [
        &["--ro-bind", "/etc"][..],
        &["--rw-bind", "/etc"],
        &[
            "--ro-bind",
            "/etc",
            "--uid",
            "0",
            "--cap-add",
            "ALL",
            "--seccomp",
            "unconfined",
        ],
    ] {
        let out = ok(&sh(
            Caller::Nobody,
            options,
            "head -c 5 /etc/shadow 2>&1; echo; test -r /etc/passwd && echo passwd readable",
        ));
        assert_eq!(
            out,
            "head: cannot open '/etc/shadow' for reading: Permission denied\n\npasswd readable\n",
            "{options:?}"
        );
        let mut args = vec!["run"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--", "/usr/bin/perl", "-e", &by_handle]);
        let out = ok(&common::run(Caller::Nobody, &args));
        // Refused by the filter (the handle) or by the kernel (the open).
        assert!(
            out.ends_with("handle: Operation not permitted\n"),
            "{options:?}: {out}"
        );
    }
    // The same reads work for root, whose uid 0 owns the file.
    let out = ok(&sh(
        Caller::Root,
        &["--ro-bind", "/etc"],
        "head -c 5 /etc/shadow",
    ));
    assert_eq!(out, "root:");
}

#[test]
fn proc_shows_only_the_sandbox_even_to_a_command_given_everything() {
    for caller in CALLERS {
        for options in [
            &EVERYTHING[..],
            &["--share-net", "--share-ipc", "--share-uts"],
        ] {
            let out = ok(&sh(
                caller,
                options,
                "sleep 10 & cd /proc && echo [0-9]*; kill $!",
            ));
            // init (1), the shell (2) and its sleep (3): nothing of the host.
            assert_eq!(out, "1 2 3\n", "{options:?} as {caller:?}");
        }
    }
}

/// Tries to reach init (hakoniwa's own process, whose /proc/1/exe is hakoniwa's binary on
/// the host) every way a process of the sandbox could; prints one line per way.
const REACH_INIT: &str = r#"
for my $n ("exe", "root/", "cwd/", "mem", "environ") {
    my $p = "/proc/1/$n";
    my $w = open(my $f, "+<", $p) ? "opened" : $! + 0;
    my $l = defined(readlink($p)) ? "read" : $! + 0;
    print "$n $w $l\n";
}
$! = 0; my $r = syscall(101, 0x4206, 1, 0, 0);  # ptrace(PTRACE_SEIZE, 1): no stop if it works
print "ptrace ", $r == -1 ? $! + 0 : "attached", "\n";
print "exe ", readlink("/proc/self/exe"), " ", open(my $f, "+<", "/proc/self/exe") ? "opened" : $! + 0, "\n";
"#;

#[test]
fn hakoniwa_binary_cannot_be_reached_from_inside() {
    const EACCES: i32 = libc::EACCES;
    const EPERM: i32 = libc::EPERM;
    const EINVAL: i32 = libc::EINVAL;
    let want = format!(
        "exe {EACCES} {EACCES}\nroot/ {EACCES} {EACCES}\ncwd/ {EACCES} {EACCES}\n\
         mem {EACCES} {EINVAL}\nenviron {EACCES} {EINVAL}\nptrace {EPERM}\n"
    );
    for caller in CALLERS {
        for options in [&[][..], &EVERYTHING] {
            let mut args = vec!["run"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["--", "/usr/bin/perl", "-e", REACH_INIT]);
            let out = ok(&common::run(caller, &args));
            let (init, own) = out.split_at(out.find("\nexe ").map_or(0, |i| i + 1));
            assert_eq!(init, want, "{options:?} as {caller:?}");
            // The command's own binary is the host's perl, read-only (and busy).
            let own: Vec<&str> = own.split_whitespace().collect();
            assert_eq!(own[..2], ["exe", "/usr/bin/perl"]);
            assert!(
                [libc::EROFS, libc::ETXTBSY, libc::EACCES]
                    .map(|e| e.to_string())
                    .contains(&own[2].to_string()),
                "{own:?}"
            );
        }
        // Seen from the host, the same init's exe is hakoniwa's binary: what the command
        // was refused is there to be refused.
        let running = Running::start(caller, &[], "true");
        let init = common::children(running.pid());
        let exe = std::fs::read_link(format!("/proc/{}/exe", init[0])).unwrap();
        let binary = match caller {
            Caller::Root => common::binary(),
            Caller::Nobody => common::public_binary(),
        };
        assert_eq!(exe, binary);
        assert_eq!(running.release(), Some(0));
    }
}

#[test]
fn chroot_and_pivot_root_cannot_climb_out_of_the_sandbox_root() {
    // The classic climb: chroot into a subdirectory while the cwd stays outside it, walk up
    // with "..", and chroot there. Out of a chroot of the host's root it reaches the host's
    // /; out of the sandbox it reaches the sandbox's root, which is all there is.
    let climb = format!(
        "mkdir \"/jail\"; chroot \"/jail\" or die \"chroot: $!\"; chdir \"../../../..\"; chroot \".\" or die;\n\
         sub show {{ opendir(my $d, \"/\") or die; print join(\" \", sort grep {{ !/^\\./ }} readdir $d), \"\\n\"; }}\n\
         show(); my $dot = \".\"; $! = 0; syscall({pivot_root}, $dot, $dot); print $! + 0, \"\\n\"; show();",
        pivot_root = libc::SYS_pivot_root
    );
    let mut root = common::expected_root_listing();
    root.push("jail".to_string());
    root.sort();
    let root = root.join(" ");
    for caller in CALLERS {
        let mut args = vec!["run"];
        args.extend_from_slice(&EVERYTHING);
        args.extend_from_slice(&["--", "/usr/bin/perl", "-e", &climb]);
        let out = ok(&common::run(caller, &args));
        assert_eq!(
            out,
            format!("{root}\n{}\n{root}\n", libc::EINVAL),
            "as {caller:?}"
        );
    }
}

#[test]
fn the_host_s_abstract_sockets_are_out_of_reach_unless_the_network_is_shared() {
    // Abstract Unix sockets (X11's @/tmp/.X11-unix/X0, for one) belong to the network
    // namespace, not to the file system: no bind hides them, only a network namespace.
    use std::os::linux::net::SocketAddrExt;
    let name = common::unique_marker("hk-abstract-");
    let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    let connect = format!(
        "use Socket; socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die; \
         print connect($s, pack_sockaddr_un(\"\\0{name}\")) ? \"connected\\n\" : \"$!\\n\""
    );
    for caller in CALLERS {
        for (options, want) in [
            (&[][..], "Connection refused\n"),
            (&EVERYTHING, "Connection refused\n"),
            (&["--share-net"], "connected\n"),
        ] {
            let mut args = vec!["run"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["--", "/usr/bin/perl", "-e", &connect]);
            let out = ok(&common::run(caller, &args));
            assert_eq!(out, want, "{options:?} as {caller:?}");
        }
    }
}
