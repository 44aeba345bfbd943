//! Mounts: read-only binds stay read-only and what they cover stays covered, even for a
//! command given everything; submounts of a bound tree keep nosuid, nodev and ro; nothing
//! mounted inside propagates to the host; a new proc cannot be mounted and reboot() is
//! refused.

mod common;

use common::{CALLERS, EVERYTHING, TempDir, ok, sh};

/// Perl: `attempt(PATH, TO)` tries every way of changing or removing the mount at PATH and
/// prints one `name errno` line each (0 when it worked).
const ATTEMPTS: &str = r#"
sub r { my ($name, $r) = @_; print "$name ", ($r == -1 ? $! + 0 : 0), "\n"; }
sub attempt {
    my ($x, $to) = @_;
    my ($null, $cwd, $rw) = (0, -100, "rw");
    my ($clear_ro, $clear_nosuid) = (pack("QQQQ", 0, 1, 0, 0), pack("QQQQ", 0, 2, 0, 0));
    $! = 0; r("remount-bind-rw", syscall(SYS_mount, $null, $x, $null, 32 | 4096, $null));
    $! = 0; r("remount-rw", syscall(SYS_mount, $null, $x, $null, 32, $null));
    $! = 0; r("setattr-clear-ro", syscall(SYS_mount_setattr, $cwd, $x, 0, $clear_ro, 32));
    $! = 0; r("setattr-clear-nosuid", syscall(SYS_mount_setattr, $cwd, $x, 0, $clear_nosuid, 32));
    $! = 0; my $fs = syscall(SYS_fspick, $cwd, $x, 0);
    $! = 0; r("reconfigure-rw", $fs == -1 ? -1 : syscall(SYS_fsconfig, $fs, 0, $rw, $null, 0) == -1 ? -1
        : syscall(SYS_fsconfig, $fs, 7, $null, $null, 0));
    $! = 0; r("move", syscall(SYS_mount, $x, $to, $null, 8192, $null));
    $! = 0; r("umount", syscall(SYS_umount2, $x, 0));
    $! = 0; r("umount-detach", syscall(SYS_umount2, $x, 2));
}
"#;

/// The attempts' perl with the system call numbers of this architecture.
fn attempts() -> String {
    [
        ("SYS_mount_setattr", libc::SYS_mount_setattr),
        ("SYS_mount", libc::SYS_mount),
        ("SYS_fspick", libc::SYS_fspick),
        ("SYS_fsconfig", libc::SYS_fsconfig),
        ("SYS_umount2", libc::SYS_umount2),
    ]
    .iter()
    .fold(ATTEMPTS.to_string(), |text, (name, nr)| {
        text.replace(name, &nr.to_string())
    })
}

#[test]
fn read_only_binds_cannot_be_made_writable_or_uncovered() {
    let data = TempDir::new("hk-covered-");
    std::fs::create_dir(data.path("secret")).unwrap();
    std::fs::write(data.path("secret/file"), "uncovered\n").unwrap();
    let empty = TempDir::new("hk-cover-");
    let data_bind = format!("{}:/data", data.arg());
    let cover = format!("{}:/data/secret", empty.arg());
    let script = format!(
        "{}\nmkdir \"/moved\";\n\
         for my $x (\"/usr\", \"/data\", \"/data/secret\") {{ print \"== $x\\n\"; attempt($x, \"/moved\"); }}\n\
         print \"== after\\n\", open(my $f, \"<\", \"/data/secret/file\") ? \"uncovered\\n\" : \"covered\\n\";\n\
         print open(my $g, \">\", \"/usr/hk-written\") ? \"written\\n\" : \"$!\\n\";\n\
         print \"== own\\n\"; mkdir \"/own\"; my ($t, $o) = (\"tmpfs\", \"/own\"); syscall({mount}, $t, $o, $t, 1, 0) == 0 or die;\n\
         attempt(\"/own\", \"/moved\");",
        attempts(),
        mount = libc::SYS_mount
    );
    for caller in CALLERS {
        let mut args = vec!["run"];
        args.extend_from_slice(&EVERYTHING);
        args.extend_from_slice(&["--ro-bind", &data_bind, "--ro-bind", &cover]);
        args.extend_from_slice(&["--", "/usr/bin/perl", "-e", &script]);
        let out = ok(&common::run(caller, &args));
        let sections: Vec<&str> = out.split("== ").skip(1).collect();
        assert_eq!(sections.len(), 5, "{out}");
        for section in &sections[..3] {
            let mut lines = section.lines();
            let mount = lines.next().unwrap_or_default();
            let attempts: Vec<&str> = lines.collect();
            assert_eq!(attempts.len(), 8, "{section}");
            for attempt in attempts {
                assert!(
                    !attempt.ends_with(" 0"),
                    "{mount}: {attempt} worked as {caller:?}"
                );
            }
        }
        assert_eq!(
            sections[3], "after\ncovered\nRead-only file system\n",
            "as {caller:?}"
        );
        // The same calls work on a mount the command made itself: what refuses them above
        // is the lock on the tree hakoniwa built, not a missing capability.
        let own: Vec<&str> = sections[4].lines().skip(1).collect();
        assert_eq!(
            own,
            [
                "remount-bind-rw 0",
                "remount-rw 0",
                "setattr-clear-ro 0",
                "setattr-clear-nosuid 0",
                "reconfigure-rw 0",
                "move 0",
                // Moved away, so nothing is left at /own to unmount.
                &format!("umount {}", libc::EINVAL),
                &format!("umount-detach {}", libc::EINVAL),
            ],
            "as {caller:?}"
        );
    }
}

/// The options field (the sixth) of each mountinfo line whose mount point is `under` or
/// below it.
fn mount_options_under(mountinfo: &str, under: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let (point, options) = (*fields.get(4)?, *fields.get(5)?);
            (point == under || point.starts_with(&format!("{under}/")))
                .then(|| (point.to_string(), options.to_string()))
        })
        .collect()
}

#[test]
fn submounts_of_a_bound_tree_keep_nosuid_nodev_and_ro() {
    // The host's /dev has submounts (/dev/pts, /dev/shm) without nosuid or ro.
    let host = mount_options_under(&common::host_mountinfo(), "/dev");
    assert!(host.len() > 1, "the host's /dev has no submounts: {host:?}");
    assert!(
        host.iter()
            .any(|(_, o)| !o.contains("nosuid") || !o.split(',').any(|f| f == "ro")),
        "{host:?}"
    );
    for caller in CALLERS {
        for (option, ro) in [("--ro-bind", true), ("--rw-bind", false)] {
            let inside = ok(&sh(
                caller,
                &[option, "/dev:/hostdev"],
                "cat /proc/self/mountinfo",
            ));
            let inside = mount_options_under(&inside, "/hostdev");
            assert_eq!(inside.len(), host.len(), "{inside:?} against {host:?}");
            for (point, options) in &inside {
                let flags: Vec<&str> = options.split(',').collect();
                assert!(flags.contains(&"nosuid"), "{point}: {options}");
                assert!(flags.contains(&"nodev"), "{point}: {options}");
                assert_eq!(flags.contains(&"ro"), ro, "{option} {point}: {options}");
            }
        }
        // A command given everything cannot clear them on a submount either.
        let out = ok(&sh(
            caller,
            &[&EVERYTHING[..], &["--ro-bind", "/dev:/hostdev"]].concat(),
            "mount -o remount,bind,rw,suid,dev /hostdev/shm 2>/dev/null && echo remounted; \
             grep ' /hostdev/shm ' /proc/self/mountinfo | cut -d' ' -f6 | sort -u",
        ));
        assert_eq!(out, "ro,nosuid,nodev,relatime\n", "as {caller:?}");
    }
}

#[test]
fn mounts_made_inside_never_propagate_to_the_host() {
    // In a mount namespace of this test's own, a shared tmpfs stands for a host mount
    // point that propagates; the sandbox binds it read-write, and a command given
    // everything mounts on it. A plain child mount namespace doing the same shows that the
    // host side would see a mount that got through.
    let dir = TempDir::new("hk-propagation-");
    for caller in CALLERS {
        let script = format!(
            "set -e; d={d}/shared; mkdir -p $d; mount -t tmpfs hk-shared $d; mount --make-shared $d; \
             mkdir $d/sub; chmod 777 $d $d/sub; \
             {hakoniwa} run {everything} --rw-bind $d:/s -- /bin/sh -c \
               'mount -t tmpfs hk-inner /s/sub && touch /s/sub/inside && grep -c hk-inner /proc/self/mountinfo'; \
             echo host: $(grep -c hk-inner /proc/self/mountinfo || true) $(ls $d/sub); \
             unshare --mount --propagation unchanged mount -t tmpfs hk-inner $d/sub; \
             echo plain namespace: $(grep -c hk-inner /proc/self/mountinfo)",
            d = dir.arg(),
            hakoniwa = common::shell_command(caller),
            everything = EVERYTHING.join(" "),
        );
        let out = common::host_sh(&format!(
            "unshare --mount --propagation shared /bin/sh -c '{}'",
            script.replace('\'', "'\\''")
        ));
        assert_eq!(
            ok(&out),
            "1\nhost: 0\nplain namespace: 1\n",
            "as {caller:?}"
        );
    }
}

#[test]
fn a_new_proc_cannot_be_mounted_and_reboot_is_refused() {
    // The pid namespace belongs to the outer user namespace, which the command is not in:
    // CAP_SYS_ADMIN and CAP_SYS_BOOT of its own user namespace do not count there. A tmpfs
    // (which that user namespace may mount) shows the capability itself works.
    let calls = [
        (libc::SYS_mkdir, "\"/m\", 0755"),
        (libc::SYS_mount, "\"tmpfs\", \"/m\", \"tmpfs\", 0, 0"),
        (libc::SYS_mount, "\"proc\", \"/m\", \"proc\", 0, 0"),
        (libc::SYS_mount, "\"sysfs\", \"/m\", \"sysfs\", 0, 0"),
        (libc::SYS_reboot, "0xfee1dead, 672274793, 0, 0"),
    ];
    for caller in CALLERS {
        let errnos = common::syscall_errnos(caller, &EVERYTHING, &calls);
        let eperm = libc::EPERM as i64;
        assert_eq!(errnos, [0, 0, eperm, eperm, eperm], "as {caller:?}");
    }
}

#[test]
fn read_only_binds_stay_read_only_for_everything_even_without_user_namespaces() {
    if common::current_uid() != 0 {
        return;
    }
    // Root in a user namespace whose max_user_namespaces is 0 stands for a host whose kernel
    // refuses root user namespaces (as in cli_minimal_hosts.rs).
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && \
         {} run {} --ro-bind /tmp:/data -- /bin/sh -c \
         'mount -o remount,bind,rw /data 2>/dev/null && echo remounted; echo done'",
        common::public_binary().display(),
        EVERYTHING.join(" ")
    );
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "/bin/sh", "-c", &script])
        .current_dir("/")
        .output()
        .unwrap();
    // Without a user namespace the capabilities would be the host's: hakoniwa refuses to
    // keep any, in one line, and runs nothing.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{err}");
    assert!(
        err.starts_with("hakoniwa: keep capabilities (ALL): the kernel refused a user namespace")
            && err.contains("--cap-add")
            && err.lines().count() == 1,
        "{err}"
    );
    // Without --cap-add the same command runs, as the host's root without capabilities,
    // and the bind stays read-only.
    let script = script.replace(&EVERYTHING.join(" "), "--uid 0 --seccomp unconfined");
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "/bin/sh", "-c", &script])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(ok(&out), "done\n");
}
