//! Resource limits, the walltime, and the result report (`--report-file`): each limit stops
//! the command with the right status, exit code and reason, as root and as uid 65534.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{CALLERS, Caller, TempDir, ok, run, sh, stderr, stdout};

/// `hakoniwa run --report-file DIR/report.json OPTIONS -- /bin/sh -c SCRIPT`, and the report.
fn sh_with_report(
    caller: Caller,
    dir: &TempDir,
    options: &[&str],
    script: &str,
) -> (Output, Report) {
    let report = dir.path("report.json");
    let report_arg = report.to_str().expect("UTF-8 path");
    let mut all = vec!["--report-file", report_arg];
    all.extend_from_slice(options);
    let out = sh(caller, &all, script);
    (out, Report::read(&report))
}

/// The fields of a report file, as Python's json module reads them.
struct Report {
    fields: HashMap<String, String>,
    text: String,
}

/// Checks the report's structure and prints its fields one per line, `key=value`.
const CHECK_REPORT: &str = r#"
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
keys = ["status", "reason", "exit_code", "start_time", "real_time", "system_time",
        "user_time", "max_rss"]
assert list(d) == keys, list(d)
assert d["status"] in ("OK", "SE", "SIG", "RFE", "TLE", "OLE", "MLE"), d["status"]
assert isinstance(d["reason"], str)
assert d["exit_code"] is None or type(d["exit_code"]) is int
for k in ("real_time", "system_time", "user_time"):
    assert list(d[k]) == ["secs", "nanos"], d[k]
    assert type(d[k]["secs"]) is int and d[k]["secs"] >= 0
    assert type(d[k]["nanos"]) is int and 0 <= d[k]["nanos"] < 10**9
assert type(d["max_rss"]) is int and d["max_rss"] >= 0
for k in keys:
    v = d[k]
    if isinstance(v, dict):
        v = v["secs"] + v["nanos"] / 1e9
    print(f"{k}={'null' if v is None else v}")
"#;

impl Report {
    fn read(path: &Path) -> Report {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read the report {}: {e}", path.display()));
        let python = |args: &[&str]| {
            let out = Command::new("python3")
                .args(args)
                .arg(path)
                .output()
                .expect("run python3");
            assert!(
                out.status.success(),
                "python3 {args:?} refused {text:?}: {}",
                stderr(&out)
            );
            stdout(&out)
        };
        // The file round-trips through Python's JSON tool, and has exactly the seed's
        // fields, of the right types.
        python(&["-m", "json.tool"]);
        let check = python(&["-c", CHECK_REPORT]);
        let fields = check
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Report { fields, text }
    }

    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {}", self.text))
    }

    fn number(&self, key: &str) -> f64 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {}", self.text))
    }

    /// Asserts status, reason and exit code.
    fn assert_verdict(&self, status: &str, reason: &str, exit_code: &str, context: &str) {
        assert_eq!(
            (
                self.get("status"),
                self.get("reason"),
                self.get("exit_code")
            ),
            (status, reason, exit_code),
            "{context}: {}",
            self.text
        );
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// The soft and hard values on the line of `/proc/PID/limits` text that starts with `name`.
fn rlimit_in(limits: &str, name: &str) -> [String; 2] {
    let words: Vec<String> = limits
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    [words[0].clone(), words[1].clone()]
}

#[test]
fn walltime_kills_with_tle_in_about_a_second() {
    for caller in CALLERS {
        let dir = TempDir::new("wall");
        let start = Instant::now();
        let (out, report) = sh_with_report(caller, &dir, &["--limit-walltime", "1"], "sleep 5");
        let elapsed = start.elapsed();
        assert_eq!(code(&out), Some(137), "as {caller:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "as {caller:?}");
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&elapsed),
            "walltime 1 took {elapsed:?} as {caller:?}"
        );
        report.assert_verdict("TLE", "walltime 1s exceeded", "137", &format!("{caller:?}"));
        let real = report.number("real_time");
        assert!((1.0..2.5).contains(&real), "real_time {real}");
    }
}

#[test]
fn walltime_kills_every_process_of_the_sandbox() {
    for caller in CALLERS {
        // One sleep in the background of the command, one orphaned to the sandbox's init.
        let child = format!("1000.{}", common::unique_marker(""));
        let orphan = format!("1000.{}", common::unique_marker(""));
        let script = format!("sleep {child} & sh -c 'sleep {orphan} &'; sleep 5");
        let mut hakoniwa = common::hakoniwa(caller)
            .args([
                "run",
                "--limit-walltime",
                "1",
                "--",
                "/bin/sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn hakoniwa");
        let sleeps = || {
            common::processes_with_argv(&["sleep", &child]).len()
                + common::processes_with_argv(&["sleep", &orphan]).len()
        };
        assert!(
            common::eventually(Duration::from_secs(5), || sleeps() == 2),
            "the sandboxed sleeps should be running as {caller:?}"
        );
        let status = hakoniwa.wait().expect("wait for hakoniwa");
        assert_eq!(status.code(), Some(137), "as {caller:?}");
        // hakoniwa returns only once init is reaped, and init goes only once the kernel has
        // killed everything else in its pid namespace: nothing is left, not even briefly.
        assert_eq!(sleeps(), 0, "sandbox processes outlived the walltime");
    }
}

/// Seconds in a `times` figure such as `0m0.52s`.
fn times_seconds(figure: &str) -> f64 {
    let (minutes, seconds) = figure
        .strip_suffix('s')
        .and_then(|f| f.split_once('m'))
        .unwrap_or_else(|| panic!("not a `times` figure: {figure:?}"));
    let minutes: f64 = minutes.parse().expect("minutes");
    minutes * 60.0 + seconds.parse::<f64>().expect("seconds")
}

#[test]
fn times_count_processes_killed_at_the_walltime_and_those_left_behind() {
    // A background shell burns cpu, prints its own times, then waits to be killed. The
    // kernel reaps what dies with init without counting it, so the report must hold these
    // only because init killed and reaped them first.
    let burn = "i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done; times";
    for (options, script, verdict) in [
        (
            &["--limit-walltime", "4"][..],
            format!("({burn}; sleep 100) & wait"),
            ("TLE", "walltime 4s exceeded", "137"),
        ),
        // The command ends while the burner sleeps in the background.
        (
            &["--tmpfs", "/tmp"][..],
            format!(
                "mkfifo /tmp/burnt; ({burn}; echo >/tmp/burnt; sleep 100) & \
                 read -r _ </tmp/burnt; exit 3"
            ),
            ("OK", "", "3"),
        ),
    ] {
        for caller in CALLERS {
            let dir = TempDir::new("times");
            let (out, report) = sh_with_report(caller, &dir, options, &script);
            let context = format!("{script:?} as {caller:?}: {}", stderr(&out));
            report.assert_verdict(verdict.0, verdict.1, verdict.2, &context);
            // The first line of `times` is the shell's own user and system time.
            let text = stdout(&out);
            let own: Vec<f64> = text
                .lines()
                .next()
                .unwrap_or_else(|| panic!("no `times` output: {context}"))
                .split_whitespace()
                .map(times_seconds)
                .collect();
            let burned: f64 = own.iter().sum();
            let reported = report.number("user_time") + report.number("system_time");
            assert!(
                burned > 0.05,
                "too little work to tell: {text:?}, {context}"
            );
            // `times` counts clock ticks: allow one tick on each of its figures.
            assert!(
                reported + 0.02 >= burned,
                "the report has {reported} s of cpu, the burner alone used {burned} s: {}, {context}",
                report.text
            );
        }
    }
}

#[test]
fn cpu_limit_gives_tle_by_sigxcpu_or_by_the_kernels_sigkill() {
    for caller in CALLERS {
        let dir = TempDir::new("cpu");
        let busy = "while :; do :; done";
        let (out, report) = sh_with_report(caller, &dir, &["--limit-cpu", "1"], busy);
        assert_eq!(
            code(&out),
            Some(128 + 24),
            "as {caller:?}: {}",
            stderr(&out)
        );
        report.assert_verdict("TLE", "cpu 1s exceeded", "152", &format!("{caller:?}"));
        // The kernel's check uses tick-sampled time, which on a busy machine runs ahead of
        // the precise time rusage gives (0.89 s seen with both cores busy).
        let cpu = report.number("user_time") + report.number("system_time");
        assert!(cpu > 0.75, "cpu time {cpu}");

        // A command that ignores SIGXCPU is killed at the hard limit, a second later.
        let ignoring = format!("trap '' XCPU; {busy}");
        let (out, report) = sh_with_report(caller, &dir, &["--limit-cpu", "1"], &ignoring);
        assert_eq!(code(&out), Some(128 + 9), "as {caller:?}: {}", stderr(&out));
        report.assert_verdict("TLE", "cpu 1s exceeded", "137", &format!("{caller:?}"));
        let cpu = report.number("user_time") + report.number("system_time");
        assert!(cpu > 1.6, "cpu time {cpu}");
    }
}

#[test]
fn a_sigkill_hakoniwa_did_not_send_is_sig() {
    for caller in CALLERS {
        let dir = TempDir::new("kill");
        let limits = ["--limit-cpu", "5", "--limit-walltime", "30"];
        let (out, report) = sh_with_report(caller, &dir, &limits, "kill -KILL $$");
        assert_eq!(code(&out), Some(137), "as {caller:?}");
        report.assert_verdict("SIG", "signaled: SIGKILL", "137", &format!("{caller:?}"));
    }
}

#[test]
fn fsize_limit_gives_ole_and_truncates_the_file() {
    for caller in CALLERS {
        let dir = TempDir::new("fsize");
        let file = dir.path("out");
        let script = format!("exec head -c 100 /dev/zero > {}", file.display());
        let options = ["--rw-bind", dir.arg(), "--limit-fsize", "2"];
        let (out, report) = sh_with_report(caller, &dir, &options, &script);
        assert_eq!(
            code(&out),
            Some(128 + 25),
            "as {caller:?}: {}",
            stderr(&out)
        );
        report.assert_verdict(
            "OLE",
            "fsize 2 bytes exceeded",
            "153",
            &format!("{caller:?}"),
        );
        let size = std::fs::metadata(&file).expect("the output file").len();
        assert!(size <= 2, "{size} bytes written under --limit-fsize 2");
    }
}

#[test]
fn nofile_limit_refuses_descriptors_from_the_limit_on() {
    for caller in CALLERS {
        let bash = |options: &[&str], script: &str| {
            let mut args = vec!["run"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["--", "/bin/bash", "-c", script]);
            run(caller, &args)
        };
        let open = "exec 4</dev/null && echo fd4 && exec 6</dev/null && echo fd6";
        assert_eq!(ok(&bash(&[], open)), "fd4\nfd6\n", "as {caller:?}");
        let out = bash(&["--limit-nofile", "5"], open);
        assert_eq!(code(&out), Some(1), "as {caller:?}");
        assert_eq!(stdout(&out), "fd4\n", "as {caller:?}");
        assert!(
            stderr(&out).contains("6: Bad file descriptor"),
            "{}",
            stderr(&out)
        );
    }
}

/// RLIMIT_NPROC counts the processes of the sandbox's user in the sandbox's user namespace,
/// hakoniwa's init included. The kernel does not enforce it at all for a process whose host
/// uid is root (it is the "init user"), so for a root caller it is set but has no effect.
#[test]
fn nproc_limit_stops_forks_of_an_unprivileged_caller() {
    // The shell reads its own limits without forking, then forks /bin/true.
    let fork = "while read -r l; do case $l in 'Max processes'*) echo \"$l\";; esac; \
                done < /proc/self/limits; /bin/true && echo forked";
    for caller in CALLERS {
        // Init, the command and the new child: three processes of the user.
        let out = sh(caller, &["--limit-nproc", "2"], fork);
        let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(
            rlimit_in(lines[0], "Max processes"),
            ["2", "2"],
            "as {caller:?}"
        );
        match caller {
            Caller::Nobody => {
                assert_eq!(lines.len(), 1, "{lines:?}");
                assert_eq!(code(&out), Some(2));
                assert!(stderr(&out).contains("Cannot fork"), "{}", stderr(&out));
                let out = sh(caller, &["--limit-nproc", "3"], fork);
                assert!(ok(&out).ends_with("forked\n"));
            }
            Caller::Root => {
                assert_eq!(ok(&out).lines().last(), Some("forked"));
                let out = sh(caller, &["--limit-nproc", "1"], fork);
                assert!(ok(&out).ends_with("forked\n"));
            }
        }
        // A fork loop is stopped (for the unprivileged caller) rather than filling the host.
        if caller == Caller::Nobody {
            let bomb = "n=0; while [ $n -lt 50 ]; do sleep 5 & n=$((n+1)); done; echo done";
            let out = sh(
                caller,
                &["--limit-nproc", "10", "--limit-walltime", "10"],
                bomb,
            );
            assert!(stderr(&out).contains("Cannot fork"), "{}", stderr(&out));
        }
    }
}

#[test]
fn every_rlimit_reaches_the_command() {
    let options = [
        "--limit-as",
        "1G",
        "--limit-core",
        "0",
        "--limit-cpu",
        "7",
        "--limit-fsize",
        "1M",
        "--limit-nofile",
        "64",
        "--limit-nproc",
        "100",
        "--limit-stack",
        "8M",
    ];
    let want = [
        ("Max cpu time", "7", "8"),
        ("Max file size", "1048576", "1048576"),
        ("Max stack size", "8388608", "8388608"),
        ("Max core file size", "0", "0"),
        ("Max processes", "100", "100"),
        ("Max open files", "64", "64"),
        ("Max address space", "1073741824", "1073741824"),
    ];
    for caller in CALLERS {
        let out = ok(&run(
            caller,
            &[&["run"], &options[..], &["--", "cat", "/proc/self/limits"]].concat(),
        ));
        for (name, soft, hard) in want {
            assert_eq!(rlimit_in(&out, name), [soft, hard], "{name} as {caller:?}");
        }
    }
}

#[test]
fn a_limit_above_the_callers_hard_limit_is_a_setup_error() {
    for caller in CALLERS {
        let dir = TempDir::new("eperm");
        let options = ["--limit-nofile", "100000000"];
        let (out, report) = sh_with_report(caller, &dir, &options, "echo ran");
        assert_eq!(code(&out), Some(125), "as {caller:?}");
        assert_eq!(stdout(&out), "");
        let reason = "setrlimit nofile 100000000: Operation not permitted";
        assert_eq!(stderr(&out), format!("hakoniwa: {reason}\n"));
        report.assert_verdict("SE", reason, "null", &format!("{caller:?}"));
    }
}

#[test]
fn bad_limit_values_give_125_and_name_the_option() {
    let size = "is not a size (bytes, or a number with K, M or G)";
    let seconds = "is not a number of seconds (a whole number from 1)";
    let count = "is not a count (a whole number)";
    let too_large = format!("is too large (at most {})", u64::MAX);
    let cases: &[(&str, &str, &str)] = &[
        ("--limit-as", "12X", size),
        ("--limit-as", "-1", size),
        ("--limit-core", "", size),
        ("--limit-fsize", "1.5M", size),
        ("--limit-stack", "18446744073709551616", &too_large),
        ("--limit-as", "17179869184G", &too_large),
        ("--limit-cpu", "0", seconds),
        ("--limit-cpu", "1s", seconds),
        ("--limit-walltime", "-5", seconds),
        ("--limit-walltime", "0", seconds),
        ("--limit-nofile", "many", count),
        ("--limit-nproc", "1K", count),
    ];
    for caller in CALLERS {
        for (option, value, why) in cases {
            let out = run(caller, &["run", option, value, "--", "echo", "ran"]);
            assert_eq!(code(&out), Some(125), "{option} {value:?} as {caller:?}");
            assert_eq!(
                stderr(&out),
                format!("hakoniwa: {option}: {value:?} {why}\n")
            );
            assert_eq!(stdout(&out), "", "{option} {value:?} ran the command");
        }
        let out = run(caller, &["run", "--limit-cpu"]);
        assert_eq!(code(&out), Some(125));
        assert_eq!(
            stderr(&out),
            "hakoniwa: option '--limit-cpu' needs a value SECONDS\n"
        );
    }
}

#[test]
fn report_file_holds_the_result_of_every_kind_of_run() {
    for caller in CALLERS {
        let dir = TempDir::new("report");
        let (out, report) = sh_with_report(caller, &dir, &[], "exit 3");
        assert_eq!(code(&out), Some(3));
        report.assert_verdict("OK", "", "3", &format!("{caller:?}"));
        // One line: the object and a newline.
        assert_eq!(report.text.matches('\n').count(), 1, "{}", report.text);
        assert!(report.text.ends_with("}\n"), "{}", report.text);
        let start = report.get("start_time");
        let shape: String = start
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999999999Z", "{start}");

        let (out, report) = sh_with_report(caller, &dir, &[], "kill -TERM $$");
        assert_eq!(code(&out), Some(143));
        report.assert_verdict("SIG", "signaled: SIGTERM", "143", &format!("{caller:?}"));

        let (out, report) = sh_with_report(caller, &dir, &["--limit-walltime", "1"], "sleep 3");
        assert_eq!(code(&out), Some(137));
        report.assert_verdict("TLE", "walltime 1s exceeded", "137", &format!("{caller:?}"));

        // A report is written even when nothing could run.
        let path = dir.path("report.json");
        let path = path.to_str().expect("UTF-8 path");
        let out = run(
            caller,
            &["run", "--report-file", path, "--", "/no/such/program"],
        );
        assert_eq!(code(&out), Some(127));
        let reason = "execve \"/no/such/program\": No such file or directory";
        Report::read(Path::new(path)).assert_verdict("SE", reason, "null", "exec");

        let out = run(
            caller,
            &["run", "--report-file", path, "--ro-bind", "/no/such"],
        );
        assert_eq!(code(&out), Some(125));
        let reason = "--ro-bind: bind source \"/no/such\": No such file or directory";
        assert_eq!(stderr(&out), format!("hakoniwa: {reason}\n"));
        Report::read(Path::new(path)).assert_verdict("SE", reason, "null", "bind");

        let out = run(caller, &["run", "--limit-as", "12X", "--report-file", path]);
        assert_eq!(code(&out), Some(125));
        let reason = "--limit-as: \"12X\" is not a size (bytes, or a number with K, M or G)";
        Report::read(Path::new(path)).assert_verdict("SE", reason, "null", "value");
    }
}

#[test]
fn an_unwritable_report_file_gives_125_and_runs_nothing() {
    let root_only = TempDir::new("ro");
    common::set_mode(&root_only.0, 0o755);
    for caller in CALLERS {
        let dir = TempDir::new("unwritable");
        let marker = dir.path("ran");
        let script = format!("touch {}", marker.display());
        let mut cases = vec![(
            "/no/such/dir/report.json".to_string(),
            "No such file or directory",
        )];
        if caller == Caller::Nobody {
            let denied = root_only.path("report.json");
            cases.push((denied.display().to_string(), "Permission denied"));
        }
        for (path, why) in cases {
            let options = ["--rw-bind", dir.arg(), "--report-file", &path];
            let out = sh(caller, &options, &script);
            assert_eq!(code(&out), Some(125), "{path} as {caller:?}");
            assert_eq!(
                stderr(&out),
                format!("hakoniwa: --report-file {path:?}: {why}\n")
            );
            assert!(!marker.exists(), "the command ran as {caller:?}");
        }
    }
}

#[test]
fn max_rss_reflects_what_the_command_holds() {
    for caller in CALLERS {
        let dir = TempDir::new("rss");
        let report = dir.path("report.json");
        let out = run(
            caller,
            &[
                "run",
                "--report-file",
                report.to_str().expect("UTF-8 path"),
                "--",
                "perl",
                "-e",
                "$x = 'a' x 60_000_000; sleep 0",
            ],
        );
        ok(&out);
        let report = Report::read(&report);
        let max_rss = report.number("max_rss");
        assert!(max_rss >= 58_000.0, "max_rss {max_rss} KiB as {caller:?}");
        // And a small command is small: the value is KiB, not bytes or pages.
        let (_, small) = sh_with_report(caller, &dir, &[], "true");
        let small = small.number("max_rss");
        assert!((100.0..20_000.0).contains(&small), "max_rss {small} KiB");
    }
}

#[test]
fn verbose_log_and_help_show_the_limits() {
    let out = run(
        Caller::Root,
        &[
            "run",
            "-v",
            "--limit-cpu",
            "2",
            "--limit-walltime",
            "5",
            "--",
            "true",
        ],
    );
    assert_eq!(ok(&out), "");
    let log = stderr(&out);
    let messages: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m))
        .collect();
    let rlimit = messages
        .iter()
        .position(|m| *m == "Rlimit: cpu: 2, walltime: 5")
        .unwrap_or_else(|| panic!("no Rlimit line in\n{log}"));
    assert!(
        messages[rlimit + 1].starts_with("Seccomp: default ("),
        "{log}"
    );

    let help = ok(&run(Caller::Root, &["run", "--help"]));
    for option in [
        "--limit-as BYTES",
        "--limit-core BYTES",
        "--limit-cpu SECONDS",
        "--limit-fsize BYTES",
        "--limit-nofile COUNT",
        "--limit-nproc COUNT",
        "--limit-stack BYTES",
        "--limit-walltime SECONDS",
        "--report-file FILE",
    ] {
        assert!(help.contains(option), "{option} missing from\n{help}");
    }
}
