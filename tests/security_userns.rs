//! Nested user namespaces: the default seccomp profile refuses them (the `--disable-userns`
//! of other sandboxes), and nothing inside undoes that: not unshare(1), not a copy of
//! hakoniwa, not another filter, not prctl, not every capability. Nesting hakoniwa in
//! itself takes `--seccomp unconfined`, and as root `--cap-add CAP_SETFCAP` as well.

mod common;

use common::{CALLERS, Caller, ok, one_line_error};

/// Perl: stacks an allow-everything filter, tries to switch seccomp and no_new_privs off,
/// then tries a user namespace; prints each errno (0: it worked) and the status lines.
const UNDO: &str = r#"
sub r { my ($name, $r) = @_; print "$name ", ($r == -1 ? $! + 0 : 0), "\n"; }
my $allow = pack("SCCL", 6, 0, 0, 0x7fff0000);
my $program = pack("S x6 P8", 1, $allow);
$! = 0; r("filter", syscall(SYS_seccomp, 1, 0, $program));
$! = 0; r("prctl-seccomp", syscall(SYS_prctl, 22, 0, 0, 0, 0));
$! = 0; r("prctl-nnp", syscall(SYS_prctl, 38, 0, 0, 0, 0));
$! = 0; r("unshare", syscall(SYS_unshare, 0x10000000));
open(my $s, "<", "/proc/self/status"); while (<$s>) { print if /^Seccomp:/ }
"#;

fn undo_script() -> String {
    UNDO.replace("SYS_seccomp", &libc::SYS_seccomp.to_string())
        .replace("SYS_prctl", &libc::SYS_prctl.to_string())
        .replace("SYS_unshare", &libc::SYS_unshare.to_string())
}

/// Runs `hakoniwa run OPTIONS --ro-bind HAKONIWA:/hk -- COMMAND...` as `caller`.
fn run_with_hakoniwa_inside(
    caller: Caller,
    options: &[&str],
    command: &[&str],
) -> std::process::Output {
    let bind = format!("{}:/hk", common::public_binary().display());
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--ro-bind", &bind, "--"]);
    args.extend_from_slice(command);
    common::run(caller, &args)
}

#[test]
fn nested_user_namespaces_are_refused_and_that_cannot_be_undone_from_inside() {
    let script = undo_script();
    let perl = ["/usr/bin/perl", "-e", &script];
    for caller in CALLERS {
        for options in [&[][..], &["--uid", "0", "--cap-add", "ALL"]] {
            let out =
                run_with_hakoniwa_inside(caller, options, &["/usr/bin/unshare", "-U", "true"]);
            assert_eq!(out.status.code(), Some(1), "{options:?} as {caller:?}");
            let out = run_with_hakoniwa_inside(caller, options, &["/hk", "run", "--", "/bin/true"]);
            assert_eq!(
                one_line_error(&out, 125),
                "create the sandbox's namespaces (clone3): Function not implemented",
                "{options:?} as {caller:?}"
            );
            let out = ok(&run_with_hakoniwa_inside(caller, options, &perl));
            assert_eq!(
                out,
                format!(
                    "filter 0\nprctl-seccomp {e}\nprctl-nnp {e}\nunshare {p}\nSeccomp:\t2\n",
                    e = libc::EINVAL,
                    p = libc::EPERM
                ),
                "{options:?} as {caller:?}"
            );
        }
        // Without the filter, the same user namespace is there for the taking.
        let unconfined = ["--seccomp", "unconfined"];
        let out =
            run_with_hakoniwa_inside(caller, &unconfined, &["/usr/bin/unshare", "-U", "true"]);
        assert_eq!(out.status.code(), Some(0), "as {caller:?}");
        let out = ok(&run_with_hakoniwa_inside(caller, &unconfined, &perl));
        assert!(out.contains("\nunshare 0\n"), "as {caller:?}: {out}");
    }
}

#[test]
fn nesting_hakoniwa_takes_unconfined_and_as_root_cap_setfcap() {
    let nested = ["/hk", "run", "--", "/bin/echo", "nested"];
    for caller in CALLERS {
        let out = run_with_hakoniwa_inside(caller, &["--seccomp", "unconfined"], &nested);
        match caller {
            // Root's sandbox maps uid 0, and only a creator holding CAP_SETFCAP may map
            // uid 0 into a new user namespace.
            Caller::Root => assert_eq!(
                one_line_error(&out, 125),
                "write \"0 0 1\" to \"/proc/self/uid_map\": write: Operation not permitted"
            ),
            Caller::Nobody => assert_eq!(ok(&out), "nested\n"),
        }
    }
    let options = ["--seccomp", "unconfined", "--cap-add", "CAP_SETFCAP"];
    let out = run_with_hakoniwa_inside(Caller::Root, &options, &nested);
    assert_eq!(ok(&out), "nested\n");
}
