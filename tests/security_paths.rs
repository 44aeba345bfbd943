//! Paths: what hakoniwa mounts on or creates inside the sandbox is reached without ever
//! following a symlink that a bound directory controls, and a bind source is opened once and
//! mounted from that descriptor, so neither a destination nor a source swapped for a symlink
//! while sandboxes start can redirect a mount (runc CVE-2019-19921, flatpak CVE-2024-42472,
//! bubblewrap's symlink classes). The races run hundreds of sandboxes against a thread
//! that swaps a directory and a symlink as fast as it can.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use common::{CALLERS, Caller, TempDir, one_line_error};

/// Sandboxes started against each swapping thread, per caller.
const RACE_RUNS: usize = 200;

/// A thread that exchanges two paths atomically (`renameat2(RENAME_EXCHANGE)`) until
/// dropped, so that each name is, at any moment, one or the other of the two objects.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Swapper {
    fn start(a: &Path, b: &Path) -> Swapper {
        let (a, b) = (cstring(a), cstring(b));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !stopped.load(Ordering::Relaxed) {
                // SAFETY: both paths are NUL-terminated strings alive for the call.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
                swaps += 1;
            }
            swaps
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let swaps = thread.join().expect("the swapping thread");
            assert!(swaps > 0 || std::thread::panicking(), "nothing was swapped");
        }
    }
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn symlink(original: &str, link: &Path) {
    std::os::unix::fs::symlink(original, link).unwrap();
}

/// Writes a policy with the host's programs and libraries, /proc, and `extra` (TOML
/// lines) into `dir`; returns its path.
fn policy(dir: &TempDir, extra: &str) -> PathBuf {
    let path = dir.path("policy.toml");
    let text = format!(
        "mounts = [\n  {{ target = \"/proc\", fstype = \"proc\" }},\n  \
         {{ source = \"/bin\", target = \"/bin\" }},\n  {{ source = \"/lib\", target = \"/lib\" }},\n  \
         {{ source = \"/lib64\", target = \"/lib64\" }},\n  {{ source = \"/usr\", target = \"/usr\" }},\n\
         {extra}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Mount point and root (the path inside its filesystem) of each mountinfo line.
fn mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((fields.get(4)?.to_string(), fields.get(3)?.to_string()))
        })
        .collect()
}

/// Runs `hakoniwa run -p POLICY -- /bin/sh -c SCRIPT` as `caller`.
fn run_policy(caller: Caller, policy: &Path, script: &str) -> std::process::Output {
    let policy = policy.to_str().unwrap();
    common::run(
        caller,
        &["run", "-p", policy, "--", "/bin/sh", "-c", script],
    )
}

#[test]
fn a_destination_swapped_with_a_symlink_never_mounts_on_its_target() {
    // /race is bound read-write; in it, `d` is a directory and `x` a symlink to ../victim
    // (the sandbox's own /victim, a tmpfs), exchanged all the time. A bind on /race/d must
    // land on the directory, whatever name it has by the time the command looks, or be
    // refused; never on /victim.
    let dir = TempDir::new("hk-race-dest-");
    let race = dir.path("race");
    let source = dir.path("src");
    for d in [&race, &race.join("d"), &source] {
        std::fs::create_dir(d).unwrap();
        common::set_mode(d, 0o777);
    }
    std::fs::write(source.join("bound"), "").unwrap();
    symlink("../victim", &race.join("x"));
    let policy = policy(
        &dir,
        &format!(
            "  {{ target = \"/victim\", fstype = \"tmpfs\" }},\n  \
             {{ source = {race:?}, target = \"/race\", rw = true }},\n  \
             {{ source = {source:?}, target = \"/race/d\" }},\n]\n"
        ),
    );
    let refusal = format!("bind {source:?} on \"/race/d\": create mount point: ");
    for caller in CALLERS {
        let swapper = Swapper::start(&race.join("d"), &race.join("x"));
        let (mut mounted, mut refused) = (0, 0);
        for run in 0..RACE_RUNS {
            let out = run_policy(caller, &policy, "cat /proc/self/mountinfo; ls -A /victim");
            if out.status.code() == Some(125) {
                let message = one_line_error(&out, 125);
                assert!(message.starts_with(&refusal), "run {run}: {message}");
                refused += 1;
                continue;
            }
            let text = common::ok(&out);
            let all = mounts(&text);
            let on_victim: Vec<_> = all.iter().filter(|(p, _)| p == "/victim").collect();
            assert_eq!(on_victim.len(), 1, "run {run} as {caller:?}: {text}");
            assert!(
                !text.contains("\nbound\n"),
                "/victim shows the bind: {text}"
            );
            let source_mounts: Vec<_> = all
                .iter()
                .filter(|(_, root)| root.ends_with("/src"))
                .collect();
            assert_eq!(source_mounts.len(), 1, "run {run} as {caller:?}: {text}");
            let point = source_mounts[0].0.as_str();
            assert!(
                point == "/race/d" || point == "/race/x",
                "run {run} as {caller:?}: the bind is on {point}"
            );
            mounted += 1;
        }
        drop(swapper);
        // Both outcomes happened: the race was run, not missed.
        assert!(
            mounted > 0 && refused > 0,
            "{mounted} mounted, {refused} refused"
        );
    }
}

#[test]
fn a_bind_source_swapped_with_a_symlink_never_binds_its_target() {
    // `s` is a directory (then a file) and `y` a symlink to another one, `secret`,
    // exchanged all the time. When hakoniwa resolved `s` to itself (the verbose log says
    // which path it will bind), the sandbox shows `s`'s own contents or the bind is
    // refused; never `secret`. (When the option is read while `s` is the symlink, hakoniwa
    // binds the resolved path, as it does for every symlink it is given: that is the
    // caller's choice, not a race.)
    for (kind, show) in [("directory", "/bin/ls"), ("file", "/bin/cat")] {
        let dir = TempDir::new("hk-race-source-");
        for name in ["s", "secret"] {
            let path = dir.path(name);
            if kind == "directory" {
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join(format!("in-{name}")), "").unwrap();
            } else {
                std::fs::write(&path, format!("in-{name}\n")).unwrap();
            }
            common::set_mode(&path, 0o777);
        }
        symlink("secret", &dir.path("y"));
        let source = dir.path("s");
        let bind = format!("{}:/b", source.display());
        let resolved_to_itself = format!("host_path: {source:?}, container_path: \"/b\"");
        let refusal = format!("hakoniwa: bind {source:?} on \"/b\": open source: ");
        for caller in CALLERS {
            let swapper = Swapper::start(&dir.path("s"), &dir.path("y"));
            let (mut checked, mut refused) = (0, 0);
            for run in 0..RACE_RUNS {
                let args = ["run", "-v", "--ro-bind", &bind, "--", show, "/b"];
                let out = common::run(caller, &args);
                let log = common::stderr(&out);
                if !log.contains(&resolved_to_itself) {
                    continue;
                }
                checked += 1;
                let what = format!("{kind} run {run} as {caller:?}");
                match out.status.code() {
                    Some(0) => assert_eq!(common::stdout(&out), "in-s\n", "{what}"),
                    Some(125) => {
                        let message = log.lines().last().unwrap_or_default();
                        assert!(message.starts_with(&refusal), "{what}: {log}");
                        assert_eq!(common::stdout(&out), "", "{what}");
                        refused += 1;
                    }
                    other => panic!("{what}: {other:?}\n{log}"),
                }
            }
            drop(swapper);
            assert!(
                checked > refused && refused > 0,
                "{kind}: {checked} checked, {refused} refused"
            );
        }
    }
}

#[test]
fn policy_entries_are_never_written_through_a_planted_symlink() {
    // A read-write bound directory holds symlinks to the host (absolute: during setup they
    // would resolve in the host's tree) and into the sandbox (relative). Every file, dir,
    // symlink and mount point the policy asks for through them is refused, and nothing
    // appears where they point.
    let dir = TempDir::new("hk-planted-");
    let (planted, victim) = (dir.path("planted"), dir.path("victim"));
    for d in [&planted, &victim] {
        std::fs::create_dir(d).unwrap();
        common::set_mode(d, 0o777);
    }
    std::fs::write(dir.path("victim-file"), "unchanged\n").unwrap();
    common::set_mode(&dir.path("victim-file"), 0o666);
    symlink(
        dir.path("victim-file").to_str().unwrap(),
        &planted.join("f"),
    );
    symlink(victim.to_str().unwrap(), &planted.join("d"));
    symlink("../inside", &planted.join("rel"));
    let bound = format!("  {{ source = {planted:?}, target = \"/p\", rw = true }},\n");
    let cases = [
        (
            "files = [{ target = \"/p/f\", contents = \"written\" }]",
            "write 7 bytes to \"/p/f\": Symbolic link loop",
        ),
        (
            "files = [{ target = \"/p/d/new\", contents = \"written\" }]",
            "write 7 bytes to \"/p/d/new\": Not a directory",
        ),
        (
            "files = [{ target = \"/p/rel/new\", contents = \"written\" }]",
            "write 7 bytes to \"/p/rel/new\": Not a directory",
        ),
        (
            "dirs = [{ target = \"/p/d/new\" }]",
            "create directory \"/p/d/new\" (mode 755): Not a directory",
        ),
        (
            "dirs = [{ target = \"/p/d\" }]",
            "create directory \"/p/d\" (mode 755): Not a directory",
        ),
        (
            "symlinks = [{ original = \"x\", link = \"/p/d/new\" }]",
            "create symlink \"/p/d/new\" -> \"x\": Not a directory",
        ),
        (
            "symlinks = [{ original = \"x\", link = \"/p/f\" }]",
            "create symlink \"/p/f\" -> \"x\": File exists",
        ),
        (
            "mounts = [{ target = \"/p/d\", fstype = \"tmpfs\" }]",
            "mount tmpfs on \"/p/d\": create mount point: Not a directory",
        ),
        (
            "mounts = [{ source = \"/etc/hostname\", target = \"/p/f\" }]",
            "bind \"/etc/hostname\" on \"/p/f\": create mount point: Symbolic link loop",
        ),
        (
            "mounts = [{ source = \"/etc\", target = \"/p/rel/etc\" }]",
            "bind \"/etc\" on \"/p/rel/etc\": create mount point: Not a directory",
        ),
    ];
    for caller in CALLERS {
        for (entry, message) in cases {
            // The extra mounts go after the bind of /p, in the policy's one `mounts` array.
            let (mounts, rest) = match entry.strip_prefix("mounts = [") {
                Some(m) => (format!("  {}\n", m.trim_end_matches(']')), String::new()),
                None => (String::new(), format!("{entry}\n")),
            };
            let inside = format!(
                "  {{ target = \"/inside\", fstype = \"tmpfs\" }},\n{bound}{mounts}]\n{rest}"
            );
            let policy = policy(&dir, &inside);
            let out = run_policy(caller, &policy, "echo ran");
            assert_eq!(one_line_error(&out, 125), message, "{entry} as {caller:?}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path("victim-file")).unwrap(),
            "unchanged\n"
        );
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    }
}
