//! File descriptors: no descriptor of the host but 0, 1 and 2 reaches the command, and its
//! working directory is never a host directory leaked by descriptor (runc CVE-2024-21626),
//! whatever hakoniwa was started with.

mod common;

use std::os::fd::AsRawFd;

use common::{CALLERS, TempDir, ok};

/// What the command's shell shows of its cwd and descriptors: `cwd DIR`, the descriptor
/// numbers one a line, then `ls -l` of them (where a leaked directory would show). (Not in
/// `$(...)`: the shell would hold that pipe's read end.)
const SHOW: &str = "echo cwd $(readlink /proc/$$/cwd); ls /proc/$$/fd; ls -l /proc/$$/fd";

/// The cwd and the descriptor numbers `SHOW` printed.
fn cwd_and_fds(out: &str) -> (String, String) {
    let mut lines = out.lines();
    let cwd = lines
        .next()
        .and_then(|l| l.strip_prefix("cwd "))
        .unwrap_or("");
    let fds: Vec<&str> = lines.take_while(|l| !l.starts_with("total")).collect();
    (cwd.to_string(), fds.join(" "))
}

#[test]
fn cwd_and_descriptors_of_the_host_never_reach_the_command() {
    let dir = TempDir::new("hk-cwd-");
    let work = TempDir::new("hk-work-");
    for caller in CALLERS {
        for (options, cwd) in [
            (String::new(), "/"),
            (format!("-w {}", work.arg()), "/hako"),
        ] {
            // Started from a host directory, with descriptors 7 and 9 open on it (not
            // close-on-exec).
            let out = common::host_sh(&format!(
                "cd {d} && exec 7<{d} 9<{d} && exec {hakoniwa} run {options} -- /bin/sh -c '{SHOW}'",
                d = dir.arg(),
                hakoniwa = common::shell_command(caller),
            ));
            let out = ok(&out);
            assert_eq!(
                cwd_and_fds(&out),
                (cwd.to_string(), "0 1 2".to_string()),
                "{options} as {caller:?}: {out}"
            );
            assert!(!out.contains(dir.arg()), "{out}");
        }
    }
}

#[test]
fn a_cwd_through_proc_fd_never_reaches_a_host_directory() {
    // A policy whose cwd names one of init's descriptors: init holds none of the host's
    // directories when it changes directory, so each is refused (or names nothing).
    let dir = TempDir::new("hk-cwd-fd-");
    for caller in CALLERS {
        // (The shell opens 3 to 9 only.)
        for n in 3..=9 {
            let policy = dir.path("policy.toml");
            std::fs::write(
                &policy,
                format!(
                    "mounts = [\n  {{ target = \"/proc\", fstype = \"proc\" }},\n  \
                     {{ source = \"/bin\", target = \"/bin\" }},\n  {{ source = \"/lib\", target = \"/lib\" }},\n  \
                     {{ source = \"/lib64\", target = \"/lib64\" }},\n  {{ source = \"/usr\", target = \"/usr\" }},\n]\n\
                     cwd = \"/proc/self/fd/{n}\"\n"
                ),
            )
            .unwrap();
            let out = common::host_sh(&format!(
                "cd {d} && exec 3<{d} 4<{d} 5<{d} 6<{d} 7<{d} 8<{d} 9<{d} && \
                 exec {hakoniwa} run -p {p} -- /bin/sh -c '{SHOW}'",
                d = dir.arg(),
                p = policy.display(),
                hakoniwa = common::shell_command(caller),
            ));
            let message = common::one_line_error(&out, 125);
            assert!(
                message.starts_with(&format!("chdir \"/proc/self/fd/{n}\": ")),
                "{message}"
            );
        }
    }
}

#[test]
fn a_library_caller_s_open_directory_does_not_reach_the_command() {
    let dir = TempDir::new("hk-lib-fd-");
    // Opened without close-on-exec, as a careless caller might.
    let path = std::ffi::CString::new(dir.arg()).unwrap();
    // SAFETY: path is NUL-terminated; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(fd >= 0);
    let file = std::fs::File::from(unsafe {
        // SAFETY: fd was just opened and is owned by nothing else.
        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    });
    let result = hakoniwa::Sandbox::new()
        .command("/bin/sh", &["sh", "-c", SHOW])
        .stdout(hakoniwa::Stdio::piped())
        .run();
    common::assert_exited_zero(&result, "the library's sandbox");
    let out = String::from_utf8_lossy(&result.stdout).into_owned();
    assert_eq!(
        cwd_and_fds(&out),
        ("/".to_string(), "0 1 2".to_string()),
        "{out}"
    );
    assert!(
        !out.contains(dir.arg()),
        "fd {} leaked: {out}",
        file.as_raw_fd()
    );
}
