//! The limits through the library: the builder methods the seed's example uses.

use hakoniwa::{ExecutorResultStatus, Sandbox, Stdio};

#[test]
fn builder_limits_reach_the_sandbox() {
    let sandbox = Sandbox::new();
    let result = sandbox
        .command("/bin/sleep", &["sleep", "5"])
        .limit_cpu(Some(2))
        .limit_walltime(Some(1))
        .stdout(Stdio::null())
        .run();
    assert_eq!(result.status, ExecutorResultStatus::TimeLimitExceeded);
    assert_eq!(result.reason, "walltime 1s exceeded");
    assert_eq!(result.exit_code, Some(137));
    assert_eq!(result.exit_status(), 137);

    let result = sandbox
        .command("/bin/sh", &["sh", "-c", "exec head -c 10 /dev/zero > /f"])
        .limit_fsize(Some(4))
        .limit_walltime(None)
        .run();
    assert_eq!(result.status, ExecutorResultStatus::OutputLimitExceeded);
    assert_eq!(result.reason, "fsize 4 bytes exceeded");
}

#[test]
fn a_zero_second_limit_is_a_setup_error() {
    let result = Sandbox::new()
        .command("/bin/true", &["true"])
        .limit_walltime(Some(0))
        .run();
    assert_eq!(result.status, ExecutorResultStatus::SandboxSetupError);
    assert_eq!(result.reason, "limit walltime 0: must be at least 1");
    assert_eq!(result.exit_code, None);
    assert_eq!(result.exit_status(), 125);
}
