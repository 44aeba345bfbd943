//! The seed's library example, `examples/shell.rs`, compiled and run as it is written and
//! with its commented builder calls uncommented, as root and as uid 65534: it runs `$SHELL`
//! with inherited stdio, here fed a few commands through a pipe, and `dbg!`s the result.
//!
//! Both forms are compiled here with rustc against the library cargo built for this test
//! (cargo builds examples only as written, and only for some test invocations).

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{CALLERS, Caller, TempDir};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shell.rs");

/// The builder calls the example has commented out, uncommented.
fn with_options(source: &str) -> String {
    let mut uncommented = 0;
    let lines: Vec<String> = source
        .lines()
        .map(|line| match line.trim_start().strip_prefix("// .") {
            Some(call) => {
                uncommented += 1;
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}.{call}")
            }
            None => line.to_string(),
        })
        .collect();
    assert_eq!(uncommented, 4, "the example's commented builder calls");
    lines.join("\n") + "\n"
}

/// The library rlib cargo built for this test, next to the test binary.
fn library() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the deps directory").to_path_buf();
    let newest = std::fs::read_dir(&deps)
        .expect("read the deps directory")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libhakoniwa-") && name.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("libhakoniwa-*.rlib next to the test binary");
    (deps, newest.path())
}

/// The rustc of the toolchain that built this test: the one beside its cargo.
fn rustc() -> PathBuf {
    if let Some(rustc) = std::env::var_os("RUSTC") {
        return rustc.into();
    }
    let beside_cargo = Path::new(env!("CARGO")).with_file_name("rustc");
    if beside_cargo.exists() {
        beside_cargo
    } else {
        PathBuf::from("rustc")
    }
}

/// Compiles `source` into `dir/name` for the target this test runs on.
fn compile(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let src = dir.path(&format!("{name}.rs"));
    std::fs::write(&src, source).expect("write the example's source");
    let out = dir.path(name);
    let (deps, rlib) = library();
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    let target = format!("{}-unknown-linux-{env}", std::env::consts::ARCH);
    let rustc = rustc();
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--target",
            &target,
        ])
        .args(["-C", "debuginfo=0", "-L"])
        .arg(format!("dependency={}", deps.display()))
        .arg("--extern")
        .arg(format!("hakoniwa={}", rlib.display()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run rustc");
    assert!(status.success(), "rustc failed on {name}");
    common::set_mode(&out, 0o755);
    out
}

/// The example built in a directory of its own (removed when the test ends), as written
/// or with its builder calls.
fn build(calls: bool) -> (TempDir, PathBuf) {
    let source = std::fs::read_to_string(EXAMPLE).expect("read examples/shell.rs");
    let dir = TempDir::new("example");
    let binary = match calls {
        false => compile(&dir, "shell", &source),
        true => compile(&dir, "shell-with-options", &with_options(&source)),
    };
    (dir, binary)
}

/// Runs `command` with `script` on its stdin.
fn feed(mut command: Command, script: &str) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn the example");
    let mut stdin = child.stdin.take().expect("stdin");
    // An example that stops early (on an error) may not read it.
    if let Err(e) = stdin.write_all(script.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write the script: {e}"
        );
    }
    drop(stdin);
    child.wait_with_output().expect("wait for the example")
}

/// The example binary started by `caller` with a known environment.
fn example(caller: Caller, binary: &Path) -> Command {
    let mut command = match caller {
        Caller::Root => Command::new(binary),
        Caller::Nobody => {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            command.arg(binary);
            command
        }
    };
    command
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .env("LANG", "C.UTF-8");
    command
}

/// Asserts the example ended well and `dbg!`ged a result with this exit code.
fn assert_debugged(out: &Output, exit_code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("] result = ExecutorResult {"), "{stderr}");
    assert!(stderr.contains("    status: Ok,\n"), "{stderr}");
    let code = format!("    exit_code: Some(\n        {exit_code},\n    ),\n");
    assert!(stderr.contains(&code), "{stderr}");
}

#[test]
fn as_written_runs_the_shell_in_the_policy_it_reads() {
    let (_dir, as_written) = build(false);
    let mut listing: Vec<&str> = ["bin", "lib", "lib64", "usr"]
        .into_iter()
        .filter(|name| Path::new("/").join(name).exists())
        .collect();
    listing.push("dev");
    listing.sort();
    for caller in CALLERS {
        let script = "echo hello $LANG\nls /\nls /dev\nid -u\nexit 3\n";
        let out = feed(example(caller, &as_written), script);
        assert_debugged(&out, 3);
        let expected = format!(
            "hello C.UTF-8\n{}\nnull\nrandom\nurandom\nzero\n{}\n",
            listing.join("\n"),
            caller.uid()
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "as {caller:?}"
        );
    }
}

#[test]
fn with_its_builder_calls_a_missing_data_dir_is_an_error_that_names_it() {
    if Path::new("/data").exists() {
        return; // This host has one; the next test covers the run.
    }
    let (_dir, with_calls) = build(true);
    let out = feed(example(Caller::Root, &with_calls), "echo ran\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // main's Err: Rust prints it with Debug and exits 1. No panic, nothing run.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(r#"Error: Path { what: "bind source", path: "/data", "#),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn with_its_builder_calls_it_binds_and_limits() {
    let (_dir, with_calls) = build(true);
    let data = TempDir::new("data");
    std::fs::write(data.path("in"), "from the host\n").unwrap();
    for caller in CALLERS {
        // The host has no /data (and should not get one): the example runs inside a
        // sandbox of the CLI that has a /data and the /etc the example binds. That sandbox
        // has no seccomp filter: the default one forbids making namespaces (and clone3). As
        // root inside, the example maps uid 0 into its own user namespace, which the kernel
        // allows only a creator holding CAP_SETFCAP.
        let mut command = common::hakoniwa(caller);
        command.args(["run", "--seccomp", "unconfined"]);
        if caller == Caller::Root {
            command.args(["--cap-add", "CAP_SETFCAP"]);
        }
        command
            .arg("--ro-bind")
            .arg(format!("{}:/example", with_calls.display()))
            .args(["--ro-bind", "/etc", "--rw-bind"])
            .arg(format!("{}:/data", data.arg()))
            .args(["--setenv", "SHELL=/bin/sh", "--", "/example"]);
        let script = "cat /data/in\nls -d /myetc/passwd\nulimit -t\necho written > /data/out\n";
        let out = feed(command, script);
        assert_debugged(&out, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "from the host\n/myetc/passwd\n2\n",
            "as {caller:?}"
        );
        assert_eq!(
            std::fs::read_to_string(data.path("out")).unwrap(),
            "written\n"
        );
        std::fs::remove_file(data.path("out")).unwrap();
    }
}
