//! Helpers shared by the integration tests: run the real binary, as root and as an
//! unprivileged user, in real sandboxes.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Who starts hakoniwa.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The test process itself (root in CI).
    Root,
    /// uid/gid 65534 with no supplementary groups, started through setpriv.
    Nobody,
}

pub const CALLERS: [Caller; 2] = [Caller::Root, Caller::Nobody];

pub const NOBODY: u32 = 65534;

impl Caller {
    /// The uid hakoniwa runs as.
    pub fn uid(self) -> u32 {
        match self {
            Caller::Root => current_uid(),
            Caller::Nobody => NOBODY,
        }
    }

    /// The gid hakoniwa runs as.
    pub fn gid(self) -> u32 {
        match self {
            Caller::Root => current_id("Gid:"),
            Caller::Nobody => NOBODY,
        }
    }
}

pub fn current_uid() -> u32 {
    current_id("Uid:")
}

/// The effective id on a `Uid:` or `Gid:` line of /proc/self/status.
fn current_id(key: &str) -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .expect("effective id in /proc/self/status")
}

/// The binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hakoniwa"))
}

/// A copy of the binary that uid 65534 can reach: CI's checkout may sit under a 0700 home.
pub fn public_binary() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let test = std::env::current_exe().expect("current_exe");
        let name = test
            .file_name()
            .expect("test binary name")
            .to_string_lossy()
            .into_owned();
        let dir = PathBuf::from(format!("/var/tmp/hakoniwa-tests-{name}"));
        std::fs::create_dir_all(&dir).expect("create the public binary's directory");
        set_mode(&dir, 0o755);
        let tmp = dir.join(format!("hakoniwa.{}", std::process::id()));
        std::fs::copy(binary(), &tmp).expect("copy the binary");
        set_mode(&tmp, 0o755);
        let path = dir.join("hakoniwa");
        std::fs::rename(&tmp, &path).expect("install the binary copy");
        path
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `hakoniwa` started by `caller`, with cwd `/` and a small, known environment.
pub fn hakoniwa(caller: Caller) -> Command {
    match caller {
        Caller::Root => command_as(caller, binary()),
        Caller::Nobody => command_as(caller, public_binary()),
    }
}

/// `program` started by `caller` (through setpriv for uid 65534), with cwd `/` and a small,
/// known environment.
pub fn command_as(caller: Caller, program: &Path) -> Command {
    let mut cmd = match caller {
        Caller::Root => Command::new(program),
        Caller::Nobody => {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            cmd.arg(program);
            cmd
        }
    };
    cmd.current_dir("/");
    cmd.env_clear();
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    cmd
}

/// Runs `hakoniwa ARGS` to completion with stdin from /dev/null.
pub fn run<S: AsRef<OsStr>>(caller: Caller, args: &[S]) -> Output {
    hakoniwa(caller)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn hakoniwa")
}

/// Runs `hakoniwa run [OPTIONS] -- /bin/sh -c SCRIPT`.
pub fn sh(caller: Caller, options: &[&str], script: &str) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run(caller, &args)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the run exited 0 and returns its stdout.
pub fn ok(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "hakoniwa failed\nstdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// A sandbox that stays up until released: its command prints `ready` and then waits for
/// its stdin to close.
pub struct Running {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Starts `hakoniwa run OPTIONS -- /bin/sh -c 'SCRIPT; echo ready; read x'`.
    pub fn start(caller: Caller, options: &[&str], script: &str) -> Running {
        let script = format!("{script}\necho ready; read x");
        let mut cmd = hakoniwa(caller);
        cmd.arg("run")
            .args(options)
            .args(["--", "/bin/sh", "-c", &script]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hakoniwa");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut running = Running {
            child,
            stdin,
            stdout,
        };
        running.wait_for_line("ready");
        running
    }

    /// Reads stdout until a line equal to `want`; returns the lines before it.
    pub fn wait_for_line(&mut self, want: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read sandbox stdout");
            assert!(
                n > 0,
                "sandbox ended before printing {want:?}; it printed {seen:?}"
            );
            let line = line.trim_end().to_string();
            if line == want {
                return seen;
            }
            seen.push(line);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command finish and returns hakoniwa's exit code.
    pub fn release(mut self) -> Option<i32> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        self.child.wait().expect("wait for hakoniwa").code()
    }
}

/// The children of a process (of its main thread), from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    children_of_task(pid, pid)
}

/// The children of thread `tid` of process `pid`, from /proc: zombies included.
pub fn children_of_task(pid: u32, tid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{tid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Pids of host processes whose argv is exactly `argv`.
pub fn processes_with_argv(argv: &[&str]) -> Vec<u32> {
    let mut want = argv.join("\0").into_bytes();
    want.push(0);
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).unwrap_or_default() == want {
            found.push(pid);
        }
    }
    found
}

/// Polls `condition` every 10 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// A word no other test or process uses, for finding this test's processes.
pub fn unique_marker(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}{}{n}{nanos}", std::process::id())
}

/// The top-level names the default policy shows at `/` on this host.
pub fn expected_root_listing() -> Vec<String> {
    let mut names: Vec<String> = ["bin", "lib", "lib64", "usr"]
        .iter()
        .filter(|n| Path::new("/").join(n).exists())
        .map(|n| n.to_string())
        .collect();
    names.extend(["dev".to_string(), "proc".to_string()]);
    names.sort();
    names
}

/// A directory under /tmp that uid 65534 can write to, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = PathBuf::from(format!("/tmp/{}", unique_marker(tag)));
        std::fs::create_dir(&dir).expect("create a temporary directory");
        set_mode(&dir, 0o777);
        TempDir(dir)
    }

    /// A directory under /var/tmp that only root can write to and anyone can search:
    /// where a setuid binary or a binary copy for uid 65534 belongs (/tmp may be noexec).
    pub fn root_owned(tag: &str) -> TempDir {
        let dir = PathBuf::from(format!("/var/tmp/{}", unique_marker(tag)));
        std::fs::create_dir(&dir).expect("create a temporary directory");
        set_mode(&dir, 0o755);
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The host's namespace of type `name` (`net`, `uts`...), as `/proc/self/ns` links it.
pub fn host_namespace(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Asserts a library run exited by itself with code 0; `what` and the run's reason and
/// stderr (its start) say which run failed, and how.
pub fn assert_exited_zero(result: &hakoniwa::ExecutorResult, what: &str) {
    assert_eq!(
        (result.status, result.exit_code),
        (hakoniwa::ExecutorResultStatus::Ok, Some(0)),
        "{what}: {}; stderr: {}",
        result.reason,
        String::from_utf8_lossy(&result.stderr[..result.stderr.len().min(2000)])
    );
}

/// The options that give the command everything a sandbox can give: uid 0 inside, every
/// capability of its user namespace, and no seccomp filter. What still holds with these
/// holds because of the namespaces and the locked mount tree, not because of the filter.
pub const EVERYTHING: [&str; 6] = ["--uid", "0", "--cap-add", "ALL", "--seccomp", "unconfined"];

/// How a shell starts hakoniwa as `caller`: the public copy of the binary (reachable by
/// uid 65534, and when /tmp is covered), behind setpriv for uid 65534.
pub fn shell_command(caller: Caller) -> String {
    let binary = public_binary().display();
    match caller {
        Caller::Root => binary.to_string(),
        Caller::Nobody => {
            format!("setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- {binary}")
        }
    }
}

/// Runs `script` with `/bin/sh -c` (cwd `/`) in a private mount namespace of its own, so
/// that it may cover the host's directories with mounts of its own.
pub fn sh_in_private_mounts(script: &str) -> Output {
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            script,
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("spawn unshare")
}

/// Runs `script` in a private mount namespace whose /tmp is an empty tmpfs, with TMPDIR
/// pointing there: what a run leaves in /tmp is its alone.
pub fn sh_with_private_tmp(script: &str) -> Output {
    sh_in_private_mounts(&format!(
        "mount -t tmpfs -o mode=1777 hk-test-tmp /tmp && export TMPDIR=/tmp && {script}"
    ))
}

/// Runs `script` with `/bin/sh -c` on the host, with cwd `/`.
pub fn host_sh(script: &str) -> Output {
    Command::new("/bin/sh")
        .args(["-c", script])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("spawn /bin/sh")
}

/// Runs each raw system call `(number, perl arguments)` with perl's `syscall` in one
/// sandbox made with `options`, and returns each one's errno (0 when it succeeded).
pub fn syscall_errnos(caller: Caller, options: &[&str], calls: &[(i64, &str)]) -> Vec<i64> {
    let calls: Vec<String> = calls
        .iter()
        .map(|(nr, args)| format!("[{nr}, {args}]"))
        .collect();
    let script = format!(
        "for my $c ({}) {{ my ($nr, @a) = @$c; $! = 0; my $r = syscall($nr, @a); print $r == -1 ? $! + 0 : 0, \"\\n\"; }}",
        calls.join(", ")
    );
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "/usr/bin/perl", "-e", &script]);
    ok(&run(caller, &args))
        .lines()
        .map(|l| l.parse().unwrap_or(-1))
        .collect()
}

/// Asserts hakoniwa failed with `code`, printed nothing on stdout and exactly one line on
/// stderr, starting `hakoniwa: `; returns that line without the prefix and newline.
pub fn one_line_error(output: &Output, code: i32) -> String {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{err}",
        stdout(output)
    );
    assert_eq!(stdout(output), "", "the command must not run");
    let line = err
        .strip_prefix("hakoniwa: ")
        .and_then(|l| l.strip_suffix('\n'))
        .filter(|l| !l.contains('\n'))
        .unwrap_or_else(|| panic!("not one line of hakoniwa's: {err:?}"));
    line.to_string()
}

/// The host's mount table as this process sees it.
pub fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo")
}

/// Values of the `Cap*` lines of a /proc status text, in the order Inh, Prm, Eff, Bnd, Amb.
pub fn capability_sets(status: &str) -> Vec<(String, u64)> {
    status
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            let key = key.strip_prefix("Cap")?;
            Some((key.to_string(), u64::from_str_radix(value.trim(), 16).ok()?))
        })
        .collect()
}

/// Runs `command`, retrying while the kernel says the program is busy being written
/// (ETXTBSY): a file this test just wrote may still be open in a child another test thread
/// forked meanwhile, until that child execs.
pub fn output_of_fresh_program(command: &mut Command) -> Output {
    for _ in 0..100 {
        match command.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.expect("run a program"),
        }
    }
    panic!("the program stayed busy (ETXTBSY)");
}

/// `hakoniwa run --seccomp PROFILE OUTER... --ro-bind HAKONIWA:/hk -- /hk run -- /bin/echo
/// ran`, started by `caller`: a hakoniwa inside an outer one whose filter answers EPERM to
/// `syscall` when `condition` holds (always, for `None`). The profile is written in `dir`.
pub fn inner_hakoniwa_under_filter(
    caller: Caller,
    dir: &TempDir,
    syscall: &str,
    condition: Option<&str>,
    outer: &[&str],
) -> Output {
    let profile = dir.path(&format!("{syscall}.toml"));
    let when = condition.map_or(String::new(), |c| format!("when = [\"{c}\"]\n"));
    std::fs::write(
        &profile,
        format!(
            "default_action = \"allow\"\n[[rules]]\naction = \"errno:EPERM\"\n\
             syscalls = [\"{syscall}\"]\n{when}"
        ),
    )
    .expect("write the outer profile");
    set_mode(&profile, 0o644);
    let inner = format!("{}:/hk", public_binary().display());
    let profile = profile.to_str().expect("a UTF-8 temporary path");
    let mut args = vec!["run", "--seccomp", profile];
    args.extend_from_slice(outer);
    args.extend_from_slice(&[
        "--ro-bind",
        &inner,
        "--",
        "/hk",
        "run",
        "--",
        "/bin/echo",
        "ran",
    ]);
    run(caller, &args)
}
