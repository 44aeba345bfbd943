//! `hakoniwa completion bash|zsh|fish`: completion scripts made from the option table.

use super::args::{COMMANDS, Opt, RUN_OPTIONS};
use crate::error::Error;

pub(crate) fn main(shell: Option<&str>) -> Result<String, Error> {
    match shell {
        Some("bash") => Ok(bash()),
        Some("zsh") => Ok(zsh()),
        Some("fish") => Ok(fish()),
        other => Err(Error::Usage(format!(
            "completion: expected bash, zsh or fish, got {:?}",
            other.unwrap_or("nothing")
        ))),
    }
}

/// Whether an option's value is a path, to complete with file names.
fn takes_path(opt: &Opt) -> bool {
    opt.value.is_some_and(|v| {
        ["FILE", "DIR", "PATH", "SRC", "DEST"]
            .iter()
            .any(|w| v.contains(w))
    })
}

fn command_names() -> Vec<&'static str> {
    COMMANDS.iter().map(|(name, _)| *name).collect()
}

fn bash() -> String {
    let mut options = Vec::new();
    let mut path_options = Vec::new();
    for opt in RUN_OPTIONS {
        let mut names = vec![format!("--{}", opt.long)];
        names.extend(opt.short.map(|c| format!("-{c}")));
        if takes_path(opt) {
            path_options.extend(names.iter().cloned());
        }
        options.extend(names);
    }
    format!(
        r#"# bash completion for hakoniwa: source it, or put it in bash-completion's directory.
_hakoniwa() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{commands} --help --version" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
    run|trace)
        case "$prev" in
        {path_options}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "{options} --" -- "$cur"))
        else
            COMPREPLY=($(compgen -c -- "$cur"))
        fi ;;
    policy) COMPREPLY=($(compgen -W "list show check" -- "$cur")) ;;
    seccomp) COMPREPLY=($(compgen -W "list groups" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "{commands}" -- "$cur")) ;;
    esac
}}
complete -F _hakoniwa hakoniwa
"#,
        commands = command_names().join(" "),
        options = options.join(" "),
        path_options = path_options.join("|"),
    )
}

/// `value` inside single quotes for a shell.
fn single_quoted(value: &str) -> String {
    value.replace('\'', r"'\''")
}

fn zsh() -> String {
    let mut specs = Vec::new();
    for opt in RUN_OPTIONS {
        let help = single_quoted(
            &opt.help
                .replace('[', "(")
                .replace(']', ")")
                .replace(':', "\\:"),
        );
        let value = match opt.value {
            Some(v) if takes_path(opt) => format!(":{v}:_files"),
            Some(v) => format!(":{v}: "),
            None => String::new(),
        };
        let repeat = if opt.value.is_some() { "*" } else { "" };
        specs.push(match opt.short {
            Some(c) => format!(
                "    '{repeat}(-{c} --{long})'{{-{c},--{long}}}'[{help}]{value}' \\\n",
                long = opt.long
            ),
            None => format!(
                "    '{repeat}--{long}[{help}]{value}' \\\n",
                long = opt.long
            ),
        });
    }
    let commands: Vec<String> = COMMANDS
        .iter()
        .map(|(name, what)| format!("        '{name}:{}'", single_quoted(what)))
        .collect();
    format!(
        "#compdef hakoniwa\n# zsh completion for hakoniwa: put it in a directory of $fpath as _hakoniwa.\n\
         _hakoniwa() {{\n    local -a commands\n    commands=(\n{commands}\n    )\n    \
         if (( CURRENT == 2 )); then\n        _describe 'command' commands\n        return\n    fi\n    \
         case $words[2] in\n    run|trace)\n        shift words; (( CURRENT-- ))\n        _arguments -s \\\n{specs}    \
         '*::command:_normal' ;;\n    policy) _values 'action' list show check ;;\n    \
         seccomp) _values 'action' list groups ;;\n    completion) _values 'shell' bash zsh fish ;;\n    esac\n}}\n\
         compdef _hakoniwa hakoniwa\n",
        commands = commands.join("\n"),
        specs = specs.concat(),
    )
}

fn fish() -> String {
    let mut out =
        String::from("# fish completion for hakoniwa: put it in ~/.config/fish/completions/.\n");
    out.push_str("complete -c hakoniwa -f\n");
    for (name, what) in COMMANDS {
        out.push_str(&format!(
            "complete -c hakoniwa -n __fish_use_subcommand -a {name} -d '{}'\n",
            single_quoted(what)
        ));
    }
    for opt in RUN_OPTIONS {
        let mut line =
            String::from("complete -c hakoniwa -n '__fish_seen_subcommand_from run trace'");
        line.push_str(&format!(" -l {}", opt.long));
        if let Some(c) = opt.short {
            line.push_str(&format!(" -s {c}"));
        }
        if opt.value.is_some() {
            line.push_str(if takes_path(opt) { " -r -F" } else { " -r" });
        }
        line.push_str(&format!(" -d '{}'\n", single_quoted(opt.help)));
        out.push_str(&line);
    }
    for (command, actions) in [
        ("policy", "list show check"),
        ("seccomp", "list groups"),
        ("completion", "bash zsh fish"),
    ] {
        out.push_str(&format!(
            "complete -c hakoniwa -n '__fish_seen_subcommand_from {command}' -a '{actions}'\n"
        ));
    }
    out
}
