//! Help text, generated from the option table so the two never disagree.

use super::args::{COMMANDS, Opt, RUN_OPTIONS};

pub(crate) fn main() -> String {
    let mut out = format!(
        "hakoniwa {}: run a command in a fresh, empty, invisible sandbox\n\n\
         Usage: hakoniwa <COMMAND>\n\nCommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, what) in COMMANDS {
        out.push_str(&format!("  {name:<11} {what}\n"));
    }
    out.push_str("\nOptions:\n  -h, --help     Print help\n  -V, --version  Print version\n");
    out
}

pub(crate) fn policy() -> String {
    [
        "List, show and check policies",
        "",
        "Usage: hakoniwa policy list              List the embedded policies",
        "       hakoniwa policy show [NAME|FILE]  Print an embedded policy (default KISS), or the",
        "                                         rendered text of a policy file that checks out",
        "       hakoniwa policy check FILE        Check a policy file: exit 0, or 125 and the error",
        "",
    ]
    .join("\n")
}

pub(crate) fn seccomp() -> String {
    [
        "Seccomp profiles and system call groups",
        "",
        "Usage: hakoniwa seccomp list    List the profiles --seccomp takes by name",
        "       hakoniwa seccomp groups  List the @groups a filter's syscalls may name",
        "",
    ]
    .join("\n")
}

pub(crate) fn trace() -> String {
    let mut text = String::from(
        "Run a command in a sandbox and count its system calls\n\n\
         Usage: hakoniwa trace [OPTIONS] [-- COMMAND [ARG...]]\n\n\
         Each system call of the command goes to hakoniwa as a seccomp user notification, is\n\
         counted and let through. When the command ends, hakoniwa prints each system call\n\
         with its count on stderr, then a [seccomp] allowlist to paste into a policy. The\n\
         options are those of 'hakoniwa run' but --seccomp and --socket-families.\n",
    );
    text.push_str(&options());
    text
}

pub(crate) fn run() -> String {
    let mut out = String::from(
        "Run a command in a sandbox\n\n\
         Usage: hakoniwa run [OPTIONS] [-- COMMAND [ARG...]]\n\n\
         COMMAND defaults to $SHELL, else /bin/sh. A COMMAND without a slash is looked up\n\
         in the sandbox's PATH. Exit status: the command's, 128+N when killed by signal N,\n\
         127 when it is not found, 126 when it cannot be executed, 125 when hakoniwa fails.\n",
    );
    out.push_str(&options());
    out
}

/// The options of `run`, grouped, from the option table.
fn options() -> String {
    let mut out = String::new();
    let mut group = "";
    for opt in RUN_OPTIONS {
        if opt.group != group {
            group = opt.group;
            out.push_str(&format!("\n{group}:\n"));
        }
        out.push_str(&format!("  {:<28} {}\n", usage(opt), opt.help));
    }
    out
}

/// `-u, --uid ID` or `    --share-net`.
pub(crate) fn usage(opt: &Opt) -> String {
    let short = opt.short.map_or("    ".to_string(), |c| format!("-{c}, "));
    let value = opt.value.map_or(String::new(), |v| format!(" {v}"));
    format!("{short}--{}{value}", opt.long)
}

#[cfg(test)]
mod tests {
    use super::super::{completion, man};
    use super::*;

    /// Help, the man page and every completion script are made from the option table: a
    /// walk over the table finds each option in each of them.
    #[test]
    fn every_option_of_the_table_is_documented_and_completed() {
        let help = run();
        let page = man::page();
        let scripts: Vec<(&str, String)> = ["bash", "zsh", "fish"]
            .iter()
            .map(|shell| (*shell, completion::main(Some(shell)).unwrap()))
            .collect();
        for opt in RUN_OPTIONS {
            assert!(help.contains(&usage(opt)), "--help lacks {}", usage(opt));
            assert!(
                help.contains(opt.help),
                "--help lacks the text of --{}",
                opt.long
            );
            let roff_name = format!("\\fB\\-\\-{}\\fR", opt.long.replace('-', "\\-"));
            assert!(
                page.contains(&roff_name),
                "the man page lacks --{}",
                opt.long
            );
            for (shell, script) in &scripts {
                let name = match *shell {
                    "fish" => format!("-l {}", opt.long),
                    _ => format!("--{}", opt.long),
                };
                assert!(
                    script.contains(&name),
                    "{shell} completion lacks --{}",
                    opt.long
                );
            }
        }
        for (name, _) in COMMANDS {
            assert!(main().contains(name), "hakoniwa --help lacks {name}");
            assert!(
                page.contains(&format!(".B {name}")),
                "the man page lacks {name}"
            );
        }
    }
}
