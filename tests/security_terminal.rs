//! Terminal: a command run on a real terminal cannot push input into it (TIOCSTI), both
//! because it is in a new session without a controlling terminal and because the default
//! seccomp profile refuses the ioctl.

mod common;

use std::process::Command;

use common::{CALLERS, EVERYTHING, ok};

/// Python: runs argv[1:] on a new pseudo-terminal (its controlling terminal), copies what
/// it writes there to stdout, and exits with its status.
const ON_A_PTY: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Perl: pushes "Q\n" into its terminal with TIOCSTI, then reads what the terminal has.
const INJECT: &str = r#"
$| = 1;
my $ok = 1;
for my $x ("Q", "\n") { my $c = $x; ioctl(STDIN, 0x5412, $c) or do { $ok = 0; print "TIOCSTI: $!\n"; last }; }
print "TIOCSTI: done\n" if $ok;
use IO::Select;
if (IO::Select->new(\*STDIN)->can_read(0.5)) { sysread(STDIN, my $b, 16); print "read: $b"; }
else { print "nothing to read\n"; }
"#;

fn on_a_pty(argv: &[String]) -> String {
    let out = Command::new("python3")
        .args(["-c", ON_A_PTY])
        .args(argv)
        .current_dir("/")
        .output()
        .expect("python3 runs the pty harness");
    // The terminal turns \n into \r\n.
    ok(&out).replace("\r\n", "\n")
}

#[test]
fn tiocsti_on_a_real_terminal_is_refused() {
    // Outside a sandbox (as root, who may inject even where the kernel's legacy TIOCSTI is
    // off), the same program pushes its input into the terminal and reads it back.
    let outside = on_a_pty(&["/usr/bin/perl".into(), "-e".into(), INJECT.into()]);
    assert!(outside.contains("TIOCSTI: done\n"), "{outside}");
    assert!(outside.contains("read: Q\n"), "{outside}");
    for caller in CALLERS {
        for options in [&[][..], &["--seccomp", "unconfined"], &EVERYTHING] {
            let command = format!(
                "{} run {} -- /usr/bin/perl -e '{}'",
                common::shell_command(caller),
                options.join(" "),
                INJECT.replace('\'', "'\\''")
            );
            let inside = on_a_pty(&["/bin/sh".into(), "-c".into(), command]);
            assert_eq!(
                inside, "TIOCSTI: Operation not permitted\nnothing to read\n",
                "{options:?} as {caller:?}"
            );
        }
    }
}
