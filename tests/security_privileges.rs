//! Privileges: the command holds no capability unless asked for (and then exactly those),
//! no_new_privs always holds, and a setuid or file-capability binary gains nothing.

mod common;

use common::{CALLERS, Caller, EVERYTHING, TempDir, ok, one_line_error, sh};

const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// The command's capability sets (Inh, Prm, Eff, Bnd, Amb) as its /proc status shows them.
fn command_capabilities(caller: Caller, options: &[&str]) -> Vec<(String, u64)> {
    let status = ok(&sh(caller, options, "cat /proc/self/status"));
    let sets = common::capability_sets(&status);
    let keys: Vec<&str> = sets.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["Inh", "Prm", "Eff", "Bnd", "Amb"], "{status}");
    sets
}

/// Every capability the running kernel knows.
fn every_capability() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (1u64 << (last + 1)) - 1
}

#[test]
fn command_holds_no_capability_unless_asked_and_then_exactly_those() {
    for caller in CALLERS {
        for options in [
            &[][..],
            &["--uid", "0"],
            &["--uid", "1000"],
            &["--uid", "0", "--seccomp", "unconfined"],
        ] {
            for (set, value) in command_capabilities(caller, options) {
                assert_eq!(value, 0, "Cap{set} with {options:?} as {caller:?}");
            }
        }
        for (keep, asked) in [
            (CAP_NET_RAW, &["--cap-add", "CAP_NET_RAW"][..]),
            (
                CAP_NET_RAW | CAP_SYS_ADMIN,
                &["--cap-add", "net_raw", "--cap-add", "CAP_SYS_ADMIN"],
            ),
            (every_capability(), &["--cap-add", "ALL"]),
        ] {
            let mut options = vec!["--uid", "0"];
            options.extend_from_slice(asked);
            let sets = command_capabilities(caller, &options);
            let want = [
                ("Inh", 0),
                ("Prm", keep),
                ("Eff", keep),
                ("Bnd", keep),
                ("Amb", 0),
            ];
            let want: Vec<(String, u64)> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            assert_eq!(sets, want, "{options:?} as {caller:?}");
        }
        // Kept only for uid 0 inside: the caller's own uid is 0 for root, not for 65534.
        let out = sh(
            caller,
            &["--cap-add", "CAP_NET_RAW"],
            "cat /proc/self/status",
        );
        match caller {
            Caller::Root => assert_eq!(ok(&out).matches("0000000000002000").count(), 3),
            Caller::Nobody => assert_eq!(
                one_line_error(&out, 125),
                "capabilities can only be kept for a command that runs as uid 0 inside (--uid 0)"
            ),
        }
        let out = sh(caller, &["--uid", "1000", "--cap-add", "ALL"], "true");
        one_line_error(&out, 125);
    }
}

#[test]
fn a_kept_capability_works_and_an_unasked_one_does_not() {
    // A raw socket needs CAP_NET_RAW (in the sandbox's own network namespace).
    let raw =
        "use Socket; print socket(my $s, AF_INET, SOCK_RAW, 1) ? \"raw ok\\n\" : \"raw: $!\\n\"";
    for caller in CALLERS {
        for (options, want) in [
            (&["--uid", "0"][..], "raw: Operation not permitted\n"),
            (
                &["--uid", "0", "--cap-add", "CAP_SYS_ADMIN"],
                "raw: Operation not permitted\n",
            ),
            (&["--uid", "0", "--cap-add", "CAP_NET_RAW"], "raw ok\n"),
        ] {
            let mut args = vec!["run"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["--", "/usr/bin/perl", "-e", raw]);
            assert_eq!(
                ok(&common::run(caller, &args)),
                want,
                "{options:?} as {caller:?}"
            );
        }
    }
}

#[test]
fn no_new_privs_holds_whatever_the_options() {
    for caller in CALLERS {
        for options in [&[][..], &["--seccomp", "unconfined"], &EVERYTHING] {
            let out = ok(&sh(caller, options, "grep NoNewPrivs /proc/self/status"));
            assert_eq!(out, "NoNewPrivs:\t1\n", "{options:?} as {caller:?}");
        }
    }
}

/// A setuid-root copy of `id` and a copy of `cat` with the file capability
/// CAP_DAC_OVERRIDE, in a root-owned 0755 directory: outside, uid 65534 gains root's euid
/// and the capability through them.
fn privileged_binaries() -> TempDir {
    let dir = TempDir::root_owned("hk-suid-");
    std::fs::copy("/usr/bin/id", dir.path("id")).unwrap();
    common::set_mode(&dir.path("id"), 0o4755);
    std::fs::copy("/usr/bin/cat", dir.path("cat")).unwrap();
    common::set_mode(&dir.path("cat"), 0o755);
    let setcap = std::process::Command::new("setcap")
        .arg("cap_dac_override+ep")
        .arg(dir.path("cat"))
        .status()
        .expect("setcap (libcap) is needed to make a file-capability binary");
    assert!(setcap.success());

    let outside = common::host_sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups -- {d}/id; \
         setpriv --reuid=65534 --regid=65534 --clear-groups -- {d}/cat /proc/self/status | grep CapEff",
        d = dir.arg()
    ));
    let outside = ok(&outside);
    assert!(outside.contains("euid=0(root)"), "{outside}");
    assert!(outside.contains("CapEff:\t0000000000000002"), "{outside}");
    dir
}

#[test]
fn setuid_and_file_capability_binaries_gain_nothing() {
    let dir = privileged_binaries();
    let ro = format!("{}:/p", dir.arg());
    let rw = format!("{}:/p", dir.arg());
    // As root the binaries' owner (0) is mapped inside, so only nosuid and no_new_privs
    // stand between a uid 1000 command and root's euid.
    for caller in CALLERS {
        for options in [
            &["--uid", "1000", "--ro-bind", &ro][..],
            &["--uid", "1000", "--rw-bind", &rw, "--seccomp", "unconfined"],
        ] {
            let out = ok(&sh(
                caller,
                options,
                "/p/id; /p/cat /proc/self/status | grep CapEff",
            ));
            let gid = caller.gid();
            assert_eq!(
                out,
                format!("uid=1000 gid={gid} groups={gid}\nCapEff:\t0000000000000000\n"),
                "{options:?} as {caller:?}"
            );
        }
    }
}
