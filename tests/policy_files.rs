//! Policy files: the schema end to end, every error kind with its position, templates,
//! embedded policies, and command-line options over a policy.

mod common;

use std::path::PathBuf;

use common::{CALLERS, Caller, ok, stderr, stdout};

/// Writes `text` to a fresh world-readable policy file and returns its path.
fn policy_file(text: &str) -> PathBuf {
    let dir = PathBuf::from("/var/tmp").join(common::unique_marker("hk-policy-"));
    std::fs::create_dir(&dir).unwrap();
    common::set_mode(&dir, 0o755);
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_policy(caller: Caller, text: &str, args: &[&str]) -> std::process::Output {
    let path = policy_file(text);
    let mut full = vec!["run", "-p", path.to_str().unwrap()];
    full.extend_from_slice(args);
    let out = common::run(caller, &full);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    out
}

/// The KISS policy's mounts, for policies that need a working /bin/sh.
const BASE_MOUNTS: &str = r#"
  { target = "/proc", fstype = "proc" },
  { source = "/bin", target = "/bin" },
  { source = "/lib", target = "/lib" },
  { source = "/lib64", target = "/lib64" },
  { source = "/usr", target = "/usr" },
"#;

#[test]
fn every_schema_key_takes_effect_in_a_real_sandbox() {
    let work = PathBuf::from("/var/tmp").join(common::unique_marker("hk-every-"));
    std::fs::create_dir(&work).unwrap();
    common::set_mode(&work, 0o777);
    std::fs::write(work.join("input"), "from host\n").unwrap();
    common::set_mode(&work.join("input"), 0o644);
    let text = format!(
        r#"
share_net = true
share_uts = false
share_ipc = true
uid = 0
gid = 0
hostname = "every-key"
cwd = "/job"
mounts = [{BASE_MOUNTS}
  {{ source = "{work}", target = "/job", rw = true }},
  {{ source = "{work}", target = "/job-ro" }},
  {{ target = "/dev", fstype = "devfs" }},
  {{ target = "/scratch", fstype = "tmpfs" }},
]
dirs = [{{ target = "/scratch/made", mode = 0o700 }}]
files = [{{ target = "/scratch/made/greeting", contents = "hello\n" }}]
symlinks = [{{ original = "/scratch/made/greeting", link = "/greeting" }}]

[env]
PATH = "/usr/bin:/bin"
MARKER = "a \"quoted\" value"

[limits]
nofile = 64
"#,
        work = work.display()
    );
    let script = "pwd; id -u; id -g; hostname; echo \"$MARKER\"; cat /greeting; \
         stat -c %a /scratch/made; stat -f -c %T /scratch; echo out > /job/output; \
         touch /job-ro/x 2>/dev/null || echo ro; test -c /dev/null && echo devfs; \
         readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts; ulimit -n";
    for caller in CALLERS {
        let out = run_policy(caller, &text, &["--", "/bin/sh", "-c", script]);
        let lines: Vec<String> = ok(&out).lines().map(str::to_string).collect();
        assert_eq!(
            lines[..11],
            [
                "/job",
                "0",
                "0",
                "every-key",
                "a \"quoted\" value",
                "hello",
                "700",
                "tmpfs",
                "ro",
                "devfs",
                &common::host_namespace("net"),
            ],
            "as {caller:?}"
        );
        assert_eq!(
            lines[11],
            common::host_namespace("ipc"),
            "share_ipc as {caller:?}"
        );
        assert_ne!(
            lines[12],
            common::host_namespace("uts"),
            "share_uts = false as {caller:?}"
        );
        assert_eq!(lines[13], "64", "[limits] nofile as {caller:?}");
        let written = std::fs::read_to_string(work.join("output")).unwrap();
        assert_eq!(written, "out\n");
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// Each error kind: the message and the position it names.
#[test]
fn errors_name_file_line_column_and_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        (
            "hostname = 5\n",
            "1:12: expected a string for \"hostname\", found an integer",
        ),
        (
            "share_net = \"yes\"\n",
            "1:13: expected a boolean for \"share_net\", found a string",
        ),
        (
            "hostname = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
            "1:12: hostname \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" is not valid (at most 64 bytes, no NUL)",
        ),
        (
            "cwd = \"/\"\nhostname = 1\n",
            "2:12: expected a string for \"hostname\", found an integer",
        ),
        (
            "\n\nhostnme = \"x\"\n",
            "3:1: unknown key \"hostnme\" (did you mean \"hostname\"?)",
        ),
        (
            "mounts = [{ source = \"/etc\", tagret = \"/x\" }]\n",
            "1:30: unknown key \"tagret\" in a mount (did you mean \"target\"?)",
        ),
        (
            "mounts = [{ source = \"/etc\", target = \"x\" }]\n",
            "1:39: \"target\" is not an absolute path",
        ),
        (
            "mounts = [{ source = \"/etc\", target = \"/a/../b\" }]\n",
            "1:39: \"target\" must not contain \"..\"",
        ),
        (
            "mounts = [{ target = \"/x\", fstype = \"nfs\" }]\n",
            "1:37: unknown fstype \"nfs\" (expected \"\" for a bind, \"proc\", \"tmpfs\" or \"devfs\")",
        ),
        (
            "mounts = [{ target = \"/x\" }]\n",
            "1:11: a bind mount needs \"source\" (or an fstype: \"proc\", \"tmpfs\", \"devfs\")",
        ),
        (
            "mounts = [{ target = \"/p\", fstype = \"proc\", rw = true }]\n",
            "1:45: \"rw\" applies to bind mounts only",
        ),
        (
            "mounts = \"/etc\"\n",
            "1:10: expected an array of tables for \"mounts\", found a string",
        ),
        (
            "files = [{ target = \"/a\" }]\n",
            "1:10: a file needs \"contents\"",
        ),
        (
            "dirs = [{ target = \"/a\", mode = 0o10000 }]\n",
            "1:33: \"mode\" must be between 0 and 4095",
        ),
        (
            "uid = -1\n",
            "1:7: \"uid\" must be between 0 and 4294967294",
        ),
        (
            "uid = 4294967295\n",
            "1:7: \"uid\" must be between 0 and 4294967294",
        ),
        (
            "[env]\nA = 1\n",
            "2:5: expected a string for \"A\", found an integer",
        ),
        (
            "[limits]\nnofiles = 1\n",
            "2:1: unknown key \"nofiles\" in [limits] (did you mean \"nofile\"?)",
        ),
        (
            "[limits]\ncpu = -1\n",
            "2:7: \"cpu\" must be between 0 and 9223372036854775807",
        ),
        (
            "[seccomp]\nsyscalls = [\"read\", \"nope\"]\n",
            "2:21: unknown system call \"nope\"",
        ),
        ("uid = 1.5\n", "1:7: floats are not supported in policies"),
        (
            "uid = 1979-05-27\n",
            "1:7: dates and times are not supported in policies",
        ),
        (
            "uid = 99999999999999999999\n",
            "1:7: integers beyond 64 bits are not supported in policies",
        ),
        (
            "hostname = \"box\n",
            "1:16: control character 0x0a in a string",
        ),
        (
            "hostname = \"a\" \"b\"\n",
            "1:16: expected the end of the line after a statement",
        ),
        ("a = 1\na = 2\n", "2:1: key a is defined more than once"),
        (
            "[env]\n[env]\n",
            "2:1: table [env] is defined more than once",
        ),
        (
            "hostname = {{ nope \"x\" }}\n",
            "1:12: unknown template function \"nope\" (expected os_env, os_homedir or fs_read_to_string)",
        ),
        (
            "hostname = {{ os_env }}\n",
            "1:12: {{ os_env }}: expected one argument in double quotes",
        ),
        ("hostname = {{ os_env \"X\"\n", "1:12: unclosed '{{'"),
        (
            "{{ fs_read_to_string \"/no/such/file\" }}\n",
            "1:1: {{ fs_read_to_string }}: file \"/no/such/file\": No such file or directory",
        ),
    ];
    for (text, want) in cases {
        let path = policy_file(text);
        let path_s = path.to_str().unwrap();
        let out = common::run(
            Caller::Root,
            &["run", "-p", path_s, "--", "/bin/echo", "ran"],
        );
        assert_eq!(out.status.code(), Some(125), "{text:?}");
        assert_eq!(
            stderr(&out),
            format!("hakoniwa: {path_s}:{want}\n"),
            "{text:?}"
        );
        assert_eq!(stdout(&out), "", "{text:?}: nothing may run");
        let check = common::run(Caller::Root, &["policy", "check", path_s]);
        assert_eq!(check.status.code(), Some(125), "policy check {text:?}");
        assert_eq!(stderr(&check), stderr(&out));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

#[test]
fn errors_in_included_text_point_at_the_template_call() {
    let include = policy_file("a = 1\nb = [\n");
    let text = format!(
        "hostname = \"x\"\n  {{{{ fs_read_to_string \"{}\" }}}}\n",
        include.display()
    );
    let path = policy_file(&text);
    let out = common::run(Caller::Root, &["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).starts_with(&format!("hakoniwa: {}:2:3: ", path.display())),
        "{}",
        stderr(&out)
    );
    for p in [include, path] {
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}

#[test]
fn file_level_errors() {
    let out = common::run(
        Caller::Root,
        &["run", "-p", "/no/such/policy.toml", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        "hakoniwa: policy file \"/no/such/policy.toml\": No such file or directory\n"
    );

    let path = policy_file("");
    std::fs::write(&path, b"hostname = \"ok\"\nuid = \xff\n").unwrap();
    let p = path.to_str().unwrap();
    let out = common::run(Caller::Root, &["policy", "check", p]);
    assert_eq!(stderr(&out), format!("hakoniwa: {p}:2:7: invalid UTF-8\n"));

    std::fs::write(&path, vec![b'#'; (1 << 20) + 1]).unwrap();
    let out = common::run(Caller::Root, &["policy", "check", p]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        format!("hakoniwa: policy file {p:?} is larger than 1048576 bytes\n")
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();

    let out = common::run(Caller::Root, &["run", "--policy", "nope", "--", "true"]);
    assert_eq!(
        stderr(&out),
        "hakoniwa: --policy: no embedded policy named \"nope\" (there are KISS, net, dev)\n"
    );
    let out = common::run(
        Caller::Root,
        &["run", "--policy", "net", "--policy", "dev", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("exclude each other"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn host_variables_cannot_inject_toml() {
    let text = format!(
        "mounts = [{BASE_MOUNTS}]\n[env]\nV = {{{{ os_env \"HK_EVIL\" }}}}\nH = {{{{ os_homedir \"/sub\" }}}}\n"
    );
    let evil = "x\"\nshare_net = true\n[limits]\ncpu = 1\n#\\";
    for caller in CALLERS {
        let path = policy_file(&text);
        let out = common::hakoniwa(caller)
            .env("HK_EVIL", evil)
            .env("HOME", "/home/\"me\"")
            .args(["run", "-p", path.to_str().unwrap(), "--", "/bin/sh", "-c"])
            .arg("printf '%s|' \"$V\" \"$H\"; readlink /proc/self/ns/net")
            .output()
            .unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        let want = format!("{evil}|/home/\"me\"/sub|");
        let got = ok(&out);
        assert!(got.starts_with(&want), "as {caller:?}: {got:?}");
        assert_ne!(
            got[want.len()..].trim(),
            common::host_namespace("net"),
            "the injected share_net took effect"
        );
    }
}

#[test]
fn command_line_options_override_the_policy() {
    let text = format!(
        "hostname = \"from-policy\"\nmounts = [{BASE_MOUNTS}]\n[env]\nA = \"policy\"\nB = \"policy\"\n"
    );
    for caller in CALLERS {
        let out = run_policy(
            caller,
            &text,
            &[
                "--hostname",
                "from-cli",
                "--setenv",
                "B=cli",
                "--setenv",
                "C=cli",
                "--ro-bind",
                "/etc/passwd:/etc/passwd",
                "--",
                "/bin/sh",
                "-c",
                "hostname; echo $A $B $C; head -c 5 /etc/passwd",
            ],
        );
        assert_eq!(ok(&out), "from-cli\npolicy cli cli\nroot:", "as {caller:?}");
    }
}

#[test]
fn embedded_policies_are_listed_shown_and_usable() {
    let list = ok(&common::run(Caller::Root, &["policy", "list"]));
    assert_eq!(
        list,
        "KISS   KISS-policy.toml\nnet    net-policy.toml\ndev    dev-policy.toml\n"
    );
    let kiss = ok(&common::run(Caller::Root, &["policy", "show"]));
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/KISS-policy.toml"
    ))
    .unwrap();
    assert_eq!(kiss, shipped);
    assert_eq!(
        ok(&common::run(Caller::Root, &["policy", "show", "kiss"])),
        shipped
    );

    // `show FILE` prints the rendered text of a file that checks out.
    let path = policy_file("[env]\nT = {{ os_env \"HK_SHOW\" }}\n");
    let out = common::hakoniwa(Caller::Root)
        .env("HK_SHOW", "shown")
        .args(["policy", "show", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "[env]\nT = \"shown\"\n");
    let check = ok(&common::run(
        Caller::Root,
        &["policy", "check", path.to_str().unwrap()],
    ));
    assert_eq!(check, format!("{}: OK\n", path.display()));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();

    for caller in CALLERS {
        let net = ok(&common::run(
            caller,
            &[
                "run",
                "--policy",
                "net",
                "--",
                "readlink",
                "/proc/self/ns/net",
            ],
        ));
        assert_eq!(net.trim(), common::host_namespace("net"), "as {caller:?}");
        let dev = common::run(
            caller,
            &[
                "run",
                "--policy",
                "dev",
                "--",
                "/bin/sh",
                "-c",
                "touch /tmp/x && test -c /dev/pts/ptmx && echo $HOME",
            ],
        );
        assert_eq!(ok(&dev), "/home/sandbox\n", "as {caller:?}");
    }
}

#[test]
fn library_reads_the_same_policies() {
    let policy = hakoniwa::SandboxPolicy::from_str("hostname = 5").unwrap_err();
    assert_eq!(
        policy.to_string(),
        "policy:1:12: expected a string for \"hostname\", found an integer"
    );
    let parsed: hakoniwa::SandboxPolicy = "hostname = \"box\"".parse().unwrap();
    assert_eq!(
        parsed,
        hakoniwa::SandboxPolicy::from_str("hostname = 'box'").unwrap()
    );
    assert_eq!(
        hakoniwa::SandboxPolicy::kiss(),
        hakoniwa::SandboxPolicy::embedded("KISS").unwrap()
    );
}
