//! `hakoniwa man`: the manual page in roff, made from the same option table as `--help`.

use super::args::{COMMANDS, RUN_OPTIONS};

/// Text for roff: backslashes and dashes escaped, no line starting with a control dot.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.strip_prefix(['.', '\'']) {
        Some(_) => format!("\\&{escaped}"),
        None => escaped,
    }
}

pub(crate) fn page() -> String {
    let mut out = format!(
        ".TH HAKONIWA 1 \"\" \"hakoniwa {}\" \"User Commands\"\n\
         .SH NAME\nhakoniwa \\- run a command in a fresh, empty, invisible sandbox\n\
         .SH SYNOPSIS\n.B hakoniwa run\n[\\fIOPTIONS\\fR] [\\fB\\-\\-\\fR \\fICOMMAND\\fR [\\fIARG\\fR...]]\n.br\n\
         .B hakoniwa trace\n[\\fIOPTIONS\\fR] [\\fB\\-\\-\\fR \\fICOMMAND\\fR [\\fIARG\\fR...]]\n.br\n\
         .B hakoniwa\n\\fICOMMAND\\fR ...\n\
         .SH DESCRIPTION\n{}\n.SH COMMANDS\n",
        env!("CARGO_PKG_VERSION"),
        roff(
            "hakoniwa runs a command in a world built from nothing: new user, mount, pid, ipc, \
             uts, net and cgroup namespaces, and a fresh tmpfs root that the host never sees and \
             that vanishes with the last process. Only what a policy binds is there; limits, a \
             seccomp filter and Landlock rules apply; and a report says how the command ended."
        )
    );
    for (name, what) in COMMANDS {
        out.push_str(&format!(".TP\n.B {}\n{}\n", roff(name), roff(what)));
    }
    out.push_str(".SH OPTIONS\nThe options of \\fBrun\\fR and \\fBtrace\\fR.\n");
    let mut group = "";
    for opt in RUN_OPTIONS {
        if opt.group != group {
            group = opt.group;
            out.push_str(&format!(".SS {}\n", roff(group)));
        }
        let mut names = match opt.short {
            Some(c) => format!("\\fB\\-{c}\\fR, "),
            None => String::new(),
        };
        names.push_str(&format!("\\fB\\-\\-{}\\fR", roff(opt.long)));
        if let Some(value) = opt.value {
            names.push_str(&format!(" \\fI{}\\fR", roff(value)));
        }
        out.push_str(&format!(".TP\n{names}\n{}\n", roff(opt.help)));
    }
    out.push_str(&format!(
        ".SH EXIT STATUS\n{}\n.SH FILES\n{}\n.SH SEE ALSO\n.BR bwrap (1),\n.BR namespaces (7),\n.BR seccomp (2),\n.BR landlock (7)\n",
        roff(
            "The command's exit status; 128+N when it was killed by signal N; 127 when it was \
             not found; 126 when it could not be executed; 125 when hakoniwa itself failed."
        ),
        roff("Policies are TOML files; 'hakoniwa policy list' shows the embedded ones.")
    ));
    out
}
